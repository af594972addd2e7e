import os
import sysconfig
from pathlib import Path

import pytest

from data_tools.config import PrepareConfig
from data_tools.prepare import prepare
from data_tools.testing import python_module, write_fixture_corpus
from specialists.python.corpus import PYTHON, default_roots


def test_default_roots_cover_stdlib_and_pyenv_without_nesting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("3.9.1", "3.12.0"):
        stdlib = tmp_path / "versions" / version / "lib" / f"python{version[:-2]}"
        (stdlib / "site-packages").mkdir(parents=True)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    roots = default_roots()
    assert Path(sysconfig.get_path("stdlib")).resolve() in roots
    assert tmp_path / "versions" / "3.9.1" / "lib" / "python3.9" in roots
    assert not any(a != b and a.is_relative_to(b) for a in roots for b in roots)


def test_python_spec_drops_syntax_errors_and_duplicates(tmp_path: Path) -> None:
    expected = write_fixture_corpus(tmp_path / "src")
    (tmp_path / "src" / "broken.py").write_text(python_module(950) + "\ndef broken(:\n")
    config = PrepareConfig(vocab_size=300, seq_len=32, progress=False, workers=2,
                           tokenizer_cache_dir=str(tmp_path / "tok"))  # fmt: skip
    manifest = prepare(PYTHON, config, tmp_path / "out", [str(tmp_path / "src")])
    assert manifest["dropped"]["syntax_error"] == 1
    assert manifest["dropped"]["near_duplicate"] == expected["near_duplicate"]
    assert manifest["files_kept"] == expected["kept"]
    assert manifest["language"] == "python" and os.path.isfile(manifest["tokenizer"]["path"])
