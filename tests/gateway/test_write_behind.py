"""A durable download writes behind (``WriteBehind``) and is still fsynced before the rename.

Write-behind only moves disk work earlier: whatever the background ``fdatasync`` or its
fallback ``sync_file_range`` does (works, is missing, fails), the file's bytes are exact
and the file and its folder are fsynced before ``download`` returns, the file before it
appears at the target path. A background flush's error fails the download (no file, no
temporary left); the background thread never outlives the download, whatever way it ends.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import report_gateway.transfer as transfer
from report_gateway.download import download
from report_gateway.errors import DownloadError, IntegrityError

from tests.gateway.downloads import make_run

DATA = b"id,amount\n" + b"".join(b"row_%d,%d\n" % (i, i * 7) for i in range(20000))
WINDOW = 16 << 10
WRITE = 2
WAIT_ALL = 1 | 2 | 4


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
        monkeypatch.setattr(transfer, "RANGE_WINDOW", WINDOW)

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


@pytest.fixture
def no_fdatasync(monkeypatch: pytest.MonkeyPatch) -> None:
    """A platform without ``os.fdatasync``: write-behind falls back to ``sync_file_range``."""
    monkeypatch.delattr(os, "fdatasync", raising=False)


def _tiles(ranges: list[tuple[int, int]]) -> bool:
    """Whether the ranges follow each other from byte 0, no gap, no overlap."""
    position = 0
    for offset, length in ranges:
        if offset != position or length <= 0:
            return False
        position += length
    return True


@pytest.mark.usefixtures("no_fdatasync")
def test_without_fdatasync_the_download_writes_behind_by_ranges_and_fsyncs_before_the_rename(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "_sync_file_range", recorder.fake_sync_file_range(None))
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=5000)])
    target = download(make_run(len(DATA)), tmp_path / "out.csv", play)
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
    flushes = Flushes(monkeypatch)
    before = threading.active_count()
    target = download(
        make_run(len(DATA)), tmp_path / "out.csv", play, durable=False, on_progress=flushes.watch
    )
    assert target.read_bytes() == DATA
    assert [e for e in recorder.events if e[0] in ("fsync", "sync_file_range")] == []
    assert flushes.calls == []
    assert not flushes.thread_seen
    assert threading.active_count() == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_linux_libc_call_is_found_and_accepted(tmp_path: Path) -> None:
    call = transfer._load_sync_file_range()
    assert call is not None
    with open(tmp_path / "f", "wb") as out:
        out.write(b"x" * 10000)
        out.flush()
        assert call(out.fileno(), 0, 10000, WRITE) == 0


@pytest.mark.usefixtures("no_fdatasync")
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
    target = download(make_run(len(DATA)), tmp_path / "out.csv", play, on_progress=lambda *_: None)
    assert target.read_bytes() == DATA
    # A failing call is tried once, then left alone.
    calls = [e for e in recorder.events if e[0] == "sync_file_range"]
    assert len(calls) == (0 if answer == "missing" else 1)
    recorder.assert_durable(target)


@pytest.mark.usefixtures("no_fdatasync")
def test_range_write_behind_starts_again_with_a_body_that_starts_again(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "_sync_file_range", recorder.fake_sync_file_range(None))
    play = opener(
        [
            lambda offset: scripted(DATA, ranges=False, fail_after=100_000, chunk=4096),
            lambda offset: scripted(DATA, ranges=False, chunk=4096),
        ]
    )
    target = download(make_run(len(DATA)), tmp_path / "out.csv", play)
    assert target.read_bytes() == DATA
    started = recorder.ranges(WRITE)
    restart = next(i for i, (offset, _) in enumerate(started) if i and offset == 0)
    assert _tiles(started[:restart])
    assert _tiles(started[restart:])
    recorder.assert_durable(target)


@pytest.mark.usefixtures("no_fdatasync")
def test_checksummed_download_writes_behind_too(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    monkeypatch.setattr(transfer, "_sync_file_range", recorder.fake_sync_file_range(None))
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=5000)])
    run = make_run(len(DATA), checksum="sha256:" + hashlib.sha256(DATA).hexdigest())
    target = download(run, tmp_path / "out.csv", play)
    assert target.read_bytes() == DATA
    assert recorder.ranges(WRITE)
    assert _tiles(recorder.ranges(WRITE))
    recorder.assert_durable(target)


def writeback_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "report-gateway-writeback"]


class Flushes:
    """A recording ``os.fdatasync`` (the real one after it, or ``error`` instead).

    ``watch`` is an ``on_progress`` callback: once a writeback thread exists it waits for
    that thread's first flush, so a test sees the flush happen before the download ends
    (otherwise the thread may be stopped before it ever ran, which is also correct).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, error: OSError | None = None) -> None:
        self.calls: list[tuple[int, str]] = []
        self.error = error
        self.flushed = threading.Event()
        self.thread_seen = False
        real = os.fdatasync

        def fdatasync(fd: int) -> None:
            self.calls.append((os.fstat(fd).st_ino, threading.current_thread().name))
            try:
                if self.error is not None:
                    raise self.error
                real(fd)
            finally:
                self.flushed.set()

        monkeypatch.setattr(os, "fdatasync", fdatasync)

    def watch(self, received: int, total: int | None) -> None:
        if writeback_threads():
            self.thread_seen = True
            assert self.flushed.wait(30), "the writeback thread never flushed"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="no os.fdatasync here")
def test_default_download_flushes_in_a_background_thread_then_fsyncs_before_the_rename(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes = Flushes(monkeypatch)
    before = threading.active_count()
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=5000)])
    target = download(make_run(len(DATA)), tmp_path / "out.csv", play, on_progress=flushes.watch)
    assert target.read_bytes() == DATA
    assert flushes.thread_seen
    # Every background flush was of this file, from the writeback thread.
    assert flushes.calls
    assert {call for call in flushes.calls} == {
        (os.stat(target).st_ino, "report-gateway-writeback")
    }
    recorder.assert_durable(target)
    assert writeback_threads() == []
    assert threading.active_count() == before


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="no os.fdatasync here")
def test_a_small_file_starts_no_thread(
    tmp_path: Path, opener: Any, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real window (32 MiB): thousands of small files in a fan-out start no thread each.
    flushes = Flushes(monkeypatch)
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=5000)])
    target = download(make_run(len(DATA)), tmp_path / "out.csv", play, on_progress=flushes.watch)
    assert target.read_bytes() == DATA
    assert not flushes.thread_seen
    assert flushes.calls == []


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="no os.fdatasync here")
@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_a_background_flush_error_fails_the_download_and_keeps_no_file(
    tmp_path: Path,
    opener: Any,
    scripted: Any,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
) -> None:
    # Linux reports a writeback error once per open file: the final fsync (through another
    # descriptor) succeeds here, as it could there; the thread's error must still count.
    flushes = Flushes(monkeypatch, error=OSError(code, os.strerror(code)))
    (tmp_path / "out.csv").write_bytes(b"the previous report\n")
    before = threading.active_count()
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=5000)])
    with pytest.raises(DownloadError, match=os.strerror(code)) as caught:
        download(make_run(len(DATA)), tmp_path / "out.csv", play, on_progress=flushes.watch)
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == code
    assert flushes.calls
    # Nothing renamed, the previous file untouched, no temporary left, no thread left.
    assert [e for e in recorder.events if e[0] == "replace"] == []
    assert _leftovers(tmp_path) == ["out.csv"]
    assert (tmp_path / "out.csv").read_bytes() == b"the previous report\n"
    assert writeback_threads() == []
    assert threading.active_count() == before


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="no os.fdatasync here")
@pytest.mark.parametrize("failure", ["ctrl-c", "error in on_progress", "short body"])
def test_the_thread_is_stopped_when_the_download_fails(
    tmp_path: Path,
    opener: Any,
    scripted: Any,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    flushes = Flushes(monkeypatch)
    before = threading.active_count()
    alive_at_failure: list[bool] = []

    def progress(received: int, total: int | None) -> None:
        flushes.watch(received, total)
        if failure != "short body" and flushes.thread_seen and received > 4 * WINDOW:
            alive_at_failure.append(bool(writeback_threads()))
            raise KeyboardInterrupt if failure == "ctrl-c" else RuntimeError("callback failed")

    data = DATA[: len(DATA) // 2] if failure == "short body" else DATA
    play = opener([lambda offset: scripted(data, offset=offset, chunk=5000, ranges=False)])
    expected = {"ctrl-c": KeyboardInterrupt, "error in on_progress": RuntimeError}
    with pytest.raises(expected.get(failure, IntegrityError)):
        download(make_run(len(DATA)), tmp_path / "out.csv", play, on_progress=progress)
    assert flushes.thread_seen
    assert alive_at_failure in ([True], [])
    assert _leftovers(tmp_path) == []
    assert writeback_threads() == []
    assert threading.active_count() == before


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="no os.fdatasync here")
def test_the_thread_is_stopped_before_the_file_is_truncated_to_start_again(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes = Flushes(monkeypatch)
    before = threading.active_count()
    at_reset: list[tuple[bool, bool]] = []
    real_reset = transfer.WriteBehind.reset

    def reset(self: transfer.WriteBehind) -> None:
        alive = bool(writeback_threads())
        real_reset(self)
        at_reset.append((alive, bool(writeback_threads())))

    monkeypatch.setattr(transfer.WriteBehind, "reset", reset)
    play = opener(
        [
            lambda offset: scripted(DATA, ranges=False, fail_after=100_000, chunk=4096),
            lambda offset: scripted(DATA, ranges=False, chunk=4096),
        ]
    )
    target = download(make_run(len(DATA)), tmp_path / "out.csv", play, on_progress=flushes.watch)
    assert target.read_bytes() == DATA
    # Running before the restart, gone once reset returns (the truncate comes after it).
    assert at_reset == [(True, False)]
    recorder.assert_durable(target)
    assert writeback_threads() == []
    assert threading.active_count() == before


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="no os.fdatasync here")
def test_a_converted_zuora_export_flushes_behind_too(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codecs

    from report_gateway.models import CONTENT_TSV_UTF16

    text = "".join(f"row {i}\t{i * 7}\r\n" for i in range(20000))
    payload = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    flushes = Flushes(monkeypatch)
    before = threading.active_count()
    play = opener([lambda offset: scripted(payload, offset=offset, chunk=5000)])
    run = make_run(size=len(payload), content_type=CONTENT_TSV_UTF16)
    target = download(run, tmp_path / "z.csv", play, on_progress=flushes.watch)
    assert target.read_text(encoding="utf-8") == text.replace("\t", ",").replace("\r\n", "\n")
    assert flushes.thread_seen
    recorder.assert_durable(target)
    assert threading.active_count() == before


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="no os.fdatasync here")
def test_a_process_that_cannot_start_a_thread_still_downloads_durably(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes = Flushes(monkeypatch)

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=5000)])
    target = download(make_run(len(DATA)), tmp_path / "out.csv", play)
    assert target.read_bytes() == DATA
    assert flushes.calls == []
    recorder.assert_durable(target)


def _advances(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int | None]]:
    """The ``(received, total)`` of every ``WriteBehind.advance`` call, recorded."""
    calls: list[tuple[int, int | None]] = []
    real_advance = transfer.WriteBehind.advance

    def advance(self: transfer.WriteBehind, received: int, total: int | None = None) -> None:
        calls.append((received, total))
        real_advance(self, received, total)

    monkeypatch.setattr(transfer.WriteBehind, "advance", advance)
    return calls


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="no os.fdatasync here")
def test_the_end_of_a_file_of_known_size_is_flushed_in_quarter_windows(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What is left unflushed when the last byte arrives is what the caller waits for (the
    # final fsync): a quarter window, not up to a whole one.
    chunk = 1000
    advances = _advances(monkeypatch)
    flushes = Flushes(monkeypatch)
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=chunk)])
    target = download(make_run(len(DATA)), tmp_path / "out.csv", play, on_progress=flushes.watch)
    assert target.read_bytes() == DATA
    assert flushes.thread_seen
    marks = [received for received, _ in advances]
    assert {total for _, total in advances} == {len(DATA)}
    # Whole windows before the last two, then a wake-up every quarter window at most.
    early = [m for m in marks if len(DATA) - m > 2 * WINDOW]
    assert all(b - a >= WINDOW for a, b in itertools.pairwise(early))
    late = [m for m in marks if len(DATA) - m <= 2 * WINDOW]
    assert late
    assert late[0] - early[-1] <= WINDOW + chunk
    assert all(b - a <= WINDOW // 4 + chunk for a, b in itertools.pairwise(late))
    assert len(DATA) - marks[-1] <= WINDOW // 4 + chunk
    recorder.assert_durable(target)


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="no os.fdatasync here")
def test_a_file_of_unknown_size_is_flushed_in_whole_windows(
    tmp_path: Path, opener: Any, scripted: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    advances = _advances(monkeypatch)
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=1000, content_length=None)])
    target = download(make_run(size=None), tmp_path / "out.csv", play)
    assert target.read_bytes() == DATA
    marks = [received for received, _ in advances]
    assert {total for _, total in advances} == {None}
    assert len(marks) >= 2
    assert all(b - a >= WINDOW for a, b in itertools.pairwise(marks))
    recorder.assert_durable(target)


def test_write_behind_marks_shrink_near_a_known_end_only_with_fdatasync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = 1 << 20
    with open(tmp_path / "f", "wb") as out:
        behind = transfer.WriteBehind(out, window=window)
        with behind:
            if hasattr(os, "fdatasync"):
                behind.advance(window, 10 * window)
                assert behind.mark == 2 * window
                behind.advance(8 * window, 10 * window)
                assert behind.mark == 8 * window + window // 4
                behind.advance(9 * window, None)
                assert behind.mark == 10 * window
            behind.finish()
    monkeypatch.delattr(os, "fdatasync", raising=False)
    monkeypatch.setattr(transfer, "_sync_file_range", lambda *args: 0)
    with open(tmp_path / "g", "wb") as out, transfer.WriteBehind(out, window=window) as ranges:
        # The sync_file_range fallback waits for the window before: its windows stay whole.
        ranges.advance(8 * window, 10 * window)
        assert ranges.mark == 9 * window
