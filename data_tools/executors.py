"""Where the pipeline's stages run: datatrove's local, Ray or Slurm executor, one per stage.

Every stage has its own logging directory (datatrove's completions/, stats/, logs/), so a rerun
skips the tasks that finished. Local and Ray stages run one after another and are checked for
completion; Slurm stages are submitted at once as a chain of dependent array jobs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from datatrove.executor import LocalPipelineExecutor
from datatrove.executor.base import PipelineExecutor
from loguru import _better_exceptions

from core.config import DataConfig


def _cache_loguru_library_dirs() -> None:
    """datatrove adds three loguru handlers per task, and each handler's exception formatter
    recomputes the interpreter's library directories (~40 sysconfig lookups): measured, half of
    a task's fixed cost (26 empty tasks on 2 workers: 0.31-0.40 s, 0.16-0.22 s with this). The
    directories are a function of the interpreter, so one computation per process serves all."""
    formatter = getattr(_better_exceptions, "ExceptionFormatter", None)
    lookup = getattr(formatter, "_get_lib_dirs", None)
    if lookup is not None and not hasattr(lookup, "cache_info"):
        formatter._get_lib_dirs = staticmethod(functools.cache(lookup))


_cache_loguru_library_dirs()


class PipelineError(ValueError):
    """A stage whose tasks did not all finish (a ValueError: the CLIs print it as one line)."""


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage: its name (and logging directory), its steps and how many tasks run them."""

    name: str
    steps: list[Any]
    tasks: int


def worker_count(config: DataConfig) -> int:
    """Tasks run at once: `config.workers`, or one per CPU available to this process."""
    return config.workers or len(os.sched_getaffinity(0))


def stage_dir(logs: Path, stage: Stage) -> Path:
    """The stage's datatrove logging directory."""
    return logs / stage.name


def finished_tasks(logs: Path, stage: Stage) -> int:
    """How many of the stage's tasks are marked complete."""
    completions = stage_dir(logs, stage) / "completions"
    return sum(1 for _ in completions.iterdir()) if completions.is_dir() else 0


def _executor(
    stage: Stage, logs: Path, config: DataConfig, depends: PipelineExecutor | None
) -> PipelineExecutor:
    logging_dir = str(stage_dir(logs, stage))
    workers = min(worker_count(config), stage.tasks)
    if config.executor == "local":
        return LocalPipelineExecutor(
            stage.steps, tasks=stage.tasks, workers=workers, logging_dir=logging_dir,
            start_method=_start_method(),
        )  # fmt: skip
    if config.executor == "ray":
        import ray
        from datatrove.executor.ray import RayPipelineExecutor

        # Each Ray job starts a worker process that imports the pipeline: one job per worker
        # slot, running its share of the ranks, keeps that cost to once per slot and stage.
        slots = config.workers or int(ray.cluster_resources().get("CPU", 1))
        return RayPipelineExecutor(
            stage.steps, tasks=stage.tasks, workers=slots, logging_dir=logging_dir,
            tasks_per_job=math.ceil(stage.tasks / slots),
        )  # fmt: skip
    from datatrove.executor.slurm import SlurmPipelineExecutor

    return SlurmPipelineExecutor(
        stage.steps,
        tasks=stage.tasks,
        workers=config.workers or -1,
        time=config.slurm_time,
        partition=config.slurm_partition,
        job_name=f"codefactory-{stage.name}",
        env_command=config.slurm_env_command or default_env_command(),
        logging_dir=logging_dir,
        depends=depends,
    )


def _start_method() -> str:
    """fork (workers start at once), unless this process has started JAX's runtime, whose
    threads a fork would copy mid-flight: then spawn (workers import the pipeline anew)."""
    jax = sys.modules.get("jax")
    bridge = getattr(getattr(jax, "_src", None), "xla_bridge", None)
    started = getattr(bridge, "backends_are_initialized", lambda: False)()
    return "spawn" if started else "fork"


def default_env_command() -> str:
    """What a Slurm job runs first: this interpreter's environment on PATH and this repository
    on PYTHONPATH (both must be on a filesystem the compute nodes share)."""
    repo = Path(__file__).resolve().parents[1]
    return f'export PATH="{Path(sys.executable).parent}:$PATH" PYTHONPATH="{repo}"'


@contextlib.contextmanager
def _logs_to(path: Path) -> Iterator[None]:
    """Standard error, of this process and the workers it starts, into `path`: datatrove logs
    every task and step to the console (its own per-task logs hold them too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "a") as handle:
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def _ray_cluster(config: DataConfig) -> Iterator[None]:
    """Connected to `config.ray_address`, else to a local cluster started for this run."""
    import ray

    started = not ray.is_initialized()
    if started:
        # Workers import this repository's modules: hand them this process's import path.
        ray.init(
            address=config.ray_address or None,
            num_cpus=None if config.ray_address else worker_count(config),
            runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}},
            include_dashboard=False,
            log_to_driver=False,
        )
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def run_stages(stages: Sequence[Stage], logs: Path, config: DataConfig) -> list[dict[str, Any]]:
    """Run `stages` in order with `config.executor`; each stage's start time and seconds.

    A local or Ray stage that does not finish every task raises PipelineError naming its logs.
    On Slurm the whole chain is submitted and this returns at once (no timings).
    """
    log_file = logs / "executor.log"
    if config.executor == "slurm":
        executor = None
        for stage in stages:
            executor = _executor(stage, logs, config, executor)
        with _logs_to(log_file):
            executor.run()  # type: ignore[union-attr]
        return []
    timings = []
    cluster = _ray_cluster(config) if config.executor == "ray" else contextlib.nullcontext()
    with cluster:
        for stage in stages:
            start = time.time()
            if finished_tasks(logs, stage) < stage.tasks:
                with _logs_to(log_file):
                    _executor(stage, logs, config, None).run()
            done = finished_tasks(logs, stage)
            if done < stage.tasks:
                raise PipelineError(
                    f"stage {stage.name}: {done}/{stage.tasks} tasks finished; see "
                    f"{stage_dir(logs, stage) / 'logs'}"
                )
            timings.append({"stage": stage.name, "start": start, "seconds": time.time() - start})
            if config.progress:
                print(f"  {stage.name:<18} {stage.tasks:>5} tasks {timings[-1]['seconds']:>8.1f} s")
    return timings
