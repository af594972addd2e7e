import resource

import pytest

from data_tools import pack
from data_tools.dedup import NearDedupFiles, write_run
from data_tools.pack import allow_open_runs, merged_documents


@pytest.fixture
def restored_file_limit():
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield limits
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def test_merging_more_runs_than_the_soft_file_limit_raises_it(tmp_path, restored_file_limit):
    soft, hard = restored_file_limit
    tasks = 300
    if hard != resource.RLIM_INFINITY and hard < tasks + 400:
        pytest.fail(f"this machine's hard limit on open files ({hard}) is below the test's need")
    files = NearDedupFiles(tmp_path)
    for rank in range(tasks):  # rank r holds keys r and r + tasks: the merge interleaves them
        write_run(files.run(rank), [(f"{rank:032x}", f"a{rank}", "x"),
                                    (f"{rank + tasks:032x}", f"b{rank}", "y")])  # fmt: skip
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))
    keys = [key for key, _, _ in merged_documents(files, tasks, skip_removed=False)]
    assert keys == [f"{index:032x}" for index in range(2 * tasks)]
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= tasks


def test_a_hard_file_limit_below_the_merge_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(pack.resource, "getrlimit", lambda _: (1024, 2048))
    with pytest.raises(ValueError, match=r"all 6250 tasks' sorted runs .* only 2048 files"):
        allow_open_runs(6250)
