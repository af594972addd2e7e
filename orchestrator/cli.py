"""Flags and construction shared by the serve, ask and bench entry points."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from concurrent.futures import Executor as ThreadPool
from pathlib import Path

from core.cli import add_dataclass_args, dataclass_from_args
from core.completion import Completer
from core.inference import load_completer
from core.layout import default_run_dir
from core.template import templated
from orchestrator.endpoint_completer import EndpointCompleter, EndpointConfig, EndpointSpec
from orchestrator.endpoint_planner import EndpointPlanner
from orchestrator.executor import ExecutionConfig
from orchestrator.model_planner import load_model_planner
from orchestrator.pipeline import Orchestrator
from orchestrator.plan import Planner
from orchestrator.registry import (
    RegistryError,
    SpecialistSource,
    build_registry,
    default_run_dirs,
    parse_specialist_flags,
)
from orchestrator.rules_planner import RulePlanner


def add_orchestrator_args(parser: argparse.ArgumentParser) -> None:
    """Specialist, planner and ExecutionConfig flags."""
    parser.add_argument(
        "--specialist",
        action="append",
        default=[],
        metavar="LANG=RUN_DIR|URL[#MODEL]",
        help="a specialist's run directory, or the base URL of an OpenAI-compatible endpoint "
        "serving it (e.g. http://host:8000/v1#python; without #MODEL: the listed model named "
        "LANG, else the first listed, else LANG) (repeatable; default: "
        f"{default_run_dir('<lang>', 'test')} for each specialists/<lang> that has one)",
    )
    parser.add_argument(
        "--specialist-api-key",
        default=os.environ.get("OPENAI_API_KEY"),
        help="bearer token for specialist endpoints (default: $OPENAI_API_KEY)",
    )
    add_dataclass_args(parser, EndpointConfig)
    parser.add_argument(
        "--default-language",
        default="python",
        help="language of requests that name none (default: %(default)s)",
    )
    parser.add_argument(
        "--planner",
        choices=("rules", "endpoint", "model"),
        default="rules",
        help="rules (offline), endpoint (OpenAI-compatible chat server) or "
        "model (a checkpoint trained on plan examples) (default: %(default)s)",
    )
    parser.add_argument(
        "--planner-url", help="endpoint planner: base URL, e.g. http://host:8001/v1"
    )
    parser.add_argument(
        "--planner-model",
        default="orchestrator",
        help="endpoint planner: model name (default: %(default)s)",
    )
    parser.add_argument("--planner-api-key", help="endpoint planner: bearer token, if any")
    parser.add_argument(
        "--planner-timeout",
        type=float,
        default=30.0,
        help="endpoint planner: seconds before falling back (default: %(default)s)",
    )
    parser.add_argument("--planner-run-dir", type=Path, help="model planner: its run directory")
    parser.add_argument(
        "--coalesce-prompts",
        type=int,
        default=0,
        help="merge concurrent requests' calls on a specialist into batches of up "
        "to this many prompts (more requests/s; answers then depend on timing); "
        "0 runs one call at a time (default: %(default)s)",
    )
    add_dataclass_args(parser, ExecutionConfig)


def build_planner(args: argparse.Namespace) -> Planner:
    """The planner the flags choose; every one falls back to the rules planner."""
    rules = RulePlanner(args.default_language)
    if args.planner == "endpoint":
        if not args.planner_url:
            raise RegistryError("--planner endpoint needs --planner-url")
        return EndpointPlanner(
            args.planner_url, args.planner_model, rules, args.planner_api_key, args.planner_timeout
        )
    if args.planner == "model":
        if args.planner_run_dir is None:
            raise RegistryError("--planner model needs --planner-run-dir")
        return load_model_planner(args.planner_run_dir, rules)
    return rules


def load_specialists(
    sources: Mapping[str, SpecialistSource],
    config: EndpointConfig | None = None,
    api_key: str | None = None,
) -> dict[str, Completer]:
    """A completer per language: its checkpoint loaded (framing prompts with the template its
    run recorded, if it was fine-tuned with one), or its endpoint connected."""
    return {
        language: EndpointCompleter.connect(source, language, api_key, config)
        if isinstance(source, EndpointSpec)
        else templated(load_completer(source), source)
        for language, source in sources.items()
    }


def build_orchestrator(args: argparse.Namespace, pool: ThreadPool) -> Orchestrator:
    """Discover specialists, load their checkpoints or connect their endpoints and assemble the
    orchestrator."""
    config = dataclass_from_args(ExecutionConfig, args)  # bad flags fail before loading models
    endpoint_config = dataclass_from_args(EndpointConfig, args)
    sources = default_run_dirs() | parse_specialist_flags(args.specialist)
    if not sources:
        raise RegistryError(
            "no specialist checkpoints: train one (./pants run "
            "specialists/python:train) or pass --specialist LANG=RUN_DIR|URL"
        )
    models = load_specialists(sources, endpoint_config, args.specialist_api_key)
    registry = build_registry(models, args.default_language, args.coalesce_prompts)
    return Orchestrator(build_planner(args), registry, pool, config)
