import resource

import pytest

from data_tools import open_files
from data_tools.dedup import NearDedupFiles, write_run
from data_tools.open_files import OpenFiles, allow_open_files
from data_tools.pack import merged_documents
from data_tools.prepare import prepare


@pytest.fixture
def restored_file_limit():
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield limits
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def test_a_merge_of_more_runs_than_the_soft_file_limit_runs_after_open_files(
    tmp_path, restored_file_limit
):
    soft, hard = restored_file_limit
    tasks = 300
    if hard != resource.RLIM_INFINITY and hard < tasks + 400:
        pytest.fail(f"this machine's hard limit on open files ({hard}) is below the test's need")
    files = NearDedupFiles(tmp_path)
    for rank in range(tasks):  # rank r holds keys r and r + tasks: the merge interleaves them
        write_run(files.run(rank), [(f"{rank:032x}", f"a{rank}", "x"),
                                    (f"{rank + tasks:032x}", f"b{rank}", "y")])  # fmt: skip
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))
    assert OpenFiles(tasks).run(None) is None  # what the pack stage runs first
    keys = [key for key, _, _ in merged_documents(files, tasks, skip_removed=False)]
    assert keys == [f"{index:032x}" for index in range(2 * tasks)]
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= tasks


def test_a_hard_file_limit_below_the_merge_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(open_files.resource, "getrlimit", lambda _: (1024, 2048))
    with pytest.raises(ValueError, match=r"all 6250 tasks' files at once, .* only 2048 files"):
        allow_open_files(6250)


def test_a_prepare_of_more_tasks_than_the_soft_file_limit_gives_the_same_output(
    tmp_path, restored_file_limit
) -> None:
    """Every stage that reads all tasks' files (datatrove's duplicate finder and buckets, the
    clusters, the pack) runs under a soft limit below the task count, as on a cluster node."""
    from data_tools.prepare_test import SPEC, _config, data_files
    from data_tools.testing import write_fixture_corpus

    write_fixture_corpus(tmp_path / "src")
    few = prepare(SPEC, _config(tmp_path, tasks=2), tmp_path / "few", [str(tmp_path / "src")])
    soft, hard = restored_file_limit
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))
    many = prepare(SPEC, _config(tmp_path, tasks=160), tmp_path / "many", [str(tmp_path / "src")])
    assert many["files_kept"] == few["files_kept"]
    assert data_files(tmp_path / "many") == data_files(tmp_path / "few")
