from pathlib import Path

from core.config import DataConfig
from data_tools.corpus import build_corpus
from data_tools.filters import generic_language
from data_tools.testing import write_fixture_corpus

SPEC = generic_language("fixture", (".py",))


def test_result_does_not_depend_on_workers_or_batch_size(tmp_path: Path) -> None:
    root = tmp_path / "src"
    expected = write_fixture_corpus(root)
    results = []
    for workers, batch_files in ((1, 64), (2, 1), (3, 5)):
        out = tmp_path / f"out_{workers}_{batch_files}"
        config = DataConfig(workers=workers, batch_files=batch_files, progress=False)
        stats = build_corpus(SPEC, [str(root)], config, out)
        assert stats["files_kept"] == expected["kept"]
        texts = (out / "texts.bin").read_bytes()
        results.append(((out / "index.json").read_text(), texts, stats["dropped"],
                        stats["dedup"]["lsh_quality"]))  # fmt: skip
    assert results[0] == results[1] == results[2]
