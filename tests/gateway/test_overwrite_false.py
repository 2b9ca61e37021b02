"""``overwrite=False`` keeps a file that appears at the target while the result is written.

The check before the transfer is not enough: another job, or a user copying yesterday's
file back, may create the target during a long download, and a plain rename at the end
would replace it. Each way the last step may take (``renameat2``, a hard link, a last
check) is driven here, on the download and on ``atomic_file``.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from report_gateway import DownloadError
from report_gateway import download as download_module
from report_gateway.atomic import atomic_file
from report_gateway.download import download

from tests.gateway.downloads import DATA, failing_renameat2, leftovers, make_run, take_the_way

THEIRS = b"a file someone else put there meanwhile\n"

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX renames and links")


@pytest.fixture(params=["renameat2", "renameat2 refused, link", "link", "last check"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which way the no-replace rename takes: the system's, or each fallback forced."""
    name: str = request.param
    take_the_way(name, monkeypatch)
    return name


def test_a_target_created_during_the_download_is_kept(
    tmp_path: Path, opener: Any, scripted: Any, way: str
) -> None:
    target = tmp_path / "out.csv"

    def someone_else(done: int, total: int | None) -> None:
        if not target.exists():
            target.write_bytes(THEIRS)

    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=10_000)])
    with pytest.raises(DownloadError, match="appeared while") as caught:
        download(make_run(), target, play, overwrite=False, on_progress=someone_else)
    assert str(target) in str(caught.value)
    assert target.read_bytes() == THEIRS
    assert leftovers(tmp_path) == []


def test_with_nothing_there_the_result_is_written_under_one_name(
    tmp_path: Path, opener: Any, scripted: Any, way: str
) -> None:
    target = tmp_path / "out.csv"
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    assert download(make_run(), target, play, overwrite=False) == target
    assert target.read_bytes() == DATA
    assert target.stat().st_nlink == 1
    assert leftovers(tmp_path) == []


def test_a_link_made_at_the_target_during_the_download_is_kept(
    tmp_path: Path, opener: Any, scripted: Any, way: str
) -> None:
    """A link to nothing is a name too: the rename must not replace it."""
    target = tmp_path / "out.csv"

    def someone_else(done: int, total: int | None) -> None:
        if not os.path.lexists(target):
            os.symlink("nowhere.csv", target)

    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=10_000)])
    with pytest.raises(DownloadError, match="appeared while"):
        download(make_run(), target, play, overwrite=False, on_progress=someone_else)
    assert os.readlink(target) == "nowhere.csv"
    assert leftovers(tmp_path) == []


def test_another_failure_of_the_rename_is_a_download_error_naming_the_target(
    tmp_path: Path, opener: Any, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    monkeypatch.setattr(download_module, "_renameat2", failing_renameat2(errno.ENOSPC))
    target = tmp_path / "out.csv"
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    with pytest.raises(DownloadError, match=r"out\.csv") as caught:
        download(make_run(), target, play, overwrite=False)
    assert "No space left" in str(caught.value)
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_atomic_file_keeps_a_target_created_while_it_was_written(tmp_path: Path, way: str) -> None:
    target = tmp_path / "out.parquet"

    def write_while_someone_else_does() -> None:
        with atomic_file(target, overwrite=False) as out:
            out.write(b"ours")
            target.write_bytes(THEIRS)

    with pytest.raises(DownloadError, match="appeared while"):
        write_while_someone_else_does()
    assert target.read_bytes() == THEIRS
    assert leftovers(tmp_path) == []


def test_overwrite_true_still_replaces(tmp_path: Path, opener: Any, scripted: Any) -> None:
    target = tmp_path / "out.csv"

    def someone_else(done: int, total: int | None) -> None:
        target.write_bytes(THEIRS)

    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=10_000)])
    download(make_run(), target, play, on_progress=someone_else)
    assert target.read_bytes() == DATA
