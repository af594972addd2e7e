"""What the pipeline's stages counted, read back from datatrove's per-task stats files and
turned into the manifest's counts: files in, drops by reason, files out of each stage."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

from data_tools.stack_v2 import SKIP_REASONS as STACK_V2_SKIP_REASONS

StepStats = dict[str, collections.Counter]


def read_stage_stats(stage_dir: Path) -> StepStats:
    """Every step's counters summed over the stage's tasks, by step name (datatrove records
    "TYPE: name")."""
    steps: StepStats = collections.defaultdict(collections.Counter)
    for path in sorted((stage_dir / "stats").glob("*.json")):
        for step in json.loads(path.read_text()):
            for key, value in step["stats"].items():
                steps[step["name"].split(": ", 1)[-1]][key] += (
                    value if isinstance(value, int) else value["total"]
                )
    return steps


def _step(steps: StepStats, name: str) -> collections.Counter:
    return steps.get(name, collections.Counter())


def _reasons(step: collections.Counter) -> collections.Counter[str]:
    return collections.Counter(
        {key.removeprefix("dropped_"): n for key, n in step.items() if key.startswith("dropped_")}
    )


def filter_stage_counts(
    steps: StepStats, names: dict[str, str], near_duplicates: int
) -> dict[str, Any]:
    """The corpus counts of the filter stage's steps (`names`: role -> datatrove step name) and
    the near-dedup result: files in, drops by reason, and each stage's files in and out."""
    stack_v2 = _step(steps, names["stack_v2"])
    read_drops = _reasons(_step(steps, names["listing"])) + collections.Counter(
        {reason: stack_v2[reason] for reason in STACK_V2_SKIP_REASONS}
    )
    text_only, exact = _step(steps, names["text_only"]), _step(steps, names["exact"])
    code, decontaminate = _step(steps, names["code"]), _step(steps, names["decontaminate"])
    dropped = read_drops + _reasons(text_only) + _reasons(code) + _reasons(decontaminate)
    dropped += collections.Counter(exact_duplicate=exact["dropped"], near_duplicate=near_duplicates)
    files_in = text_only["total"] + sum(read_drops.values())
    kept_before_near = _step(steps, names["signatures"])["documents"]
    stages = [
        {"stage": "read", "files_in": files_in, "files_out": text_only["forwarded"]},
        {"stage": "exact_dedup", "files_in": exact["total"], "files_out": exact["forwarded"]},
        {"stage": "filters", "files_in": code["total"], "files_out": code["forwarded"]},
    ]
    if decontaminate["total"]:
        stages.append({"stage": "decontaminate", "files_in": decontaminate["total"],
                       "files_out": decontaminate["forwarded"]})  # fmt: skip
    stages.append({"stage": "near_dedup", "files_in": kept_before_near,
                   "files_out": kept_before_near - near_duplicates})  # fmt: skip
    return {
        "files_in": files_in,
        "files_kept": kept_before_near - near_duplicates,
        "dropped": dict(sorted(dropped.items())),
        "stages": stages,
        "decontaminated_by_benchmark": {
            key.removeprefix("decontaminated_"): count
            for key, count in sorted(decontaminate.items())
            if key.startswith("decontaminated_")
        },
    }
