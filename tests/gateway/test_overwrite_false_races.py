"""Review 20: ``overwrite=False`` under races, odd targets and failing fallbacks.

Companion of ``test_overwrite_false.py``: concurrent writers to one target (threads and
processes), each kind of name appearing at the target, every fallback failing with each
errno, modes and link counts of the result, the converted (Zuora) and unpacked (ZIP) paths,
and a journal left resumable by a refusal.
"""

from __future__ import annotations

import errno
import io
import multiprocessing
import os
import stat
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from report_gateway import DownloadError, ReportRun
from report_gateway import download as download_module
from report_gateway.atomic import atomic_file
from report_gateway.download import download
from report_gateway.models import CONTENT_TSV_UTF16, CONTENT_ZIP

from tests.gateway import downloads
from tests.gateway.downloads import (
    DATA,
    failing_link,
    failing_renameat2,
    leftovers,
    take_the_way,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX renames and links")

# A URL with a secret in it: no refusal's message may show it.
SECRET_URL = "https://files.invalid/x?token=sk_live_SECRET"
THEIRS = b"a file someone else put there meanwhile\n"


class Body:
    """A minimal streaming response (what ``open_result`` returns)."""

    def __init__(self, data: bytes, chunk: int = 4096) -> None:
        self.body = data
        self.status = 200
        self.headers: dict[str, str] = {}
        self.content_length = len(data)
        self.chunk = chunk

    def iter_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        for start in range(0, len(self.body), self.chunk):
            yield self.body[start : start + self.chunk]

    def close(self) -> None:
        pass


def make_run(data: bytes = DATA, content_type: str = "csv", **extra: Any) -> ReportRun:
    return downloads.make_run(len(data), url=SECRET_URL, content_type=content_type, **extra)


@pytest.fixture(params=["renameat2", "link", "last check"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name: str = request.param
    take_the_way(name, monkeypatch)
    return name


# -- each kind of name appearing at the target ------------------------------------------


def _make_file(target: Path) -> None:
    target.write_bytes(THEIRS)


def _make_dangling(target: Path) -> None:
    os.symlink("nowhere.csv", target)


def _make_link_to_file(target: Path) -> None:
    (target.parent / "elsewhere.csv").write_bytes(THEIRS)
    os.symlink("elsewhere.csv", target)


def _make_folder(target: Path) -> None:
    target.mkdir()


def _make_fifo(target: Path) -> None:
    os.mkfifo(target)


APPEARS: dict[str, Callable[[Path], None]] = {
    "file": _make_file,
    "dangling link": _make_dangling,
    "link to a file": _make_link_to_file,
    "folder": _make_folder,
    "fifo": _make_fifo,
}


def _what_is(target: Path) -> tuple[int, bytes | str | None]:
    info = os.lstat(target)
    if stat.S_ISLNK(info.st_mode):
        return stat.S_IFMT(info.st_mode), os.readlink(target)
    if stat.S_ISREG(info.st_mode):
        return stat.S_IFMT(info.st_mode), target.read_bytes()
    return stat.S_IFMT(info.st_mode), None


@pytest.mark.parametrize("kind", list(APPEARS))
def test_whatever_appears_at_the_target_is_kept(tmp_path: Path, way: str, kind: str) -> None:
    target = tmp_path / "out.csv"
    before: list[tuple[int, bytes | str | None]] = []

    def someone_else(done: int, total: int | None) -> None:
        if not before:
            APPEARS[kind](target)
            before.append(_what_is(target))

    with pytest.raises(DownloadError) as caught:
        download(
            make_run(),
            target,
            lambda offset: Body(DATA),
            overwrite=False,
            on_progress=someone_else,
        )
    assert str(target) in str(caught.value)
    assert "SECRET" not in str(caught.value)
    assert _what_is(target) == before[0]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", list(APPEARS))
def test_atomic_file_keeps_whatever_appears(tmp_path: Path, way: str, kind: str) -> None:
    target = tmp_path / "out.jsonl"
    before: list[tuple[int, bytes | str | None]] = []

    def write_while_it_appears() -> None:
        with atomic_file(target, overwrite=False, durable=False) as out:
            out.write(b"ours\n")
            APPEARS[kind](target)
            before.append(_what_is(target))

    with pytest.raises(DownloadError, match=r"out\.jsonl"):
        write_while_it_appears()
    assert _what_is(target) == before[0]
    assert leftovers(tmp_path) == []


# -- concurrent writers ----------------------------------------------------------------

WRITERS = 6


def _payload(index: int) -> bytes:
    return (b"writer %d\n" % index) * 20_000


def _race(target: str | Path, index: int, barrier: Any) -> str:
    """Writer ``index`` downloads its own payload to ``target`` without replacing, waiting
    at ``barrier`` after its first piece so that all the writers' renames race. How it
    fared: "won", or "refused: " and the refusal's message."""
    data = _payload(index)
    waited: list[bool] = []

    def progress(done: int, total: int | None) -> None:
        if not waited:
            waited.append(True)
            barrier.wait(timeout=30)

    try:
        download(
            make_run(data),
            target,
            lambda offset: Body(data, chunk=len(data) // 4),
            overwrite=False,
            durable=False,
            on_progress=progress,
        )
    except DownloadError as exc:
        return "refused: " + str(exc)
    return "won"


def _assert_exactly_one_won(target: Path, outcomes: dict[int, str]) -> None:
    """One writer's file is at ``target``, whole and under one name; every other writer was
    refused because a file appeared, and none left a temporary."""
    winners = [i for i, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1, outcomes
    assert all(
        o.startswith("refused: ") and "appeared while" in o
        for i, o in outcomes.items()
        if i != winners[0]
    ), outcomes
    assert target.read_bytes() == _payload(winners[0])
    assert target.stat().st_nlink == 1
    assert leftovers(target.parent) == []


@pytest.mark.parametrize("way", ["renameat2", "link"], indirect=True)
def test_concurrent_threads_exactly_one_wins(tmp_path: Path, way: str) -> None:
    target = tmp_path / "out.csv"
    barrier = threading.Barrier(WRITERS)
    outcomes = dict.fromkeys(range(WRITERS), "unfinished")

    def one(index: int) -> None:
        outcomes[index] = _race(target, index, barrier)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    _assert_exactly_one_won(target, outcomes)


def _process_writer(
    target: str, index: int, barrier: Any, results: Any, without_renameat2: bool
) -> None:
    if without_renameat2:
        download_module._renameat2 = None
    try:
        results.put((index, _race(target, index, barrier)))
    except BaseException as exc:  # pragma: no cover - what the test must not see
        results.put((index, f"other: {type(exc).__name__}: {exc}"))


@pytest.mark.parametrize("without_renameat2", [False, True], ids=["renameat2", "link"])
def test_concurrent_processes_exactly_one_wins(tmp_path: Path, without_renameat2: bool) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(WRITERS)
    results = context.Queue()
    target = tmp_path / "out.csv"
    processes = [
        context.Process(
            target=_process_writer, args=(str(target), i, barrier, results, without_renameat2)
        )
        for i in range(WRITERS)
    ]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(30)
    _assert_exactly_one_won(target, outcomes)


# -- a folder given: the provider's name inside it --------------------------------------


def test_into_a_folder_a_file_appearing_under_the_provider_name_is_kept(
    tmp_path: Path, way: str
) -> None:
    run = make_run(filename="report.csv")
    inside = tmp_path / "report.csv"

    def someone_else(done: int, total: int | None) -> None:
        if not inside.exists():
            inside.write_bytes(THEIRS)

    with pytest.raises(DownloadError, match=r"report\.csv"):
        download(run, tmp_path, lambda o: Body(DATA), overwrite=False, on_progress=someone_else)
    assert inside.read_bytes() == THEIRS
    inside.unlink()
    assert download(run, tmp_path, lambda o: Body(DATA), overwrite=False) == inside
    assert inside.read_bytes() == DATA
    assert leftovers(tmp_path) == []


def test_a_folder_at_the_target_is_refused_up_front(tmp_path: Path) -> None:
    """A folder named as the target is a folder to save into, not a target to refuse."""
    run = make_run()
    saved = download(run, tmp_path, lambda o: Body(DATA), overwrite=False)
    assert saved.parent == tmp_path
    assert saved.read_bytes() == DATA
    with pytest.raises(DownloadError, match="exists"):
        download(run, tmp_path, lambda o: Body(DATA), overwrite=False)


# -- every errno of every fallback -------------------------------------------------------

OTHER_ERRNOS = [errno.EACCES, errno.EROFS, errno.ENOSPC, errno.EIO, errno.ENOENT, errno.EBUSY]


def _download_with(
    monkeypatch: pytest.MonkeyPatch,
    target: Path,
    renameat2: Callable[..., int] | None,
    link: Callable[..., None] | None = None,
) -> Path:
    """Download ``DATA`` to ``target`` without replacing, with ``renameat2`` in place of the
    system's (None: as if there were none) and, if given, ``link`` in place of ``os.link``."""
    monkeypatch.setattr(download_module, "_renameat2", renameat2)
    if link is not None:
        monkeypatch.setattr(os, "link", link)
    return download(make_run(), target, lambda o: Body(DATA), overwrite=False)


@pytest.mark.parametrize("code", [*OTHER_ERRNOS, errno.EMLINK, errno.ENAMETOOLONG, 0])
def test_renameat2_failing_otherwise_is_a_download_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(DownloadError, match=r"out\.csv") as caught:
        _download_with(monkeypatch, target, failing_renameat2(code), failing_link(errno.EIO))
    assert "SECRET" not in str(caught.value)
    assert not os.path.lexists(target)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "code", [errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM, errno.EXDEV]
)
def test_renameat2_unsupported_falls_back_to_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    target = tmp_path / "out.csv"
    assert _download_with(monkeypatch, target, failing_renameat2(code)) == target
    assert target.read_bytes() == DATA
    assert target.stat().st_nlink == 1
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("code", [*OTHER_ERRNOS, errno.EDQUOT])
def test_link_failing_otherwise_is_a_download_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(DownloadError, match=r"out\.csv"):
        _download_with(monkeypatch, target, None, failing_link(code))
    assert not os.path.lexists(target)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("code", [errno.EPERM, errno.EXDEV, errno.EMLINK, errno.EOPNOTSUPP])
def test_no_links_last_check_then_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    target = tmp_path / "out.csv"
    assert _download_with(monkeypatch, target, None, failing_link(code)) == target
    assert target.read_bytes() == DATA
    assert leftovers(tmp_path) == []


def test_the_temporary_left_by_a_failed_unlink_after_the_link_is_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hard-link way: if the temporary's name cannot be removed, the result is there
    (two names) and the next download's sweep removes the temporary's."""
    monkeypatch.setattr(download_module, "_renameat2", None)
    real_unlink = os.unlink
    calls: list[str] = []

    def unlink_once_fails(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path).endswith(".part") and not calls:
            calls.append(str(path))
            raise PermissionError(errno.EACCES, "denied")
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink_once_fails)
    target = tmp_path / "out.csv"
    assert download(make_run(), target, lambda o: Body(DATA), overwrite=False) == target
    assert target.read_bytes() == DATA
    monkeypatch.setattr(os, "unlink", real_unlink)
    download_module._remove_abandoned_temporaries(tmp_path)
    assert leftovers(tmp_path) == []
    assert target.stat().st_nlink == 1
    assert target.read_bytes() == DATA


# -- modes -------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002, 0o027])
def test_the_mode_is_a_new_files_whichever_overwrite(tmp_path: Path, way: str, umask: int) -> None:
    old = os.umask(umask)
    try:
        modes = {}
        for overwrite in (True, False):
            target = tmp_path / f"out-{overwrite}.csv"
            download(make_run(), target, lambda o: Body(DATA), overwrite=overwrite)
            modes[overwrite] = stat.S_IMODE(target.stat().st_mode)
            assert target.stat().st_nlink == 1
        with atomic_file(tmp_path / "a.jsonl", overwrite=False) as out:
            out.write(b"x")
        modes["atomic"] = stat.S_IMODE((tmp_path / "a.jsonl").stat().st_mode)
    finally:
        os.umask(old)
    assert modes == {True: 0o666 & ~umask, False: 0o666 & ~umask, "atomic": 0o666 & ~umask}


# -- converted and unpacked results ------------------------------------------------------


def _zuora() -> bytes:
    text = "id\tname\r\n" + "".join(f"{i}\tn,{i}\r\n" for i in range(3000))
    return text.encode("utf-16")


def _zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("report.csv", DATA)
    return buffer.getvalue()


@pytest.mark.parametrize("durable", [True, False])
@pytest.mark.parametrize("kind", ["zuora streamed", "zuora checksum", "zip"])
def test_converted_and_unpacked_results_keep_what_appears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str, kind: str, durable: bool
) -> None:
    import hashlib

    options: dict[str, Any] = {}
    if kind.startswith("zuora"):
        data = _zuora()
        run = make_run(data, CONTENT_TSV_UTF16)
        if kind == "zuora checksum":
            run = make_run(
                data, CONTENT_TSV_UTF16, checksum="sha256:" + hashlib.sha256(data).hexdigest()
            )
            hook = "_tsv_utf16_to_csv"
        else:
            hook = "_settle_mode"
    else:
        data = _zipped()
        run = make_run(data, CONTENT_ZIP)
        options["unzip"] = True
        hook = "_unzip"
    target = tmp_path / "out.csv"
    real = getattr(download_module, hook)

    def then_someone_else(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if not target.exists():
            target.write_bytes(THEIRS)
        return result

    monkeypatch.setattr(download_module, hook, then_someone_else)
    with pytest.raises(DownloadError, match="appeared while"):
        download(run, target, lambda o: Body(data), overwrite=False, durable=durable, **options)
    assert target.read_bytes() == THEIRS
    assert leftovers(tmp_path) == []
    # Once the user removes it, the same call works.
    target.unlink()
    monkeypatch.setattr(download_module, hook, real)
    download(run, target, lambda o: Body(data), overwrite=False, durable=durable, **options)
    assert target.stat().st_nlink == 1
    assert target.read_bytes().startswith(b"id,")
    assert leftovers(tmp_path) == []


# -- the journal after a refusal ----------------------------------------------------------


def test_a_refused_download_leaves_the_journal_resumable(make_sandbox: Any, tmp_path: Path) -> None:
    from report_gateway import Gateway
    from report_gateway_sandbox import STRIPE_TEST_KEY

    sb = make_sandbox(run_seconds=0.1, result_rows=50)
    settings = {"stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sb.stripe_base_url}}
    target = tmp_path / "r.csv"
    params = {"interval_start": "2025-01-01", "interval_end": "2025-02-01"}
    with Gateway(settings=settings, environ={}, journal=tmp_path / "j.sqlite3") as gw:
        run = gw.start("stripe-v2", "report_balance_summary", params, output=target)
        done = gw.wait(run, poll_interval=0.05)

        def someone_else(received: int, total: int | None) -> None:
            if not target.exists():
                target.write_bytes(THEIRS)

        with pytest.raises(DownloadError, match="appeared while") as caught:
            gw.download(done, target, overwrite=False, on_progress=someone_else)
        assert STRIPE_TEST_KEY not in str(caught.value)
        assert target.read_bytes() == THEIRS
        assert gw.journal is not None
        entry = gw.journal.status_of("stripe-v2", run.id)
        assert entry is not None
        assert entry.state == "succeeded"
        assert [e.run_id for e in gw.journal.entries(unfinished=True)] == [run.id]
        target.unlink()
        [outcome] = gw.resume().outcomes
        assert outcome.error is None
        entry = gw.journal.status_of("stripe-v2", run.id)
        assert entry is not None
        assert entry.state == "downloaded"
        assert target.read_bytes().startswith(b"category,")
    assert leftovers(tmp_path) == []
