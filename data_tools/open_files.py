"""The steps that open every task's files at once (the listing's split, exact-duplicates,
near-buckets, near-clusters, pack) hold one open file per task: 6,250 at The Stack v2's scale,
where cluster nodes often allow 1,024 by default. `OpenFiles` goes first in those stages (and
`allow_open_files` before the split) and raises the process's soft limit to what it needs,
within the hard limit.
"""

from __future__ import annotations

import resource

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

# Files a stage opens besides the tasks': standard streams, logs, outputs, imports.
_SPARE_FILES = 256


def allow_open_files(tasks: int) -> None:
    """Let this process hold one file per task open at once: the soft limit on open files is
    raised as far as that needs, within the hard limit; a hard limit below it is a ValueError
    naming the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = tasks + _SPARE_FILES
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise ValueError(
            f"this stage reads all {tasks} tasks' files at once, but this process may open only "
            f"{hard} files (`ulimit -Hn`): raise that limit or prepare with fewer --tasks"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class OpenFiles(PipelineStep):
    """First step of a stage that reads every task's files: raises the open-file limit when
    the task starts (not lazily: the steps after it may not read their input)."""

    type = "⚙️ - SETUP"
    name = "📂 open-file limit"

    def __init__(self, tasks: int) -> None:
        super().__init__()
        self.tasks = tasks

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        allow_open_files(self.tasks)
        return data  # None stays None: the next steps may insist on having no input
