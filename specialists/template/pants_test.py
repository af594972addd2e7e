"""Adding a language as a user would, through Pants itself, on a copy of this checkout: the
template README's commands exactly as written (create Lua, run its tests), then the new
language's lint and its train job (`./pants run specialists/lua:train`) on a small Lua corpus.

The copy is what git would commit (tracked and untracked-not-ignored files); the nested Pants
runs without a daemon and shares the user's Pants caches, so it resolves nothing new.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from evals.shared_data import shared_data_dir
from specialists.testing import tiny_train_flags

README = Path("specialists/template/README.md")
_ENV_KEYS = ("PATH", "HOME", "PYENV_ROOT", "SSL_CERT_FILE", "XDG_CACHE_HOME", "CI")


def readme_commands(text: str) -> list[str]:
    """The `./pants` lines of the README's first bash block."""
    block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert block, f"{README} has no bash block"
    return [line for line in block.group(1).splitlines() if line.startswith("./pants ")]


def copy_checkout(source: Path, target: Path) -> None:
    """The files git would commit, copied with their modes."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source, check=True, capture_output=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listing):
        if (source / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target / name)


def pants(repo: Path, command: str) -> str:
    """Run one `./pants ...` command line in `repo`; its output, or a failure showing it."""
    env = {key: os.environ[key] for key in _ENV_KEYS if key in os.environ}
    argv = shlex.split(command)
    result = subprocess.run(
        [argv[0], "--no-pantsd", *argv[1:]], cwd=repo, env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = Path(os.environ["CODEFACTORY_REPO"])
    target = tmp_path_factory.mktemp("checkout") / "repo"
    copy_checkout(source, target)
    # The evaluation data beside the copy, where the copy's pants.toml looks (decontamination
    # and the evals read it).
    (target.parent / "shared").mkdir()
    (target.parent / "shared" / "data").symlink_to(shared_data_dir().resolve())
    return target


def test_readme_commands_create_and_test_a_language(repo: Path) -> None:
    commands = readme_commands((repo / README).read_text())
    assert [command.split()[:3] for command in commands] == [
        ["./pants", "run", "specialists/template:new"], ["./pants", "test", "specialists/lua::"],
    ]  # fmt: skip
    for command in commands:
        pants(repo, command)
    assert (repo / "specialists/lua/language.py").is_file()
    pants(repo, "./pants lint specialists/lua::")


def test_the_new_language_trains_through_its_pants_target(repo: Path, tmp_path: Path) -> None:
    if not (repo / "specialists/lua").is_dir():
        pants(repo, readme_commands((repo / README).read_text())[0])
    source = tmp_path / "lua"
    source.mkdir()
    rng = random.Random(0)
    words = ["local", "table", "insert", "pairs", "string", "format", "print", "value"]
    for index in range(12):
        lines = [f"-- {' '.join(rng.choices(words, k=10))}\n" for _ in range(20)]
        (source / f"module_{index}.lua").write_text("".join(lines))
    flags = [*tiny_train_flags([source], tmp_path / "work"), "--max-comment-fraction", "1.0",
             "--min-code-lines", "0"]  # fmt: skip
    output = pants(repo, f"./pants run specialists/lua:train -- {shlex.join(flags)}")
    assert "step 3," in output
    summary = json.loads((tmp_path / "work" / "run" / "summary.json").read_text())
    assert summary["step"] == 3 and summary["data"]["files_kept"] == 12
