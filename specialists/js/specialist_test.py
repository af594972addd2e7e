from pathlib import Path

from specialists.js.specialist import SPECIALIST
from specialists.testing import check_train_job


def js_module(seed: int) -> str:
    """A distinct valid JavaScript module."""
    functions = "".join(
        f"/** Scales by {seed * 7 + index}. */\nexport function scale{seed}_{index}(values) {{\n"
        f"  return values.map((v) => v * {seed * 7 + index} + {index});\n}}\n\n"
        for index in range(8)
    )
    return f"import {{ readFile }} from 'node:fs/promises';\n\n{functions}"


def test_train_job_on_a_small_js_corpus(tmp_path: Path) -> None:
    modules = [js_module(seed) for seed in range(12)]
    check_train_job(SPECIALIST, tmp_path, modules, js_module(99) + "function broken( {\n")
