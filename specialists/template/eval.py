"""Evaluate the specialist, or any model's samples: held-out perplexity and bits per byte, and
the syntax-validity rate of completions of its sample prompts (see evals/syntax_eval.py).

    python -m specialists.template.eval [--checkpoint outputs/<lang>-test]
    python -m specialists.template.eval --samples completions.jsonl   (records: task_id, completion)
"""

from __future__ import annotations

import sys

from evals.syntax_eval import SyntaxSuite, syntax_eval_main
from specialists.template.specialist import SPECIALIST

LANGUAGE = SPECIALIST.language
SUITE = SyntaxSuite(
    language=LANGUAGE.name,
    drop_reason=LANGUAGE.drop_reason,
    prompts=SPECIALIST.sample_prompts,
    suffix=LANGUAGE.extensions[0],
    line_comment=LANGUAGE.line_comment,
)

if __name__ == "__main__":
    sys.exit(syntax_eval_main(SUITE))
