from pathlib import Path

from data_tools.config import PrepareConfig
from data_tools.corpus import build_corpus
from data_tools.spec import LanguageSpec
from data_tools.testing import write_fixture_corpus

SPEC = LanguageSpec("fixture", (".py",), "#", lambda text: None, list)


def test_result_does_not_depend_on_workers_or_batch_size(tmp_path: Path) -> None:
    root = tmp_path / "src"
    expected = write_fixture_corpus(root)
    results = []
    for workers, batch_files in ((1, 64), (2, 1), (3, 5)):
        out = tmp_path / f"out_{workers}_{batch_files}"
        config = PrepareConfig(workers=workers, batch_files=batch_files, progress=False)
        stats = build_corpus(SPEC, [str(root)], config, out)
        assert stats["files_kept"] == expected["kept"]
        texts = (out / "texts.bin").read_bytes()
        results.append(((out / "index.json").read_text(), texts, stats["dropped"],
                        stats["dedup"]["lsh_quality"]))  # fmt: skip
    assert results[0] == results[1] == results[2]
