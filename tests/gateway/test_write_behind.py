"""A durable download writes behind (``WriteBehind``) and is still fsynced before the rename.

Write-behind only moves disk work earlier: whatever ``sync_file_range`` does (works, is
missing, fails), the file's bytes are exact and the file and its folder are fsynced
before ``download`` returns, the file before it appears at the target path.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import report_gateway.transfer as transfer
from report_gateway import ReportRun, ResultFile, RunStatus
from report_gateway.download import download

DATA = b"id,amount\n" + b"".join(b"row_%d,%d\n" % (i, i * 7) for i in range(20000))
WINDOW = 16 << 10
WRITE = 2
WAIT_ALL = 1 | 2 | 4


def make_run(size: int | None = len(DATA), **result: Any) -> ReportRun:
    return ReportRun(
        provider="fake",
        id="run_1",
        report_id="r",
        status=RunStatus.SUCCEEDED,
        raw_status="succeeded",
        result=ResultFile(url="https://files.invalid/x", size=size, **result),
    )


class Recorder:
    """What reached the disk layer, in order: fsyncs (of a file or a folder), renames and
    ``sync_file_range`` calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[Any, ...]] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            info = os.fstat(fd)
            self.events.append(("fsync", stat.S_ISDIR(info.st_mode), info.st_ino))
            real_fsync(fd)

        def replace(source: Any, target: Any) -> None:
            self.events.append(("replace", os.stat(source).st_ino, Path(target)))
            real_replace(source, target)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(transfer, "WRITEBACK_WINDOW", WINDOW)

    def ranges(self, flags: int) -> list[tuple[int, int]]:
        return [(e[2], e[3]) for e in self.events if e[0] == "sync_file_range" and e[4] == flags]

    def fake_sync_file_range(self, answer: int | None) -> Callable[[int, int, int, int], int]:
        """Records each call; answers ``answer``, or the real call's answer when None."""
        real = transfer._load_sync_file_range()

        def call(fd: int, offset: int, nbytes: int, flags: int) -> int:
            self.events.append(("sync_file_range", fd, offset, nbytes, flags))
            if answer is not None:
                return answer
            return real(fd, offset, nbytes, flags) if real is not None else 0

        return call

    def assert_durable(self, target: Path) -> None:
        """The target's own bytes were fsynced before the rename, its folder after."""
        kinds = [e[0] for e in self.events]
        rename = kinds.index("replace")
        inode = self.events[rename][1]
        assert self.events[rename][2] == target
        assert os.stat(target).st_ino == inode
        assert ("fsync", False, inode) in self.events[:rename]
        assert ("fsync", True, os.stat(target.parent).st_ino) in self.events[rename:]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    return Recorder(monkeypatch)


def _tiles(ranges: list[tuple[int, int]]) -> bool:
    """Whether the ranges follow each other from byte 0, no gap, no overlap."""
    position = 0
    for offset, length in ranges:
        if offset != position or length <= 0:
            return False
        position += length
    return True


def test_default_download_writes_behind_and_fsyncs_before_the_rename(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "_sync_file_range", recorder.fake_sync_file_range(None))
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=5000)])
    target = download(make_run(), tmp_path / "out.csv", play)
    assert target.read_bytes() == DATA
    started, waited = recorder.ranges(WRITE), recorder.ranges(WAIT_ALL)
    # Every window is handed to the disk in order, the one before it waited for.
    assert len(started) >= len(DATA) // (WINDOW + 5000) - 1
    assert _tiles(started)
    assert _tiles(waited)
    assert len(waited) == len(started) - 1
    assert sum(length for _, length in started) <= len(DATA)
    recorder.assert_durable(target)


def test_non_durable_download_does_not_write_behind(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "_sync_file_range", recorder.fake_sync_file_range(None))
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=5000)])
    target = download(make_run(), tmp_path / "out.csv", play, durable=False)
    assert target.read_bytes() == DATA
    assert [e for e in recorder.events if e[0] in ("fsync", "sync_file_range")] == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_linux_libc_call_is_found_and_accepted(tmp_path: Path) -> None:
    call = transfer._load_sync_file_range()
    assert call is not None
    with open(tmp_path / "f", "wb") as out:
        out.write(b"x" * 10000)
        out.flush()
        assert call(out.fileno(), 0, 10000, WRITE) == 0


@pytest.mark.parametrize("answer", ["missing", "fails"])
def test_without_write_behind_the_download_is_still_whole_and_durable(
    tmp_path: Path,
    opener: Any,
    scripted: Any,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
) -> None:
    fake = None if answer == "missing" else recorder.fake_sync_file_range(-1)
    monkeypatch.setattr(transfer, "_sync_file_range", fake)
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=5000)])
    target = download(make_run(), tmp_path / "out.csv", play, on_progress=lambda *_: None)
    assert target.read_bytes() == DATA
    # A failing call is tried once, then left alone.
    calls = [e for e in recorder.events if e[0] == "sync_file_range"]
    assert len(calls) == (0 if answer == "missing" else 1)
    recorder.assert_durable(target)


def test_write_behind_starts_again_with_a_body_that_starts_again(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "_sync_file_range", recorder.fake_sync_file_range(None))
    play = opener(
        [
            lambda offset: scripted(DATA, ranges=False, fail_after=100_000, chunk=4096),
            lambda offset: scripted(DATA, ranges=False, chunk=4096),
        ]
    )
    target = download(make_run(), tmp_path / "out.csv", play)
    assert target.read_bytes() == DATA
    started = recorder.ranges(WRITE)
    restart = next(i for i, (offset, _) in enumerate(started) if i and offset == 0)
    assert _tiles(started[:restart])
    assert _tiles(started[restart:])
    recorder.assert_durable(target)


def test_checksummed_download_writes_behind_too(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    monkeypatch.setattr(transfer, "_sync_file_range", recorder.fake_sync_file_range(None))
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=5000)])
    run = make_run(checksum="sha256:" + hashlib.sha256(DATA).hexdigest())
    target = download(run, tmp_path / "out.csv", play)
    assert target.read_bytes() == DATA
    assert recorder.ranges(WRITE)
    assert _tiles(recorder.ranges(WRITE))
    recorder.assert_durable(target)
