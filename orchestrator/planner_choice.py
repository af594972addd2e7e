"""Planners named on a command line (`rules`, `endpoint URL[#MODEL]`, `model RUN_DIR`), asked
without their rules fallback, over many requests at once.

The plan-data builder asks one as its teacher and the planner eval scores several; both need a
planner's own answer or the reason it has none, so every planner here is used through its `ask`
(a PlanError when there is no valid plan), never through `plan`, which would answer with the
rules planner's plan instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tqdm import tqdm

from core.cli import flag_field
from core.config import ConfigError
from orchestrator.endpoint_completer import EndpointError, EndpointSpec, served_model
from orchestrator.endpoint_planner import EndpointPlanner
from orchestrator.model_planner import load_model_planner
from orchestrator.plan import Plan, PlanError
from orchestrator.rules_planner import RulePlanner

PLANNER_USAGE = "rules, endpoint URL[#MODEL] or model RUN_DIR"
PREFERRED_MODEL = "orchestrator"  # an endpoint without #MODEL: this listed model, else the first


@dataclasses.dataclass(frozen=True)
class PlannerConfig:
    """How the chosen planners are asked."""

    default_language: str = flag_field("python", "language of requests that name none")
    planner_timeout_s: float = flag_field(60.0, "endpoint planners: seconds per request")
    concurrency: int = flag_field(8, "requests planned at once (endpoints batch them)")
    max_new_tokens: int = flag_field(512, "model planners: the most tokens of one plan")

    def __post_init__(self) -> None:
        if self.planner_timeout_s <= 0:
            raise ConfigError(f"--planner-timeout-s must be positive, got {self.planner_timeout_s}")
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency must be >= 1, got {self.concurrency}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"--max-new-tokens must be >= 1, got {self.max_new_tokens}")


@dataclasses.dataclass(frozen=True)
class PlannerChoice:
    """One planner as a flag names it: its kind and, except for rules, its URL or run directory."""

    kind: str
    source: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.source}".strip()


@dataclasses.dataclass(frozen=True)
class Proposer:
    """A planner's `ask`: a request's plan, or PlanError with the reason there is none."""

    label: str  # the planner, e.g. "endpoint http://host:8001/v1#qwen" (the model it asks)
    ask: Callable[[str], Plan]


def add_api_key_flag(parser: argparse.ArgumentParser) -> None:
    """--planner-api-key, the bearer token for endpoint planners."""
    parser.add_argument(
        "--planner-api-key",
        default=os.environ.get("OPENAI_API_KEY"),
        help="bearer token for endpoint planners (default: $OPENAI_API_KEY)",
    )


def parse_planner_choice(words: Sequence[str], flag: str) -> PlannerChoice:
    """`[rules]`, `[endpoint, URL[#MODEL]]` or `[model, RUN_DIR]`; ValueError names `flag`."""
    kind, *rest = words
    expected = 0 if kind == "rules" else 1
    if kind not in ("rules", "endpoint", "model") or len(rest) != expected:
        raise ValueError(f"{flag} {' '.join(words)}: expected {PLANNER_USAGE}")
    choice = PlannerChoice(kind, *rest)
    if kind == "endpoint":
        try:
            EndpointSpec.parse(choice.source)
        except EndpointError as error:
            raise ValueError(f"{flag} {choice}: {error}") from None
    return choice


def proposer(choice: PlannerChoice, config: PlannerConfig, api_key: str | None) -> Proposer:
    """The chosen planner, connected (an endpoint's model named or listed) or loaded."""
    rules = RulePlanner(config.default_language)
    if choice.kind == "endpoint":
        spec = EndpointSpec.parse(choice.source)
        client = httpx.Client()
        timeout_s = config.planner_timeout_s
        model = spec.model or served_model(client, spec.url, PREFERRED_MODEL, api_key, timeout_s)
        planner = EndpointPlanner(spec.url, model, rules, api_key, timeout_s, client)
        return Proposer(f"endpoint {spec.url}#{model}", planner.ask)
    if choice.kind == "model":
        try:
            model_planner = load_model_planner(Path(choice.source), rules, config.max_new_tokens)
        except (ValueError, OSError) as error:
            raise ValueError(f"model planner: {error}") from None
        return Proposer(str(choice), model_planner.ask)
    return Proposer("rules", lambda request: rules.plan(request).plan)


def propose_all(
    ask: Callable[[str], Plan], requests: Sequence[str], concurrency: int, desc: str
) -> list[Plan | PlanError]:
    """Each request's plan or PlanError, in request order, with at most `concurrency` in flight."""

    def one(request: str) -> Plan | PlanError:
        try:
            return ask(request)
        except PlanError as error:
            return error

    with ThreadPoolExecutor(concurrency, thread_name_prefix="planner") as pool:
        results = pool.map(one, requests)
        return list(tqdm(results, total=len(requests), desc=desc, unit="request"))
