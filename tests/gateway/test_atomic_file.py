"""``atomic_file`` (Parquet, combined CSV, JSON lines) keeps ``download``'s promises: a new
file gets a new file's mode, a replaced one keeps its mode, the fsync covers the mode, and
``overwrite=False`` refuses whatever the rename would replace, a link to nothing included."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from report_gateway import DownloadError
from report_gateway.atomic import atomic_file


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_overwrite_false_refuses_a_link_to_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    target.symlink_to(tmp_path / "nowhere")
    with pytest.raises(DownloadError, match="exists"), atomic_file(target, overwrite=False) as out:
        out.write(b"data")
    assert target.is_symlink()
    assert os.readlink(target) == str(tmp_path / "nowhere")


@pytest.mark.usefixtures("umask_022")
@pytest.mark.parametrize("existing", [None, 0o600, 0o640])
def test_the_file_gets_a_new_files_mode_or_keeps_the_replaced_ones(
    tmp_path: Path, existing: int | None
) -> None:
    target = tmp_path / "out.parquet"
    if existing is not None:
        target.write_bytes(b"yesterday")
        os.chmod(target, existing)
    with atomic_file(target) as out:
        out.write(b"today")
    assert target.read_bytes() == b"today"
    assert stat.S_IMODE(target.stat().st_mode) == (0o644 if existing is None else existing)


@pytest.mark.usefixtures("umask_022")
@pytest.mark.parametrize("existing", [None, 0o600])
def test_the_fsync_comes_after_the_mode_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: int | None
) -> None:
    target = tmp_path / "out.parquet"
    if existing is not None:
        target.write_bytes(b"yesterday")
        os.chmod(target, existing)
    modes_at_fsync: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            modes_at_fsync.append(stat.S_IMODE(info.st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with atomic_file(target) as out:
        out.write(b"today")
    assert modes_at_fsync == [0o644 if existing is None else existing]
