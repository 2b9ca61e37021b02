"""download(): the target appears only complete and verified; failures leave nothing behind."""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from report_gateway import DownloadError, IntegrityError, ReportRun, RunStatus
from report_gateway.download import download
from report_gateway.models import CONTENT_TSV_UTF16, CONTENT_ZIP

from tests.gateway.downloads import DATA, leftovers, make_run


def test_plain_csv_is_written_whole(tmp_path: Path, opener: Any, scripted: Any) -> None:
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    target = download(make_run(), tmp_path / "out.csv", play)
    assert target.read_bytes() == DATA
    assert play.offsets == [0]
    assert play.responses[0].closed
    assert leftovers(tmp_path) == []


def test_size_mismatch_leaves_no_file(tmp_path: Path, opener: Any, scripted: Any) -> None:
    play = opener([lambda offset: scripted(DATA[:-10], offset=offset)])
    with pytest.raises(IntegrityError, match="announced"):
        download(make_run(), tmp_path / "out.csv", play)
    assert not (tmp_path / "out.csv").exists()
    assert leftovers(tmp_path) == []


def test_failure_keeps_existing_target_untouched(
    tmp_path: Path, opener: Any, scripted: Any
) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(b"yesterday's report\n")
    play = opener([lambda offset: scripted(DATA + b"extra", offset=offset)])
    with pytest.raises(IntegrityError):
        download(make_run(), target, play)
    assert target.read_bytes() == b"yesterday's report\n"
    assert leftovers(tmp_path) == []


def test_dropped_connection_resumes_with_range(tmp_path: Path, opener: Any, scripted: Any) -> None:
    play = opener(
        [
            lambda offset: scripted(DATA, offset=offset, fail_after=30_000, chunk=8192),
            lambda offset: scripted(DATA, offset=offset, chunk=8192),
        ]
    )
    target = download(make_run(), tmp_path / "out.csv", play)
    assert target.read_bytes() == DATA
    assert play.offsets == [0, 30_000]
    assert play.responses[1].status == 206


def test_server_without_ranges_restarts_and_skips_what_was_written(
    tmp_path: Path, opener: Any, scripted: Any
) -> None:
    play = opener(
        [
            lambda offset: scripted(DATA, ranges=False, fail_after=20_000, chunk=4096),
            lambda offset: scripted(DATA, ranges=False, chunk=4096),
        ]
    )
    target = download(make_run(), tmp_path / "out.csv", play)
    assert target.read_bytes() == DATA
    assert play.responses[1].status == 200


def test_short_body_without_error_is_resumed(tmp_path: Path, opener: Any, scripted: Any) -> None:
    # The body ends cleanly but before its own Content-Length (a truncating proxy).
    def truncated(offset: int) -> Any:
        response = scripted(DATA, offset=offset)
        response.body = response.body[:1000]
        response.content_length = len(DATA) - offset
        return response

    play = opener([truncated, lambda offset: scripted(DATA, offset=offset)])
    assert download(make_run(), tmp_path / "o.csv", play).read_bytes() == DATA
    assert play.offsets == [0, 1000]


def test_attempts_are_bounded(tmp_path: Path, opener: Any, scripted: Any) -> None:
    play = opener([lambda offset: scripted(DATA, offset=offset, fail_after=100, chunk=50)])
    with pytest.raises(DownloadError, match="connection failed 5 times"):
        download(make_run(), tmp_path / "out.csv", play)
    assert len(play.offsets) == 5
    assert not (tmp_path / "out.csv").exists()
    assert leftovers(tmp_path) == []


def test_unknown_size_takes_content_length(tmp_path: Path, opener: Any, scripted: Any) -> None:
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    seen: list[tuple[int, int | None]] = []
    download(make_run(size=None), tmp_path / "o.csv", play, on_progress=lambda *a: seen.append(a))
    assert seen[-1] == (len(DATA), len(DATA))


def test_progress_is_reported_per_chunk(tmp_path: Path, opener: Any, scripted: Any) -> None:
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=10_000)])
    seen: list[tuple[int, int | None]] = []
    download(make_run(), tmp_path / "o.csv", play, on_progress=lambda *a: seen.append(a))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1] == (len(DATA), len(DATA))
    assert len(seen) == -(-len(DATA) // 10_000)


def test_overwrite_false_refuses_existing_target(
    tmp_path: Path, opener: Any, scripted: Any
) -> None:
    target = tmp_path / "out.csv"
    target.write_text("keep")
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    with pytest.raises(DownloadError, match="exists"):
        download(make_run(), target, play, overwrite=False)
    assert target.read_text() == "keep"
    assert play.offsets == []


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
@pytest.mark.parametrize("points_to", ["missing.csv", "out.csv"])
def test_overwrite_false_refuses_a_link_to_nothing(
    tmp_path: Path, opener: Any, scripted: Any, points_to: str
) -> None:
    """A dangling (or looping) link is something at the target, and the rename would
    replace it: ``overwrite=False`` refuses it as it refuses a file."""
    target = tmp_path / "out.csv"
    os.symlink(points_to, target)
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    with pytest.raises(DownloadError, match="exists"):
        download(make_run(), target, play, overwrite=False)
    assert os.readlink(target) == points_to
    assert play.offsets == []


def test_folder_target_uses_provider_filename(tmp_path: Path, opener: Any, scripted: Any) -> None:
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    target = download(make_run(filename="balance.csv"), tmp_path, play)
    assert target == tmp_path / "balance.csv"


def test_run_without_result_is_refused(tmp_path: Path) -> None:
    run = ReportRun(
        provider="fake", id="r1", report_id="r", status=RunStatus.RUNNING, raw_status="running"
    )
    with pytest.raises(DownloadError, match="no result"):
        download(run, tmp_path / "o.csv", lambda offset: pytest.fail("must not open"))


def test_checksum_verified(tmp_path: Path, opener: Any, scripted: Any) -> None:
    good = "sha256:" + hashlib.sha256(DATA).hexdigest()
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    assert download(make_run(checksum=good), tmp_path / "a.csv", play).read_bytes() == DATA
    bad = "md5:" + hashlib.md5(b"other").hexdigest()  # noqa: S324
    with pytest.raises(IntegrityError, match="checksum"):
        download(make_run(checksum=bad), tmp_path / "b.csv", play)
    assert not (tmp_path / "b.csv").exists()


def _zip(name: str, payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, payload)
    return buffer.getvalue()


def test_zip_result_unpacked_on_request(tmp_path: Path, opener: Any, scripted: Any) -> None:
    archive = _zip("report.csv", DATA)
    play = opener([lambda offset: scripted(archive, offset=offset)])
    run = make_run(size=len(archive), content_type=CONTENT_ZIP)
    assert download(run, tmp_path / "out.csv", play, unzip=True).read_bytes() == DATA
    kept = download(run, tmp_path / "out.zip", play)
    assert kept.read_bytes() == archive
    assert leftovers(tmp_path) == []


def test_corrupt_zip_leaves_nothing(tmp_path: Path, opener: Any, scripted: Any) -> None:
    junk = b"PK\x03\x04 not really a zip"
    play = opener([lambda offset: scripted(junk, offset=offset)])
    run = make_run(size=len(junk), content_type=CONTENT_ZIP)
    with pytest.raises(IntegrityError, match="ZIP"):
        download(run, tmp_path / "out.csv", play, unzip=True)
    assert list(tmp_path.iterdir()) == []


ZUORA_TEXT = 'Account.Name\tInvoice.Amount\nAcme, Inc.\t1,729.76\nZoë\t"5"\n'


@pytest.mark.parametrize("bom", [True, False])
def test_utf16_tab_export_becomes_utf8_csv(
    tmp_path: Path, opener: Any, scripted: Any, bom: bool
) -> None:
    payload = (codecs.BOM_UTF16_LE if bom else b"") + ZUORA_TEXT.encode("utf-16-le")
    play = opener([lambda offset: scripted(payload, offset=offset)])
    run = make_run(size=len(payload), content_type=CONTENT_TSV_UTF16)
    out = download(run, tmp_path / "z.csv", play).read_text(encoding="utf-8")
    assert out == 'Account.Name,Invoice.Amount\n"Acme, Inc.","1,729.76"\nZoë,5\n'


def test_utf16_raw_keeps_the_bytes(tmp_path: Path, opener: Any, scripted: Any) -> None:
    payload = codecs.BOM_UTF16_LE + ZUORA_TEXT.encode("utf-16-le")
    play = opener([lambda offset: scripted(payload, offset=offset)])
    run = make_run(size=len(payload), content_type=CONTENT_TSV_UTF16)
    assert download(run, tmp_path / "z.tsv", play, raw=True).read_bytes() == payload


def test_early_writeback_path_writes_everything(
    tmp_path: Path, opener: Any, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import report_gateway.transfer as transfer

    monkeypatch.setattr(transfer, "WRITEBACK_WINDOW", 4096)
    play = opener([lambda offset: scripted(DATA, offset=offset, chunk=1000)])
    assert download(make_run(), tmp_path / "o.csv", play).read_bytes() == DATA


def test_non_durable_download_is_still_atomic_and_verified(
    tmp_path: Path, opener: Any, scripted: Any
) -> None:
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    assert download(make_run(), tmp_path / "o.csv", play, durable=False).read_bytes() == DATA
    short = opener([lambda offset: scripted(DATA[:10], offset=offset)])
    with pytest.raises(IntegrityError):
        download(make_run(), tmp_path / "p.csv", short, durable=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv"]


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test and restore it afterwards."""
    saved: list[int] = []

    def set_umask(value: int) -> None:
        previous = os.umask(value)
        if not saved:
            saved.append(previous)

    yield set_umask
    if saved:
        os.umask(saved[0])


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002], ids=oct)
@pytest.mark.parametrize("kind", ["csv", "zip", "utf16"])
def test_new_file_gets_the_mode_a_plain_open_would_give(
    tmp_path: Path, opener: Any, scripted: Any, umask: Any, mask: int, kind: str
) -> None:
    umask(mask)
    payload, run = DATA, make_run()
    if kind == "zip":
        payload = _zip("report.csv", DATA)
        run = make_run(size=len(payload), content_type=CONTENT_ZIP)
    elif kind == "utf16":
        payload = ZUORA_TEXT.encode("utf-16-le")
        run = make_run(size=len(payload), content_type=CONTENT_TSV_UTF16)
    play = opener([lambda offset: scripted(payload, offset=offset)])
    target = download(run, tmp_path / "out.csv", play, unzip=True)
    reference = tmp_path / "plain.csv"
    reference.write_bytes(b"")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664], ids=oct)
def test_replaced_target_keeps_its_mode(
    tmp_path: Path, opener: Any, scripted: Any, umask: Any, mode: int
) -> None:
    umask(0o022)
    target = tmp_path / "out.csv"
    target.write_bytes(b"yesterday's report\n")
    os.chmod(target, mode)
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    download(make_run(), target, play)
    assert target.read_bytes() == DATA
    assert stat.S_IMODE(target.stat().st_mode) == mode


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("points_to", ["/dev/null", "itself", "nowhere"])
@pytest.mark.parametrize("kind", ["csv", "zip"])
def test_a_link_to_no_regular_file_is_replaced_by_a_new_files_mode(
    tmp_path: Path, opener: Any, scripted: Any, umask: Any, points_to: str, kind: str
) -> None:
    """A link is replaced itself (``not_a_file``); it lends the mode of a regular file it
    points to, never a device's: over a link to ``/dev/null`` (0o666) a private report
    (umask 0o077) came out world-readable and writable; a looping link failed the whole
    download after the transfer."""
    umask(0o077)
    target = tmp_path / "out.csv"
    link = {"/dev/null": "/dev/null", "itself": "out.csv", "nowhere": "missing/x.csv"}
    os.symlink(link[points_to], target)
    payload, run = DATA, make_run()
    if kind == "zip":
        payload = _zip("report.csv", DATA)
        run = make_run(size=len(payload), content_type=CONTENT_ZIP)
    play = opener([lambda offset: scripted(payload, offset=offset)])
    download(run, target, play, unzip=True)
    assert not target.is_symlink()
    assert target.read_bytes() == DATA
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("existing", [None, 0o600, 0o640], ids=str)
def test_a_partial_file_is_never_more_readable_than_the_file_it_becomes(
    tmp_path: Path, opener: Any, scripted: Any, umask: Any, existing: int | None
) -> None:
    """The partial file gets a new file's mode only when no target exists: re-downloading
    over a private (0o600) report must not expose the new rows to others meanwhile."""
    umask(0o022)
    target = tmp_path / "out.csv"
    if existing is not None:
        target.write_bytes(b"yesterday's report\n")
        os.chmod(target, existing)
    seen: list[int] = []

    def progress(received: int, total: int | None) -> None:
        for part in tmp_path.glob(".*.part"):
            seen.append(stat.S_IMODE(part.stat().st_mode))

    play = opener([lambda offset: scripted(DATA, offset=offset)])
    download(make_run(), target, play, on_progress=progress)
    final = stat.S_IMODE(target.stat().st_mode)
    assert final == (0o644 if existing is None else existing)
    assert seen
    assert all(mode & ~final == 0 for mode in seen), [oct(m) for m in seen]


@pytest.mark.parametrize("kind", ["plain", "zip", "utf16"])
@pytest.mark.parametrize("durable", [True, False])
def test_temporaries_are_never_reopened_for_writing(
    tmp_path: Path,
    opener: Any,
    scripted: Any,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    durable: bool,
) -> None:
    """A temporary is written through the descriptor that created it (O_EXCL): reopening it
    by name with "w" would truncate it, and on ext4 a file truncated to zero is pushed to the
    disk when closed, a cost durable=False promises not to pay (and a second name lookup)."""
    import builtins

    truncating: list[str] = []
    real_open = builtins.open

    def spy(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and str(file).endswith(".part") and "w" in mode:
            truncating.append(f"{os.fspath(file)} {mode}")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    if kind == "zip":
        payload, expected = _zip("report.csv", DATA), DATA
        run = make_run(size=len(payload), content_type=CONTENT_ZIP)
    elif kind == "utf16":
        payload = codecs.BOM_UTF16_LE + "a\tb\n1\t2\n".encode("utf-16-le")
        expected = b"a,b\n1,2\n"
        run = make_run(size=len(payload), content_type=CONTENT_TSV_UTF16)
    else:
        payload = expected = DATA
        run = make_run()
    play = opener([lambda offset: scripted(payload, offset=offset)])
    target = download(run, tmp_path / "o.csv", play, unzip=True, durable=durable)
    assert target.read_bytes() == expected
    assert truncating == []
    assert leftovers(tmp_path) == []


def test_a_temporary_a_sweep_holds_for_an_instant_is_still_marked_alive(tmp_path: Path) -> None:
    """Concurrent downloads into one folder: another download's sweep may hold a fresh
    temporary's lock right after it is created. The new download must still mark it alive,
    or a later sweep deletes it mid-download (a fan-out's file then "No such file")."""
    import fcntl
    import threading

    from report_gateway.download import _hold, _remove_abandoned_temporaries, _Temporaries

    path = tmp_path / ".report.csv.0badc0de.part"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    sweeper = os.open(path, os.O_RDONLY)
    fcntl.flock(sweeper, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the sweep's instant
    releasing = threading.Timer(0.2, os.close, args=(sweeper,))
    releasing.start()
    registry = _Temporaries()
    try:
        _hold(fd, registry)
        releasing.join()
        os.write(fd, b"a,b\n1,2\n")  # no longer empty: a sweep would take an unlocked one
        _remove_abandoned_temporaries(tmp_path)
        assert path.exists()
        assert registry.locks
    finally:
        os.close(fd)
        registry.discard()


def test_the_checksum_is_verified_before_the_file_takes_an_unreadable_mode(
    tmp_path: Path, opener: Any, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a write-only (0o200) target, the checksum is read while the partial file is still
    its owner's to read: a non-root user's download would otherwise fail after the whole
    transfer (root reads anything, so the mode at verification is what is checked)."""
    from report_gateway import download as download_module

    target = tmp_path / "out.csv"
    target.write_bytes(b"yesterday\n")
    os.chmod(target, 0o200)
    modes: list[int] = []
    real_verify = download_module._verify_checksum

    def verify(path: Path, *args: Any, **kwargs: Any) -> None:
        modes.append(stat.S_IMODE(path.stat().st_mode))
        real_verify(path, *args, **kwargs)

    monkeypatch.setattr(download_module, "_verify_checksum", verify)
    good = hashlib.sha256(DATA).hexdigest()
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    download(make_run(checksum=good), target, play)
    assert modes
    assert all(mode & stat.S_IRUSR for mode in modes), [oct(m) for m in modes]
    assert stat.S_IMODE(target.stat().st_mode) == 0o200


def test_a_wrong_checksum_costs_no_fsync(
    tmp_path: Path, opener: Any, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    with pytest.raises(IntegrityError, match="checksum"):
        download(make_run(checksum="sha256:" + "0" * 64), tmp_path / "b.csv", play)
    assert synced == []
    assert leftovers(tmp_path) == []
