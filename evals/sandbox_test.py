"""The sandbox runs correct programs and contains hostile ones."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.errors import EvalError
from evals.sandbox import Limits, Program, Sandbox
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


def test_results_keep_program_order(sandbox: Sandbox, python: str) -> None:
    programs = [
        script(python, f"import sys, time; time.sleep(0.{5 - i}); sys.exit({i})") for i in range(6)
    ]
    assert [result.returncode for result in sandbox.run_all(programs)] == list(range(6))


def test_infinite_loop_times_out(sandbox: Sandbox, python: str) -> None:
    result = sandbox.run(script(python, "while True:\n    pass\n"))
    assert result.timed_out and not result.passed
    assert result.duration_s < sandbox.limits.timeout + 2


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
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        attack = (
            "import os, signal\n"
            f"for pid in ({bystander.pid}, {os.getpid()}, os.getppid()):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "    except OSError:\n"
            "        pass\n"
        )
        sandbox.run(script(python, attack))
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
    compile_ = (python, "-I", "-S", "-c", "import time; time.sleep(1.5); open('built', 'w')")
    run = (python, "-I", "-S", "-c", "print(open('built').read() == '')")
    with Sandbox(Limits(timeout=1, build_timeout=5), workers=1) as box:
        built = box.run(Program(run, {"data.bin": b"\x00\xff"}, build=compile_))
        broken = box.run(Program(run, build=(python, "-c", "raise SystemExit('no build')")))
        slow = box.run(Program(run, build=(python, "-c", "import time; time.sleep(60)")))
    assert built.passed and built.output == "True\n" and built.duration_s > 1.5
    assert broken.returncode == 1 and "no build" in broken.output
    assert slow.timed_out and slow.duration_s < 7
