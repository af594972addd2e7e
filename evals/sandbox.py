"""Run untrusted programs: one subprocess per sample in its own scratch directory, isolated and limited.

Each layer is used when this machine allows it, and `Sandbox.protections` records which were:
- namespaces (`unshare`): a PID namespace (everything a sample starts dies with it), an empty network
  namespace, and a private mount namespace in which /tmp, /var/tmp and /dev/shm are the scratch
  directory and host directories given to `Sandbox.expose` (a toolchain the sample uid could not
  reach, under a mode-700 /root say) appear read-only under /tmp/.tools; a harness that is not
  root enters them through a user namespace;
- an unprivileged uid per worker (`setpriv`, root only): a sample can write only its scratch directory
  and cannot signal the harness, and each worker has its own RLIMIT_NPROC budget;
- resource limits (`prlimit`): address space, CPU seconds, processes, file size, open files, no cores;
- always: a scrubbed environment, stdin closed, a new session killed as a whole on timeout, output
  capped, and the scratch directory removed afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import queue
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tqdm import tqdm

from evals.errors import EvalError

_MIB = 1 << 20
# Sample uids are high, have no passwd entry, and are offset by the harness pid so that two harnesses
# running at once never share a uid (and so never share process counts or signals). With Linux's
# largest pid (2**22) they stay below 2**31.
_UID_BASE = 1_000_000
_MAX_WORKERS = 256
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# How long a timed-out sample's processes may take to die before its whole session is killed.
_STOP_GRACE_S = 5.0
# Where the scratch directory appears inside the mount namespace.
_INNER_SCRATCH = "/tmp"
# The scratch subdirectory holding the mount points of exposed host directories, 0, 1, ...
_TOOLS = ".tools"
# Runs first, as root, inside the new mount namespace; arguments: the scratch dir, the number of
# exposed host dirs, those dirs, the command. Each exposed dir is bound read-only on a mount point
# in the scratch dir, which then becomes every world-writable place (--rbind carries those binds).
# `.tools` is made afresh each step: an earlier step's sample owns the scratch dir and may have
# renamed it or left a symlink there, so nothing of it is trusted (no sample process is alive
# now: each step's PID namespace dies with it, and a plain `rm -rf` follows no symlink). The binds
# exist only in this private namespace: the harness's own namespace sees empty directories, so
# removing the scratch dir (shutil.rmtree, on the host) can never reach an exposed dir, and inside
# the namespace the binds are read-only should anything try.
_MOUNT_SCRATCH = (
    "set -e; scratch=$1; count=$2; shift 2; "
    f'if [ "$count" -gt 0 ]; then rm -rf "$scratch/{_TOOLS}"; '
    f'mkdir -m 755 "$scratch/{_TOOLS}"; fi; '
    'i=0; while [ "$i" -lt "$count" ]; do '
    f'mkdir -m 755 "$scratch/{_TOOLS}/$i"; '
    f'mount --bind -o ro,nosuid,nodev "$1" "$scratch/{_TOOLS}/$i"; shift; i=$((i + 1)); done; '
    'mount --rbind "$scratch" /tmp; '
    'for d in /var/tmp /dev/shm; do if [ -d "$d" ]; then mount --bind /tmp "$d"; fi; done; '
    'cd /tmp; exec "$@"'
)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-sample limits. Node and rustc reserve much address space: give them a larger memory_mb."""

    timeout: float = dataclasses.field(
        default=30.0, metadata={"help": "wall-clock seconds per sample"}
    )
    build_timeout: float = dataclasses.field(
        default=60.0,
        metadata={"help": "wall-clock seconds for a sample's build step (compiling), if any"},
    )
    memory_mb: int = dataclasses.field(
        default=1024, metadata={"help": "address space per sample process, MiB"}
    )
    max_processes: int = dataclasses.field(
        default=8, metadata={"help": "processes and threads per sample"}
    )
    max_file_mb: int = dataclasses.field(
        default=64, metadata={"help": "largest file a sample may write, its output included, MiB"}
    )
    max_open_files: int = dataclasses.field(
        default=256, metadata={"help": "open file descriptors per sample process"}
    )
    max_output_kb: int = dataclasses.field(
        default=16, metadata={"help": "output kept per sample (its end), KiB"}
    )

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value <= 0:
                flag = field.name.replace("_", "-")
                raise EvalError(f"--{flag} must be positive, got {value}")


def _cpu_seconds(timeout: float) -> int:
    """CPU-time limit: the wall-clock timeout, so a spinning sample dies even if the harness stalls."""
    return math.ceil(timeout) + 1


@dataclasses.dataclass(frozen=True)
class Program:
    """A command to run in a fresh scratch directory after writing `files` (relative path -> text
    or bytes). A `build` command (a compiler, say) runs first in the same directory under
    Limits.build_timeout; when it fails, its result is the program's and `argv` never runs.

    `limits` replaces the sandbox's for this program (a benchmark whose time limits are part of
    its definition, EvalPlus's); `outputs` names files of the scratch directory's top level that
    come back in RunResult.files when the program leaves them there (plain files only)."""

    argv: tuple[str, ...]
    files: Mapping[str, str | bytes] = dataclasses.field(default_factory=dict)
    build: tuple[str, ...] = ()
    limits: Limits | None = None
    outputs: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class RunResult:
    """How one program ended: its exit status (negative: killed by that signal) and its output."""

    returncode: int
    timed_out: bool
    duration_s: float
    output: str
    files: Mapping[str, bytes] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@dataclasses.dataclass(frozen=True)
class Protections:
    """Which isolation layers this machine allows; every result records them."""

    namespaces: bool
    user_namespace: bool
    uid_per_worker: bool
    rlimits: bool

    def describe(self) -> dict[str, str]:
        """A readable account of each protection, for results files and the screen."""
        via = " (through a user namespace)" if self.user_namespace else ""
        return {
            "network": "none: empty network namespace" + via
            if self.namespaces
            else "NOT isolated: unshare unavailable",
            "filesystem": "scratch dir bound over /tmp, /var/tmp, /dev/shm" + via
            if self.namespaces
            else "shared /tmp",
            "processes": "own PID namespace, killed with its first process"
            if self.namespaces
            else "own session, killed as a group",
            "user": "one unprivileged uid per worker (setpriv), scratch dir mode 700"
            if self.uid_per_worker
            else "NOT dropped: samples run as the harness user",
            "limits": "prlimit: address space, CPU, "
            + ("processes, " if self.uid_per_worker else "")
            + "file size, open files, no core"
            if self.rlimits
            else "NONE: prlimit unavailable",
        }


class Sandbox:
    """Runs programs in parallel, one worker per core by default, each in a fresh isolated scratch dir.

    Use as a context manager: closing removes the sandbox's temporary directory.
    """

    def __init__(self, limits: Limits | None = None, workers: int | None = None) -> None:
        self.limits = limits or Limits()
        self.workers = workers or min(os.cpu_count() or 1, _MAX_WORKERS)
        if not 0 < self.workers <= _MAX_WORKERS:
            raise EvalError(f"--workers must be in 1..{_MAX_WORKERS}, got {self.workers}")
        self._as_root = os.geteuid() == 0
        self._root = Path(tempfile.mkdtemp(prefix="evals-sandbox-"))
        # Without a mount namespace a sample reaches its scratch dir through this one.
        self._root.chmod(0o711)
        self.protections = self._detect_protections()
        # Replaced, never mutated, so a step reads a consistent tuple without the lock.
        self._exposed: tuple[Path, ...] = ()
        self._expose_lock = threading.Lock()
        self._free_slots: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(self.workers):
            self._free_slots.put(slot)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the sandbox's temporary directory."""
        shutil.rmtree(self._root, ignore_errors=True)

    @property
    def exposed(self) -> dict[str, str]:
        """Each exposed host directory -> where samples see it (read-only)."""
        return {str(host): _inner_tools(index) for index, host in enumerate(self._exposed)}

    def expose(self, host_dir: str | os.PathLike[str]) -> str:
        """Make `host_dir` readable, read-only, by every later sample, even where the sample uid
        cannot reach it on the host; returns the path at which samples see it.

        Needs the mount namespace: an EvalError without it, or when the bind fails. The mount
        points live in the scratch dir's `.tools`, which a program's own files should not use."""
        host = Path(host_dir).resolve()
        if not host.is_dir():
            raise EvalError(f"cannot expose {host_dir} to the sandbox: not a directory")
        if not self.protections.namespaces:
            raise EvalError(
                f"cannot expose {host} to the sandbox: it needs mount namespaces (unshare)"
            )
        with self._expose_lock:
            if host not in self._exposed:
                exposed = (*self._exposed, host)
                probe = Path(tempfile.mkdtemp(dir=self._root))
                try:
                    bound = _succeeds([*self._namespace_prefix(probe, exposed), "true"])
                finally:
                    shutil.rmtree(probe, ignore_errors=True)
                if not bound:
                    raise EvalError(f"cannot bind {host} read-only into the sandbox")
                self._exposed = exposed
            return _inner_tools(self._exposed.index(host))

    def describe(self) -> dict[str, Any]:
        """Protections, limits and parallelism, as recorded in results files."""
        exposed = "; ".join(f"{host} at {inner}" for host, inner in self.exposed.items())
        return {
            **self.protections.describe(),
            "exposed": f"read-only (nosuid, nodev): {exposed}" if exposed else "none",
            "workers": self.workers,
            **{f"limit_{key}": value for key, value in dataclasses.asdict(self.limits).items()},
        }

    def run(self, program: Program) -> RunResult:
        """Run one program on a free worker slot (blocks while all are busy)."""
        slot = self._free_slots.get()
        try:
            return self._run_in_slot(program, slot)
        finally:
            self._free_slots.put(slot)

    def run_all(self, programs: Sequence[Program], desc: str = "executing") -> list[RunResult]:
        """Run programs on all workers in parallel; results are in the order of `programs`."""
        with ThreadPoolExecutor(self.workers) as pool:
            results = pool.map(self.run, programs)
            return list(tqdm(results, total=len(programs), desc=desc, unit="sample"))

    def _run_in_slot(self, program: Program, slot: int) -> RunResult:
        limits = program.limits or self.limits
        sample_uid = self._uid(slot) if self.protections.uid_per_worker else None
        scratch = Path(tempfile.mkdtemp(dir=self._root))
        try:
            _write_files(scratch, program.files, sample_uid)
            with tempfile.TemporaryFile() as output:
                steps = [(program.build, limits.build_timeout)] if program.build else []
                duration_s = 0.0
                for argv, timeout in [*steps, (program.argv, limits.timeout)]:
                    returncode, timed_out, step_s = self._execute(
                        self._command(argv, limits, timeout, scratch, sample_uid),
                        timeout,
                        scratch,
                        sample_uid,
                        output,
                    )
                    duration_s += step_s
                    if returncode != 0 or timed_out:
                        break
                if sample_uid is not None:  # daemons, where there is no PID namespace to end them
                    _kill_all_of(sample_uid)
                # The end of the output holds what matters: the pass marker or the traceback.
                output.seek(max(0, output.seek(0, os.SEEK_END) - limits.max_output_kb * 1024))
                text = output.read().decode("utf-8", "replace")
            files = _read_outputs(scratch, program.outputs, limits.max_file_mb * _MIB)
            return RunResult(returncode, timed_out, duration_s, text, files)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _execute(
        self, argv: list[str], timeout: float, scratch: Path, uid: int | None, output: IO[bytes]
    ) -> tuple[int, bool, float]:
        home = _INNER_SCRATCH if self.protections.namespaces else str(scratch)
        env = {"PATH": _PATH, "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        start = time.monotonic()
        process = subprocess.Popen(
            argv,
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _stop(process, uid)
            returncode = process.wait()
            timed_out = True
        return returncode, timed_out, time.monotonic() - start

    def _uid(self, slot: int) -> int:
        return _UID_BASE + os.getpid() * _MAX_WORKERS + slot

    def _command(
        self, argv: Sequence[str], limits: Limits, timeout: float, scratch: Path, uid: int | None
    ) -> list[str]:
        command: list[str] = []
        if self.protections.namespaces:
            command += self._namespace_prefix(scratch, self._exposed)
        if uid is not None:
            command += _drop_privileges_prefix(uid)
        if self.protections.rlimits:
            command += _rlimit_prefix(limits, timeout, per_uid=uid is not None)
        return [*command, *argv]

    def _namespace_prefix(self, scratch: Path, exposed: Sequence[Path]) -> list[str]:
        user = [] if self._as_root else ["--map-root-user"]
        return [
            "unshare", *user, "--pid", "--fork", "--kill-child", "--mount-proc", "--net",
            "--mount", "--propagation", "private", "--", "sh", "-c", _MOUNT_SCRATCH, "sh",
            str(scratch), str(len(exposed)), *map(str, exposed),
        ]  # fmt: skip

    def _detect_protections(self) -> Protections:
        namespaces = _succeeds([*self._namespace_prefix(self._root, ()), "true"])
        uid_per_worker = (
            self._as_root
            and shutil.which("kill", path=_PATH) is not None
            and _succeeds([*_drop_privileges_prefix(self._uid(0)), "true"])
        )
        rlimits = _succeeds(
            [*_rlimit_prefix(self.limits, self.limits.timeout, per_uid=False), "true"]
        )
        return Protections(namespaces, namespaces and not self._as_root, uid_per_worker, rlimits)


def _inner_tools(index: int) -> str:
    return f"{_INNER_SCRATCH}/{_TOOLS}/{index}"


def _drop_privileges_prefix(uid: int) -> list[str]:
    return [
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
        "--bounding-set=-all", "--inh-caps=-all", "--",
    ]  # fmt: skip


def _rlimit_prefix(limits: Limits, timeout: float, per_uid: bool) -> list[str]:
    command = [
        "prlimit",
        f"--as={limits.memory_mb * _MIB}",
        f"--cpu={_cpu_seconds(timeout)}",
        f"--fsize={limits.max_file_mb * _MIB}",
        f"--nofile={limits.max_open_files}",
        "--core=0",
    ]
    # RLIMIT_NPROC counts every process of the real uid: only meaningful for a uid of the sample's own.
    if per_uid:
        command.append(f"--nproc={limits.max_processes}")
    return [*command, "--"]


def _succeeds(argv: list[str]) -> bool:
    try:
        completed = subprocess.run(
            argv,
            env={"PATH": _PATH},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0


def _write_files(scratch: Path, files: Mapping[str, str | bytes], uid: int | None) -> None:
    for name, content in files.items():
        path = scratch / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    if uid is not None:
        for path in [scratch, *scratch.rglob("*")]:
            os.chown(path, uid, uid)


def _read_outputs(scratch: Path, names: Sequence[str], max_bytes: int) -> dict[str, bytes]:
    """The named top-level files of `scratch` that are plain files (a link the sample left there
    is not followed), each up to `max_bytes`."""
    files = {}
    for name in names:
        if "/" in name or name in ("", ".", ".."):
            raise EvalError(f"program output {name!r}: not a file name")
        try:
            descriptor = os.open(scratch / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            continue
        with os.fdopen(descriptor, "rb") as file:
            files[name] = file.read(max_bytes)
    return files


def _stop(process: subprocess.Popen[bytes], uid: int | None) -> None:
    """Kill a timed-out sample and everything it started.

    With a uid of its own, kill every process of that uid and let `unshare` reap the namespace's
    init, which returns only once the namespace is empty. Otherwise kill the sample's session.
    """
    if uid is not None:
        _kill_all_of(uid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=_STOP_GRACE_S)
            return
    with contextlib.suppress(ProcessLookupError):  # it ended as the timeout expired
        os.killpg(process.pid, signal.SIGKILL)


def _kill_all_of(uid: int) -> None:
    """Kill every process still running as `uid`: daemons that left the sample's session, say.

    kill(-1) sent by that uid reaches all its processes in one pass that forks cannot race.
    """
    subprocess.run(
        ["kill", "-KILL", "-1"],
        user=uid,
        group=uid,
        extra_groups=[],
        env={"PATH": _PATH},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
