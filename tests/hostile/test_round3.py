"""Round 3 of the independent review (issue 10): the download path against servers that lie
about ranges, send lines with no end, bombs with no size, and ZIPs with no CSV in them.

Safe behaviour, each test stating its own: a ``Content-Range`` is read with bounded digits
and its total is the size to reach; a row longer than ``MAX_ROW`` (1 MiB) is a
``ResultFormatError`` as soon as that much arrived, so memory stays flat (measured with
``tracemalloc``: the peak of Python allocations during the call); a compressed body with
no announced size stops past ``ZipLimits.max_ratio`` (200) times its wire bytes; the steps
after the transfer honour the call's deadline; ``rows()`` and ``download(unzip=True)``
pick the same ZIP member or refuse with its names; a repeated header never overwrites a
column; invisible characters never reach a file name; NULs are dropped by both readers.
"""

from __future__ import annotations

import codecs
import io
import socket
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from report_gateway import (
    DownloadError,
    IntegrityError,
    ReportRun,
    ResultFile,
    RunStatus,
)
from report_gateway.download import download, safe_name
from report_gateway.errors import ResultFormatError

MiB = 1 << 20


def utf16(text: str) -> bytes:
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


EXPORT = "a\tb\r\n" + "".join(f"{i}\t{i * 7}\r\n" for i in range(300))


def peak_mib(call: Callable[[], Any]) -> tuple[float, BaseException | None]:
    """Run ``call``; the peak of Python allocations during it (MiB), and what it raised."""
    tracemalloc.start()
    error: BaseException | None = None
    try:
        call()
    except BaseException as exc:  # handed back to the test
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / MiB, error


def streaming(head: bytes, first: bytes, block: bytes, *, cap: int = 64 * MiB) -> Any:
    """A result: ``head`` (status line and headers), ``first``, then ``block`` until ``cap``."""

    def send(request: Any, conn: socket.socket, server: Any) -> None:
        conn.sendall(head + first)
        sent = 0
        try:
            while server.alive and sent < cap:
                conn.sendall(block)
                sent += len(block)
        finally:
            server.state["sent"] = sent

    return send


PLAIN_HEAD = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"


def _zuora_run(kit: Any, gw: Any) -> ReportRun:
    return gw.get("zuora", kit.RUN_ID["zuora"])  # type: ignore[no-any-return]


# -- 1. Content-Range numbers -------------------------------------------------------------

HUGE = "9" * 5000
RANGES = {
    "content-range-huge-total": f"bytes 0-{len(utf16(EXPORT)) - 1}/{HUGE}",
    "content-range-huge-start": f"bytes {HUGE}-{HUGE}/{HUGE}",
    "content-range-end-before-start": "bytes 10-2/100",
    "content-range-garbage": "bytes lots-of/them",
}


@pytest.mark.parametrize("header", list(RANGES.values()), ids=list(RANGES))
def test_a_content_range_that_lies_is_a_download_error(
    header: str, kit: Any, workdir: Path
) -> None:
    """A 206 whose Content-Range has 5000-digit or impossible numbers: ``DownloadError``
    (never a bare ``ValueError`` from ``int()``), no file."""
    body = utf16(EXPORT)

    def partial(request: Any, conn: socket.socket, server: Any) -> None:
        kit.respond(conn, 206, body, {"Content-Range": header})

    with kit.provider_server("zuora", partial) as s:
        gw = kit.gateway_for("zuora", s)
        with pytest.raises(DownloadError, match="Content-Range"):
            gw.download(_zuora_run(kit, gw), workdir / "out.csv")
    assert kit.files_in(workdir) == []


# -- 2. a 206 to a request that asked for no range ---------------------------------------


def _first_third(full: bytes) -> bytes:
    third = utf16("a\tb\r\n" + "".join(f"{i}\t{i * 7}\r\n" for i in range(100)))
    assert full.startswith(third)
    return third


def test_a_206_with_a_third_of_the_export_is_not_a_success(kit: Any, workdir: Path) -> None:
    """first-answer-206-partial: every answer is ``206 bytes 0-N/3N`` with a third of the
    export, ending on a line break. The total is the size to reach: resumed, still short,
    then ``IntegrityError``; no file, and rows() ends in the same error."""
    full = utf16(EXPORT)
    part = _first_third(full)

    def partial(request: Any, conn: socket.socket, server: Any) -> None:
        kit.respond(conn, 206, part, {"Content-Range": f"bytes 0-{len(part) - 1}/{len(full)}"})

    with kit.provider_server("zuora", partial) as s:
        gw = kit.gateway_for("zuora", s)
        with pytest.raises(IntegrityError, match=f"of {len(full)} bytes"):
            gw.download(_zuora_run(kit, gw), workdir / "out.csv")
        with pytest.raises(IntegrityError):
            list(gw.rows(_zuora_run(kit, gw)))
        assert any(r.header("Range") == f"bytes={len(part)}-" for r in s.requests)
    assert kit.files_in(workdir) == []


def test_a_206_first_answer_is_completed_by_asking_for_the_rest(kit: Any, workdir: Path) -> None:
    """first-answer-206-then-rest: a first answer of 206 with a third, then the rest when
    asked with Range: the whole export, once, converted."""
    full = utf16(EXPORT)
    part = _first_third(full)

    def honest(request: Any, conn: socket.socket, server: Any) -> None:
        wanted = request.header("Range")
        start = int(wanted[len("bytes=") : -1]) if wanted else 0
        piece = full[start:] if wanted else part
        end = start + len(piece) - 1
        kit.respond(conn, 206, piece, {"Content-Range": f"bytes {start}-{end}/{len(full)}"})

    with kit.provider_server("zuora", honest) as s:
        gw = kit.gateway_for("zuora", s)
        saved = gw.download(_zuora_run(kit, gw), workdir / "out.csv")
        rows = list(gw.rows(_zuora_run(kit, gw)))
    expected = EXPORT.replace("\t", ",").replace("\r\n", "\n").encode()
    assert saved.read_bytes() == expected
    assert len(rows) == 300
    assert rows[-1] == {"a": "299", "b": str(299 * 7)}


def test_a_206_of_unknown_total_to_a_whole_request_is_refused(kit: Any, workdir: Path) -> None:
    """first-answer-206-unknown-total: ``206 bytes 0-N/*`` to a request that asked for no
    range cannot be vouched for: ``DownloadError``, no file."""
    full = utf16(EXPORT)

    def partial(request: Any, conn: socket.socket, server: Any) -> None:
        kit.respond(conn, 206, full, {"Content-Range": f"bytes 0-{len(full) - 1}/*"})

    with kit.provider_server("zuora", partial) as s:
        gw = kit.gateway_for("zuora", s)
        with pytest.raises(DownloadError, match="unknown total"):
            gw.download(_zuora_run(kit, gw), workdir / "out.csv")
    assert kit.files_in(workdir) == []


def test_a_content_range_total_other_than_announced_is_refused(kit: Any, workdir: Path) -> None:
    """content-range-total-not-announced: the provider announced N bytes, the 206 says the
    file is 2N: ``IntegrityError`` before a byte is kept."""
    body = kit.CSV

    def partial(request: Any, conn: socket.socket, server: Any) -> None:
        kit.respond(conn, 206, body, {"Content-Range": f"bytes 0-{len(body) - 1}/{2 * len(body)}"})

    with kit.provider_server("stripe", partial, size=len(body)) as s:
        gw = kit.gateway_for("stripe", s)
        with pytest.raises(IntegrityError, match="Content-Range says"):
            gw.download(gw.get("stripe", kit.RUN_ID["stripe"]), workdir / "out.csv")
    assert kit.files_in(workdir) == []


# -- 3 and 4. rows with no end ------------------------------------------------------------


def test_one_endless_csv_line_is_refused_early(kit: Any) -> None:
    """csv-one-endless-line: 300 MiB announced, then one line that never ends. rows() ends
    in ``ResultFormatError`` after about ``MAX_ROW`` (1 MiB) without the line ending;
    Python allocations peak under 16 MiB (the whole line was read before)."""
    size = 300 * MiB
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n".encode()
    send = streaming(head, b"a,b\n", b"x" * 65536, cap=size - 4)
    with kit.provider_server("stripe", send, size=size, lifetime=20) as s:
        gw = kit.gateway_for("stripe", s)
        run = gw.get("stripe", kit.RUN_ID["stripe"])
        peak, error = peak_mib(lambda: list(gw.rows(run, timeout=15)))
    assert isinstance(error, ResultFormatError), error
    assert "MAX_ROW" in str(error)
    assert peak < 16


def test_an_endless_quoted_record_is_refused_early(kit: Any) -> None:
    """csv-endless-quoted-record: short lines, but one record that never ends (quoted cells
    holding line breaks, endlessly). ``ResultFormatError`` after about 1 MiB; memory flat."""
    send = streaming(PLAIN_HEAD, b"a,b\n1,", b'"x\n",' * 5000)
    with kit.provider_server("stripe", send, size=200 * MiB, lifetime=20) as s:
        gw = kit.gateway_for("stripe", s)
        run = gw.get("stripe", kit.RUN_ID["stripe"])
        peak, error = peak_mib(lambda: list(gw.rows(run, timeout=15)))
    assert isinstance(error, ResultFormatError), error
    assert peak < 24


ENDLESS_UTF16 = streaming(PLAIN_HEAD, utf16("a\tb\r\n"), "x".encode("utf-16-le") * 32768)


def test_an_endless_utf16_line_in_rows_is_refused_early(kit: Any) -> None:
    """utf16-endless-no-newline (rows): a Zuora export (no size) that never sends a line
    break: ``ResultFormatError`` after ``MAX_ROW`` characters; memory flat."""
    with kit.provider_server("zuora", ENDLESS_UTF16, lifetime=20) as s:
        gw = kit.gateway_for("zuora", s)
        run = _zuora_run(kit, gw)
        peak, error = peak_mib(lambda: list(gw.rows(run, timeout=15)))
    assert isinstance(error, ResultFormatError), error
    assert peak < 16


def test_an_endless_utf16_line_in_a_download_is_refused_early(kit: Any, workdir: Path) -> None:
    """utf16-endless-no-newline (download): the converter refuses the line after
    ``MAX_ROW`` characters; no file, no ``.part``; memory flat."""
    with kit.provider_server("zuora", ENDLESS_UTF16, lifetime=20) as s:
        gw = kit.gateway_for("zuora", s)
        run = _zuora_run(kit, gw)
        peak, error = peak_mib(lambda: gw.download(run, workdir / "out.csv", timeout=15))
    assert isinstance(error, ResultFormatError), error
    assert peak < 16
    assert kit.files_in(workdir) == []


def test_an_endless_quoted_cell_in_a_utf16_download_is_refused(kit: Any, workdir: Path) -> None:
    """utf16-endless-quoted-cell: a quote opens and never closes while lines keep coming:
    ``ResultFormatError`` after about ``2 * MAX_ROW`` characters gathered; no file."""
    block = "more\r\n".encode("utf-16-le") * 8192
    send = streaming(PLAIN_HEAD, utf16('a\tb\r\n1\t"open\r\n'), block)
    with kit.provider_server("zuora", send, lifetime=20) as s:
        gw = kit.gateway_for("zuora", s)
        run = _zuora_run(kit, gw)
        peak, error = peak_mib(lambda: gw.download(run, workdir / "out.csv", timeout=15))
    assert isinstance(error, ResultFormatError), error
    assert "quoted cell" in str(error)
    assert peak < 32
    assert kit.files_in(workdir) == []


# -- 5. a compression bomb with no announced size -----------------------------------------


def _gzip_bomb(lines: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    row = "0\t0\r\n".encode("utf-16-le") * (MiB // 10)
    parts = [compressor.compress(utf16("a\tb\r\n"))]
    parts += [compressor.compress(row) for _ in range(lines)]
    return b"".join([*parts, compressor.flush()])


@pytest.mark.parametrize("length", ["auto", None], ids=["with-length", "close-delimited"])
def test_a_gzip_bomb_with_no_announced_size_stops_at_the_ratio(
    length: Any, kit: Any, workdir: Path
) -> None:
    """gzip-bomb-no-size: a Zuora export (no size) sent with ``Content-Encoding: gzip``,
    about 1 GiB of valid rows once decoded. Past 200 (``ZipLimits.max_ratio``) decoded
    bytes per wire byte: ``IntegrityError`` naming the ratio; no file, nothing near 1 GiB
    written."""
    bomb = _gzip_bomb(1000)
    answer = kit.fixed(bomb, length=length, headers={"Content-Encoding": "gzip"})
    with kit.provider_server("zuora", answer, lifetime=30) as s:
        gw = kit.gateway_for("zuora", s)
        run = _zuora_run(kit, gw)
        with pytest.raises(IntegrityError, match="expands beyond 200"):
            gw.download(run, workdir / "out.csv", timeout=25)
        with pytest.raises(IntegrityError, match="expands beyond 200"):
            list(gw.rows(run, timeout=25))
    assert kit.files_in(workdir) == []


def test_a_compressed_export_within_the_ratio_is_fine(kit: Any, workdir: Path) -> None:
    """gzip-export-no-size: the same transfer encoding on an ordinary export is decoded."""
    body = utf16(EXPORT)
    answer = kit.fixed(gzip_compress(body), headers={"Content-Encoding": "gzip"})
    with kit.provider_server("zuora", answer) as s:
        gw = kit.gateway_for("zuora", s)
        saved = gw.download(_zuora_run(kit, gw), workdir / "out.csv")
    assert saved.read_bytes() == EXPORT.replace("\t", ",").replace("\r\n", "\n").encode()


def gzip_compress(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data)


class _Whole:
    """A whole body from memory (no network): the transfer ends at once."""

    status = 200

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.headers: dict[str, str] = {}
        self.content_length = len(data)

    def iter_bytes(self, chunk_size: int = 65536) -> Any:
        for start in range(0, len(self._data), chunk_size):
            yield self._data[start : start + chunk_size]

    def close(self) -> None:
        pass


def test_the_steps_after_the_transfer_honour_the_deadline(tmp_path: Path) -> None:
    """deadline-covers-unpacking: a ZIP whose transfer ends before the deadline but whose
    unpacking would end after it: ``DownloadError`` naming the deadline, no file. (The
    deadline is given as already passed: the transfer, with no deadline of its own here,
    completes; unpacking checks the deadline at each chunk.)"""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        rows = b"".join(b"%d,%d\n" % (i, i * 7919 % 10007) for i in range(50_000))
        zf.writestr("report.csv", b"a,b\n" + rows)
    data = archive.getvalue()
    run = ReportRun(
        provider="stripe-v2",
        id="reprun_late",
        report_id="r",
        status=RunStatus.SUCCEEDED,
        raw_status="succeeded",
        result=ResultFile(url="https://x.invalid/r", size=len(data), content_type="zip"),
    )
    with pytest.raises(DownloadError, match="deadline"):
        download(
            run,
            tmp_path,
            lambda offset: _Whole(data),
            unzip=True,
            deadline=time.monotonic() - 1,
        )
    assert list(tmp_path.iterdir()) == []


# -- 6. ZIPs with no CSV to read ----------------------------------------------------------


def _zip(members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buffer.getvalue()


NO_CSV = {
    "zip-empty-archive": (_zip([]), "nothing"),
    "zip-only-a-directory": (_zip([(zipfile.ZipInfo("dir/"), b"")]), "'dir/'"),
    "zip-nested-zip": (_zip([("inner.zip", _zip([("r.csv", b"a\n1\n")]))]), "'inner.zip'"),
    "zip-single-exe-member": (_zip([("../../evil.exe", bytes(range(256)))]), "evil.exe"),
}


@pytest.mark.parametrize("case", list(NO_CSV.values()), ids=list(NO_CSV))
def test_a_zip_with_no_csv_member_is_refused_by_rows_and_download(
    case: tuple[bytes, str], kit: Any, workdir: Path
) -> None:
    """rows() and download(unzip=True) choose the same member: the one ``.csv``. An empty
    archive, only a folder, a nested ZIP or a lone binary is an ``IntegrityError`` naming
    what the archive holds; rows() never returns ``[]`` as a success; no file is written."""
    body, named = case
    with kit.provider_server("stripe-v2", kit.fixed(body), size=len(body), zipped=True) as s:
        gw = kit.gateway_for("stripe-v2", s)
        run = gw.get("stripe-v2", kit.RUN_ID["stripe-v2"])
        with pytest.raises(IntegrityError, match="no CSV file") as from_rows:
            list(gw.rows(run))
        with pytest.raises(IntegrityError, match="no CSV file") as from_download:
            gw.download(run, workdir, unzip=True)
    assert named in str(from_rows.value)
    assert named in str(from_download.value)
    assert kit.files_in(workdir) == []


# -- 7. header names ----------------------------------------------------------------------


HEADERS = {
    "csv-header-suffix-collision": (
        b"a,a_2,a\n1,2,3\n",
        {"a": "1", "a_2": "2", "a_3": "3"},
    ),
    "csv-header-repeat-before-its-suffix": (
        b"a,a,a_2\n1,2,3\n",
        {"a": "1", "a_3": "2", "a_2": "3"},
    ),
    "csv-header-named-like-an-extra": (
        b"_extra_1,b\n1,2,3\n",
        {"_extra_1": "1", "b": "2", "_extra_1_2": "3"},
    ),
}


@pytest.mark.parametrize("case", list(HEADERS.values()), ids=list(HEADERS))
def test_no_header_name_overwrites_another_column(
    case: tuple[bytes, dict[str, str]], kit: Any
) -> None:
    """A renamed repeat (or an extra cell's key) never takes a name the header already has:
    every value of the row is kept, under a name of its own."""
    body, expected = case
    with kit.provider_server("stripe", kit.fixed(body), size=len(body)) as s:
        gw = kit.gateway_for("stripe", s)
        assert list(gw.rows(gw.get("stripe", kit.RUN_ID["stripe"]))) == [expected]


# -- 8. invisible characters, doubled BOMs, NULs ------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["report\u202egnp.csv", "re\u200bport.csv", "\ufeffreport.csv", "rep\u2028ort.csv"],
    ids=["name-rtl-override", "name-zero-width-space", "name-bom", "name-line-separator"],
)
def test_invisible_characters_never_reach_a_file_name(name: str) -> None:
    """A right-to-left override (``report<RLO>gnp.csv`` reads as ``reportvsc.png``),
    zero-width characters and separators in a server's name become ``_``."""
    cleaned = safe_name(name)
    assert cleaned.isprintable()
    assert cleaned.endswith(".csv")
    assert not any(c in cleaned for c in "\u202e\u200b\ufeff\u2028")


def test_a_file_name_with_a_rtl_override_lands_cleaned(kit: Any, workdir: Path) -> None:
    """name-rtl-override end to end: the file in the folder has no invisible character."""
    name = "invoice\u202egnp.csv"
    with kit.provider_server("stripe", kit.fixed(kit.CSV), size=len(kit.CSV), filename=name) as s:
        gw = kit.gateway_for("stripe", s)
        saved = gw.download(gw.get("stripe", kit.RUN_ID["stripe"]), workdir)
    assert saved.parent == workdir
    assert saved.name == "invoice_gnp.csv"


def test_a_doubled_bom_gives_a_clean_header(kit: Any, workdir: Path) -> None:
    """utf16-bom-twice: the codec drops the BOM and the reader a second one at the start:
    the first column is ``a``, not ``'\\ufeffa'``, in rows() and in the converted file."""
    body = codecs.BOM_UTF16_LE + utf16("a\tb\r\n1\t2\r\n")
    with kit.provider_server("zuora", kit.fixed(body, length=None)) as s:
        gw = kit.gateway_for("zuora", s)
        assert list(gw.rows(_zuora_run(kit, gw))) == [{"a": "1", "b": "2"}]
        saved = gw.download(_zuora_run(kit, gw), workdir / "out.csv")
    assert saved.read_bytes() == b"a,b\n1,2\n"


def test_a_utf8_csv_with_a_doubled_bom_gives_a_clean_header(kit: Any) -> None:
    """csv-bom-twice: the same for a UTF-8 CSV read by rows()."""
    body = codecs.BOM_UTF8 * 2 + b"a,b\n1,2\n"
    with kit.provider_server("stripe", kit.fixed(body), size=len(body)) as s:
        gw = kit.gateway_for("stripe", s)
        assert list(gw.rows(gw.get("stripe", kit.RUN_ID["stripe"]))) == [{"a": "1", "b": "2"}]


def test_nuls_in_an_export_are_dropped_by_download_and_rows_alike(kit: Any, workdir: Path) -> None:
    """utf16-nul-chars: NULs are padding: rows() and the converted download drop them, so
    the file and the rows agree (``raw=True`` keeps the provider's bytes)."""
    body = utf16("a\tb\r\n1\x00\t2\r\n\x00")
    with kit.provider_server("zuora", kit.fixed(body, length=None)) as s:
        gw = kit.gateway_for("zuora", s)
        rows = list(gw.rows(_zuora_run(kit, gw)))
        saved = gw.download(_zuora_run(kit, gw), workdir / "out.csv")
        raw = gw.download(_zuora_run(kit, gw), workdir / "raw.tsv", raw=True)
    assert rows == [{"a": "1", "b": "2"}]
    assert saved.read_bytes() == b"a,b\n1,2\n"
    assert raw.read_bytes() == body
