"""The sandbox runs correct programs and contains hostile ones."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from evals.errors import EvalError
from evals.sandbox import Limits, Program, RunResult, Sandbox
from evals.toolchain import executables_named, find_runnable


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(Limits(timeout=3, memory_mb=512, max_processes=16, max_output_kb=4)) as box:
        yield box


@pytest.fixture(scope="module")
def python(sandbox: Sandbox) -> str:
    return find_runnable(sandbox, executables_named("python3"), ["-I", "-S", "-c", "pass"])


def script(python: str, source: str, name: str = "main.py") -> Program:
    return Program((python, "-I", "-S", name), {name: source})


@pytest.fixture()
def world_readable_dir() -> Iterator[Path]:
    """A fresh directory any uid can reach on the host, for samples that run without namespaces."""
    directory = Path(tempfile.mkdtemp(prefix="sandbox-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def shared_with_samples(box: Sandbox, directory: Path) -> str:
    """Where samples see `directory`: exposed in their mount namespace, else at its host path."""
    return box.expose(directory) if box.protections.namespaces else str(directory)


class LastFirst(Sandbox):
    """Runs `programs[i]` only once every later program has finished: they end in reverse order."""

    def __init__(self, programs: Sequence[Program]) -> None:
        super().__init__(Limits(timeout=30), workers=len(programs))
        self.programs = list(programs)
        self.finished: list[int] = []
        self._turn = threading.Condition()

    def run(self, program: Program) -> RunResult:
        index = self.programs.index(program)
        later = len(self.programs) - 1 - index
        with self._turn:
            # The timeout only turns a bug (a worker short) into a failure instead of a hang.
            assert self._turn.wait_for(lambda: len(self.finished) == later, timeout=300)
        result = super().run(program)
        with self._turn:
            self.finished.append(index)
            self._turn.notify_all()
        return result


def processes_mentioning(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # the process ended while we looked
    return found


def test_exit_status_and_output(sandbox: Sandbox, python: str) -> None:
    ok = sandbox.run(script(python, "print('hello')"))
    failed = sandbox.run(script(python, "assert 1 == 2, 'wrong answer'"))
    assert ok.passed and ok.output == "hello\n"
    assert not failed.passed and failed.returncode == 1
    assert "AssertionError: wrong answer" in failed.output


def test_results_keep_program_order(python: str) -> None:
    programs = [script(python, f"import sys; sys.exit({i})") for i in range(6)]
    with LastFirst(programs) as box:
        results = box.run_all(programs)
    assert box.finished == list(reversed(range(6)))
    assert [result.returncode for result in results] == list(range(6))


def test_samples_run_at_once_on_all_workers(python: str, world_readable_dir: Path) -> None:
    # Each sample blocks until the other opens the FIFO: run one after the other, both time out.
    fifo = world_readable_dir / "fifo"
    os.mkfifo(fifo)
    fifo.chmod(0o666)
    with Sandbox(Limits(timeout=30), workers=2) as box:
        inner = f"{shared_with_samples(box, world_readable_dir)}/fifo"
        reader = script(python, f"print(open({inner!r}).read())")
        writer = script(python, f"open({inner!r}, 'w').write('met')")
        results = box.run_all([reader, writer])
    assert [result.passed for result in results] == [True, True]
    assert results[0].output == "met\n"


def test_infinite_loop_times_out(sandbox: Sandbox, python: str) -> None:
    result = sandbox.run(script(python, "while True:\n    pass\n"))
    assert result.timed_out and not result.passed
    assert result.duration_s >= sandbox.limits.timeout


def test_fork_bomb_is_bounded_and_leaves_nothing_behind(python: str) -> None:
    marker = f"bomb_{uuid.uuid4().hex}.py"
    bomb = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    spawn = (
        "import subprocess, sys\n"
        "children = [subprocess.Popen([sys.executable, '-c', 'pass']) for _ in range(6)]\n"
        "assert all(child.wait() == 0 for child in children)\n"
    )
    with Sandbox(Limits(timeout=3, max_processes=8), workers=1) as one_worker:
        result = one_worker.run(script(python, bomb, name=marker))
        assert result.timed_out
        assert processes_mentioning(marker) == []
        # The bomb's processes no longer count against the worker's uid.
        assert one_worker.run(script(python, spawn)).passed


def test_daemon_dies_with_its_sample(sandbox: Sandbox, python: str) -> None:
    marker = uuid.uuid4().hex
    daemon = (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', "
        f"'{marker}'], start_new_session=True)\n"
    )
    assert sandbox.run(script(python, daemon)).passed
    assert processes_mentioning(marker) == []


def test_unbounded_allocation_fails_fast(sandbox: Sandbox, python: str) -> None:
    result = sandbox.run(script(python, "blocks = [bytearray(1 << 30) for _ in range(64)]"))
    assert not result.timed_out and "MemoryError" in result.output


def test_output_keeps_its_end_within_the_cap(sandbox: Sandbox, python: str) -> None:
    result = sandbox.run(script(python, "for i in range(100000):\n    print(i)\nprint('end')\n"))
    assert result.passed and result.output.endswith("99999\nend\n")
    assert len(result.output) <= sandbox.limits.max_output_kb * 1024


def test_output_flood_is_stopped(sandbox: Sandbox, python: str) -> None:
    result = sandbox.run(script(python, "while True:\n    print('x' * 10000)\n"))
    assert not result.passed
    assert len(result.output) <= sandbox.limits.max_output_kb * 1024


def test_files_outside_scratch_are_untouchable(
    sandbox: Sandbox, python: str, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("intact")
    tmp_path.chmod(0o777)
    attack = (
        "import os\n"
        f"for attempt in (lambda: os.remove({str(victim)!r}),\n"
        f"                lambda: open({str(tmp_path / 'new.txt')!r}, 'w'),\n"
        f"                lambda: open({str(Path.cwd() / 'planted.py')!r}, 'w')):\n"
        "    try:\n"
        "        attempt()\n"
        "    except OSError:\n"
        "        continue\n"
        "    raise SystemExit('escaped')\n"
    )
    assert sandbox.run(script(python, attack)).passed
    assert victim.read_text() == "intact"
    assert sorted(tmp_path.iterdir()) == [victim]
    assert not (Path.cwd() / "planted.py").exists()


def test_samples_do_not_see_each_others_files(sandbox: Sandbox, python: str) -> None:
    writer = "open('/tmp/shared.txt', 'w').write('leak'); open('here.txt', 'w').write('leak')"
    reader = (
        "import os\nassert not os.path.exists('/tmp/shared.txt') and os.listdir() == ['main.py']"
    )
    assert sandbox.run(script(python, writer)).passed
    assert sandbox.run(script(python, reader)).passed


def test_cannot_signal_the_harness_or_its_processes(sandbox: Sandbox, python: str) -> None:
    # Lives until its stdin closes.
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        attack = (
            "import os, signal\n"
            f"for pid in ({bystander.pid}, {os.getpid()}, os.getppid()):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "    except OSError:\n"
            "        pass\n"
        )
        assert sandbox.run(script(python, attack)).passed
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_no_network(sandbox: Sandbox, python: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        connect = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)"
        result = sandbox.run(script(python, connect))
    assert not result.passed and "Error" in result.output


def test_environment_is_scrubbed(
    sandbox: Sandbox, python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALS_TEST_SECRET", "hunter2")
    result = sandbox.run(script(python, "import os; print(sorted(os.environ))"))
    assert result.passed and "EVALS_TEST_SECRET" not in result.output


def test_samples_run_unprivileged_when_harness_is_root(sandbox: Sandbox, python: str) -> None:
    uid = int(sandbox.run(script(python, "import os; print(os.getuid())")).output)
    assert sandbox.protections.uid_per_worker == (os.geteuid() == 0)
    if sandbox.protections.uid_per_worker:
        assert uid not in (0, os.geteuid())
    assert set(sandbox.describe()) >= {"network", "filesystem", "processes", "user", "limits"}


def test_limits_reject_nonpositive_values() -> None:
    with pytest.raises(EvalError, match="--memory-mb must be positive"):
        Limits(memory_mb=0)


def test_build_step_runs_first_under_its_own_timeout(python: str) -> None:
    # The build outlives the run timeout (2 s) and stays far inside its own (600 s).
    compile_ = (python, "-I", "-S", "-c", "import time; time.sleep(3); open('built', 'w')")
    run = (python, "-I", "-S", "-c", "print(open('built').read() == '')")
    with Sandbox(Limits(timeout=2, build_timeout=600), workers=1) as box:
        built = box.run(Program(run, {"data.bin": b"\x00\xff"}, build=compile_))
        broken = box.run(Program(run, build=(python, "-c", "raise SystemExit('no build')")))
    assert built.passed and built.output == "True\n" and built.duration_s >= 3
    assert broken.returncode == 1 and "no build" in broken.output
    # A build that outlives its own timeout is stopped, and its program never runs.
    with Sandbox(Limits(timeout=30, build_timeout=1), workers=1) as box:
        slow = box.run(Program(run, build=(python, "-c", "import time; time.sleep(600)")))
    assert slow.timed_out and "True" not in slow.output


def test_exposed_directory_is_readable_and_read_only(python: str, tmp_path: Path) -> None:
    tmp_path.chmod(0o700)  # no other uid can reach anything below it on the host
    tools = tmp_path / "toolchain"
    (tools / "bin").mkdir(parents=True)
    # World-writable on the host: only the read-only bind stops the sample writing.
    tools.chmod(0o777)
    (tools / "bin").chmod(0o777)
    (tools / "bin" / "tool.txt").write_text("toolchain")
    (tools / "bin" / "tool.txt").chmod(0o666)
    with Sandbox(Limits(timeout=30), workers=1) as box:
        if not box.protections.namespaces:
            with pytest.raises(EvalError, match=r"needs mount namespaces \(unshare\)$"):
                box.expose(tools)
            return
        inner = box.expose(tools)
        assert box.expose(tools / "bin" / "..") == inner  # once per directory
        assert box.exposed == {str(tools): inner}
        assert str(tools) in box.describe()["exposed"] and "read-only" in box.describe()["exposed"]
        hidden = script(python, f"import os; assert not os.path.exists({str(tools)!r})")
        attack = (
            "import os, shutil\n"
            f"assert open({inner!r} + '/bin/tool.txt').read() == 'toolchain'\n"
            f"for attempt in (lambda: open({inner!r} + '/bin/tool.txt', 'a'),\n"
            f"                lambda: open({inner!r} + '/bin/new.txt', 'w'),\n"
            f"                lambda: os.remove({inner!r} + '/bin/tool.txt'),\n"
            f"                lambda: os.chmod({inner!r} + '/bin', 0o700),\n"
            f"                lambda: shutil.rmtree({inner!r})):\n"
            "    try:\n"
            "        attempt()\n"
            "    except OSError:\n"
            "        continue\n"
            "    raise SystemExit('wrote to the exposed directory')\n"
        )
        # An earlier step that replaces the mount points with a symlink to the real directory
        # neither redirects the next step's binds nor gets the real directory written through.
        relink = ("sh", "-c", f"mv .tools moved && ln -s {tools / 'bin'} .tools")
        results = [
            box.run(hidden),
            box.run(script(python, attack)),
            box.run(dataclasses.replace(script(python, attack), build=relink)),
        ]
    assert [result.passed for result in results] == [True, True, True], results
    # Closing the sandbox removed every scratch dir; the exposed directory is as it was.
    assert sorted(path.name for path in tools.rglob("*")) == ["bin", "tool.txt"]
    assert (tools / "bin" / "tool.txt").read_text() == "toolchain"
    assert stat.S_IMODE((tools / "bin").stat().st_mode) == 0o777


def test_exposing_needs_a_directory(tmp_path: Path) -> None:
    with Sandbox(workers=1) as box, pytest.raises(EvalError, match="not a directory"):
        box.expose(tmp_path / "absent")


def test_a_program_may_bring_its_own_limits(sandbox: Sandbox, python: str) -> None:
    if not sandbox.protections.rlimits:
        pytest.skip("prlimit unavailable")
    report = "import resource\nprint(*(resource.getrlimit(r)[0] for r in (resource.RLIMIT_AS, resource.RLIMIT_CPU)))"
    own = Limits(timeout=7, memory_mb=2048)
    default = sandbox.run(script(python, report))
    overridden = sandbox.run(dataclasses.replace(script(python, report), limits=own))
    assert default.output.split() == [str(512 << 20), "4"]  # the sandbox's 3 s: 4 CPU seconds
    assert overridden.output.split() == [str(2048 << 20), "8"]


def test_output_files_come_back_but_links_are_not_followed(sandbox: Sandbox, python: str) -> None:
    source = (
        "import os\n"
        "open('result.bin', 'wb').write(b'\\x00\\x01')\n"
        "os.symlink('/etc/hostname', 'link')\n"
        "os.mkdir('folder')\n"
    )
    program = dataclasses.replace(
        script(python, source), outputs=("result.bin", "link", "folder", "absent")
    )
    assert sandbox.run(program).files == {"result.bin": b"\x00\x01"}
    with pytest.raises(EvalError, match="not a file name"):
        sandbox.run(dataclasses.replace(program, outputs=("../escape",)))
