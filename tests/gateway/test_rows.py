"""rows(): dicts keyed by the header, streamed, with documented tolerant results."""

from __future__ import annotations

import codecs
import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from report_gateway.models import CONTENT_CSV, CONTENT_TSV_UTF16, CONTENT_ZIP
from report_gateway.rows import ResultFormatError, iter_rows
from report_gateway.transfer import ResultBody


def rows_of(data: bytes, content_type: str = CONTENT_CSV, **kw: Any) -> list[dict[str, str]]:
    body = ResultBody(lambda offset: _Once(data, offset, **kw), expected_size=None, description="t")
    return list(iter_rows(body, content_type))


class _Once:
    """A response over ``data`` delivered in small chunks (so decoders see split sequences)."""

    def __init__(self, data: bytes, offset: int, chunk: int = 7) -> None:
        self.data = data[offset:]
        self.status = 206 if offset else 200
        self.headers = {"Content-Range": f"bytes {offset}-{len(data) - 1}/{len(data)}"}
        self.content_length = len(self.data)
        self.chunk = chunk
        self.served = 0

    def iter_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        for start in range(0, len(self.data), self.chunk):
            self.served = start + self.chunk
            yield self.data[start : start + self.chunk]

    def close(self) -> None:
        pass


def test_rows_keyed_by_header() -> None:
    data = b'id,name,amount\r\n1,Ada,10\r\n2,"Grace, H",20\r\n'
    assert rows_of(data) == [
        {"id": "1", "name": "Ada", "amount": "10"},
        {"id": "2", "name": "Grace, H", "amount": "20"},
    ]


def test_multibyte_characters_split_across_chunks() -> None:
    data = "name\nZoë Ñandú 日本\n".encode()
    assert rows_of(data, chunk=1) == [{"name": "Zoë Ñandú 日本"}]


def test_rows_are_streamed_not_loaded() -> None:
    lines = ["n"] + [str(i) for i in range(200_000)]
    data = ("\n".join(lines) + "\n").encode()
    responses: list[_Once] = []

    def open_result(offset: int) -> _Once:
        responses.append(_Once(data, offset, chunk=1 << 16))
        return responses[-1]

    body = ResultBody(open_result, expected_size=len(data), description="t")
    iterator = iter_rows(body, CONTENT_CSV)
    assert next(iterator) == {"n": "0"}
    assert responses[0].served < len(data) // 2
    assert sum(1 for _ in iterator) == 199_999


def test_utf8_bom_dropped() -> None:
    assert rows_of(codecs.BOM_UTF8 + b"id\n1\n") == [{"id": "1"}]


def test_nul_characters_removed() -> None:
    assert rows_of(b"id,na\x00me\n1,A\x00da\n\x00\x00") == [{"id": "1", "name": "Ada"}]


def test_short_rows_padded_and_extra_cells_kept() -> None:
    data = b"a,b,c\n1\n1,2,3,4,,6\n1,2,3,\n"
    assert rows_of(data) == [
        {"a": "1", "b": "", "c": ""},
        {"a": "1", "b": "2", "c": "3", "_extra_1": "4", "_extra_3": "6"},
        {"a": "1", "b": "2", "c": "3"},
    ]


def test_blank_lines_skipped_and_duplicate_headers_renamed() -> None:
    data = b"\n\nid,amount,amount\n\n1,2,3\n\n"
    assert rows_of(data) == [{"id": "1", "amount": "2", "amount_2": "3"}]


def test_empty_result_yields_nothing() -> None:
    assert rows_of(b"") == []
    assert rows_of(b"only,a,header\n") == []


@pytest.mark.parametrize(
    "data", [b"name\nA\xffB\n", b"b\n\xe9t\xe9\n", b"name\nok\n" + b"x" * 100 + b"\xc3\n"]
)
def test_bytes_that_are_not_utf8_are_named_never_replaced(data: bytes) -> None:
    """A replaced character would be loaded into a table as data without a word."""
    with pytest.raises(ResultFormatError, match="not UTF-8 text") as caught:
        rows_of(data)
    assert "download()" in str(caught.value)


def test_unreadable_cell_raises_result_format_error() -> None:
    oversized = b"a\n" + b"x" * (200_000) + b"\n"
    with pytest.raises(ResultFormatError, match="line"):
        rows_of(oversized, chunk=1 << 16)


@pytest.mark.parametrize("prefix", [codecs.BOM_UTF16_LE, b""])
def test_zuora_utf16_tab_separated(prefix: bytes) -> None:
    text = "Account.Name\tInvoice.Amount\r\nAcme, Inc.\t1,729.76\r\nNul\x00ly\t3\r\n"
    data = prefix + text.encode("utf-16-le")
    assert rows_of(data, CONTENT_TSV_UTF16) == [
        {"Account.Name": "Acme, Inc.", "Invoice.Amount": "1,729.76"},
        {"Account.Name": "Nully", "Invoice.Amount": "3"},
    ]


def test_zip_result_rows() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("report.csv", "id,v\n1,x\n2,y\n")
    assert rows_of(buffer.getvalue(), CONTENT_ZIP) == [{"id": "1", "v": "x"}, {"id": "2", "v": "y"}]


def test_corrupt_zip_is_a_clear_error() -> None:
    with pytest.raises(ResultFormatError, match="ZIP"):
        rows_of(b"not a zip", CONTENT_ZIP)


def test_rows_resume_after_a_dropped_connection() -> None:
    data = ("n\n" + "".join(f"{i}\n" for i in range(1000))).encode()
    calls: list[int] = []

    class Dropping(_Once):
        def iter_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
            yield self.data[:100]
            raise ConnectionResetError("dropped")

    def open_result(offset: int) -> _Once:
        calls.append(offset)
        return Dropping(data, offset) if len(calls) == 1 else _Once(data, offset, chunk=64)

    body = ResultBody(open_result, expected_size=len(data), description="t")
    assert [r["n"] for r in iter_rows(body, CONTENT_CSV)] == [str(i) for i in range(1000)]
    assert calls == [0, 100]
