"""The pipeline on each executor, and killed mid-run: the same bytes out every time."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import ALL_TOKENS, DataConfig, ModelConfig, RunConfig, TrainConfig, to_dict
from core.data import MANIFEST_FILE
from data_tools.filters import generic_language
from data_tools.prepare import prepare
from data_tools.testing import write_fixture_corpus

SPEC = generic_language("fixture", (".py",))
KILL_DEADLINE_S = 600  # only bounds a broken run; the test waits on files, not on time


def _run(tokenizers: Path, **overrides) -> RunConfig:
    """The fixture's run (`tokenizers`: the tokenizer cache, which the manifest names); 32
    permutations make 5 LSH bands, so 5 band tasks, each a process start on Ray and Slurm."""
    settings = {"max_tokens": ALL_TOKENS, "validation_fraction": 0.2, "progress": False,
                "dedup_eval_sample": 50, "decontaminate": False, "tasks": 4, "workers": 2,
                "num_perm": 32,
                "tokenizer_cache_dir": str(tokenizers)}  # fmt: skip
    return RunConfig(
        ModelConfig(vocab_size=300, max_seq_len=32),
        TrainConfig(seq_len=32),
        DataConfig(**settings | overrides),
    )


def _outputs(directory: Path) -> dict[str, bytes]:
    names = [MANIFEST_FILE, *(p.name for p in directory.glob("*.npy"))]
    return {name: (directory / name).read_bytes() for name in sorted(names)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, bytes]]:
    """The fixture corpus, the tokenizer cache and the outputs of an uninterrupted local
    prepare."""
    tmp_path = tmp_path_factory.mktemp("reference")
    root, tokenizers = tmp_path / "src", tmp_path / "tokenizers"
    write_fixture_corpus(root)
    prepare(SPEC, _run(tokenizers), tmp_path / "out", [str(root)])
    return root, tokenizers, _outputs(tmp_path / "out")


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment with its import path, for child processes."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **extra}


_PREPARE_IN_CHILD = """
import json, sys
from pathlib import Path
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from data_tools.filters import generic_language
from data_tools.prepare import prepare
run = json.loads(sys.argv[1])
prepare(generic_language("fixture", (".py",)),
        RunConfig(ModelConfig(**run["model"]), TrainConfig(**run["train"]), DataConfig(**run["data"])),
        Path(sys.argv[2]), [sys.argv[3]])
"""


def test_a_killed_prepare_resumes_to_identical_output(reference, tmp_path: Path) -> None:
    root, tokenizers, expected = reference
    run = _run(tokenizers, tasks=6, workers=1)
    out = tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-c", _PREPARE_IN_CHILD, json.dumps(to_dict(run)), str(out), str(root)],
        env=_environment(), start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + KILL_DEADLINE_S
    done: list[Path] = []
    while not done and child.poll() is None and time.monotonic() < deadline:
        done = list(out.glob("work/*/logs/filter/completions/*"))
        time.sleep(0.01)
    os.killpg(child.pid, signal.SIGKILL)  # the whole process group, as a scheduler kills a job
    child.wait()
    assert done, "the prepare ended before its filter stage finished a task"
    finished = sorted(path.name for path in done[0].parent.iterdir())
    assert len(finished) < 6 and not (out / MANIFEST_FILE).exists()
    first_log = done[0].parents[1] / "logs" / f"task_{finished[0]}.log"
    written = first_log.stat().st_mtime_ns
    prepare(SPEC, run, out, [str(root)])
    assert _outputs(out) == expected
    assert first_log.stat().st_mtime_ns == written  # a finished task was skipped, not rerun


def test_ray_executor_gives_the_local_output(reference, tmp_path: Path) -> None:
    root, tokenizers, expected = reference
    manifest = prepare(SPEC, _run(tokenizers, executor="ray"), tmp_path / "out", [str(root)])
    assert manifest["execution"]["executor"] == "ray"
    assert _outputs(tmp_path / "out") == expected


_FAKE_SBATCH = """#!/bin/bash
# Runs the submitted script at once, each array task in turn, as Slurm would on one node.
echo "$@" >> "$(dirname "$0")/sbatch_calls.log"
script="${@: -1}"
export $(echo "$@" | grep -o 'RUN_OFFSET=[0-9]*')
array=$(grep -o -- '--array=[0-9]*-[0-9]*' "$script" | cut -d= -f2)
count=$(wc -l < "$(dirname "$0")/sbatch_calls.log")
for task in $(seq ${array%-*} ${array#*-}); do
  SLURM_ARRAY_TASK_ID=$task SLURM_NODELIST=localhost bash "$script" >> "$(dirname "$0")/jobs.log" 2>&1 || exit 1
done
[ -n "$array" ] || bash "$script" >> "$(dirname "$0")/jobs.log" 2>&1 || exit 1
echo "Submitted batch job $((1000 + count))"
"""
_FAKE_SRUN = """#!/bin/bash
while [ $# -gt 0 ]; do case "$1" in -n) shift 2;; -*) shift;; *) break;; esac; done
exec "$@"
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_slurm_executor_submits_a_chain_of_array_jobs(reference, tmp_path: Path) -> None:
    root, tokenizers, expected = reference
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "sbatch", _FAKE_SBATCH)
    _executable(bin_dir / "srun", _FAKE_SRUN)
    _executable(bin_dir / "scontrol", "#!/bin/bash\necho localhost\n")  # show hostnames
    for tool in ("launch_pickled_pipeline", "merge_stats"):  # the environment's entry points
        _executable(
            bin_dir / tool,
            f'#!/bin/bash\nexec "{sys.executable}" -c "import sys; '
            f'from datatrove.tools.{tool} import main; sys.exit(main())" "$@"\n',
        )
    env_command = f'export PATH="{bin_dir}:$PATH" PYTHONPATH="{os.pathsep.join(sys.path)}"'
    run = _run(tokenizers, executor="slurm", slurm_partition="cpu", slurm_env_command=env_command)
    os.environ["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    try:
        manifest = prepare(SPEC, run, tmp_path / "out", [str(root)])
    finally:
        os.environ["PATH"] = os.environ["PATH"].split(":", 1)[1]
    assert _outputs(tmp_path / "out") == expected and manifest["execution"]["executor"] == "slurm"
    calls = (bin_dir / "sbatch_calls.log").read_text().splitlines()
    stage_jobs = [call for call in calls if "RUN_OFFSET=" in call]  # the rest merge stats
    assert len(stage_jobs) == 6 and "--dependency" not in stage_jobs[0]
    assert all("--dependency=afterok:" in call for call in stage_jobs[1:])
    (script,) = (tmp_path / "out").glob("work/*/logs/filter/launch_script.slurm")
    text = script.read_text()
    assert "#SBATCH --partition=cpu" in text and "#SBATCH --array=0-3" in text
    assert env_command in text and "launch_pickled_pipeline" in text
