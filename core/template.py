"""Prompt templates: how a supervised example's prompt is framed for the model, recorded in an SFT
run's config.json and applied again wherever that run's model is asked.

An example becomes `template.prompt(prompt)`, then its target, then EOS; at inference the model
gets `template.prompt(prompt)` and continues it. Templates:

    plain   the prompt as it is (a code specialist continuing the file header it is given)
    issue   <issue_start>{prompt}<issue_comment>: StarCoder2's GitHub-issue tokens around a
            request (the model planner's format, orchestrator/model_planner.py)

Pure Python: importing it does not load JAX.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from core.completion import Completer, CompletionRequest, Completions
from core.config import ConfigError
from core.layout import RunLayout


@dataclasses.dataclass(frozen=True)
class PromptTemplate:
    """The text before a prompt and the text between it and the model's answer."""

    name: str
    prefix: str = ""
    separator: str = ""

    def prompt(self, text: str) -> str:
        """What the model reads before its answer."""
        return f"{self.prefix}{text}{self.separator}"


PLAIN = PromptTemplate("plain")
ISSUE = PromptTemplate("issue", "<issue_start>", "<issue_comment>")
TEMPLATES = {template.name: template for template in (PLAIN, ISSUE)}


def template_named(name: str) -> PromptTemplate:
    """The template called `name`; ConfigError naming --template otherwise."""
    if name not in TEMPLATES:
        raise ConfigError(f"--template {name!r}: one of {', '.join(TEMPLATES)}")
    return TEMPLATES[name]


def recorded_template(run_dir: str | Path) -> PromptTemplate | None:
    """The template an SFT run recorded in its config.json (its strings as trained), or None
    for a run without one (pretraining, an import)."""
    path = RunLayout.of(run_dir).config
    try:
        recorded = json.loads(path.read_text()).get("sft", {}).get("template")
    except (OSError, json.JSONDecodeError):
        return None
    if recorded is None:
        return None
    try:
        return PromptTemplate(**recorded)
    except TypeError as error:
        raise ConfigError(f"{path}: bad sft.template: {error}") from None


class TemplatedCompleter:
    """A model whose prompts are framed by its template before it sees them."""

    def __init__(self, model: Completer, template: PromptTemplate) -> None:
        self.model = model
        self.template = template

    def complete(self, request: CompletionRequest) -> Completions:
        """The wrapped model's completions of the framed prompts."""
        prompts = [self.template.prompt(prompt) for prompt in request.prompts]
        return self.model.complete(request.for_prompts(prompts))


def templated(model: Completer, run_dir: str | Path) -> Completer:
    """`model`, loaded from `run_dir`, framing its prompts with the run's recorded template."""
    template = recorded_template(run_dir)
    return model if template is None else TemplatedCompleter(model, template)
