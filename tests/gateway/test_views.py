"""ResultBody.views: one buffer per transfer, read with readinto when the response has it."""

from __future__ import annotations

import codecs
import csv
import io

import pytest
from report_gateway.models import CONTENT_CSV, CONTENT_TSV_UTF16
from report_gateway.rows import iter_rows
from report_gateway.transfer import ResultBody


class Filling:
    """A response with ``readinto`` (as ``reporting_runtime.Response``), no ``iter_bytes``
    use expected; it may drop the connection after ``fail_after`` bytes."""

    def __init__(self, data: bytes, offset: int, fail_after: int | None = None) -> None:
        self.data = data[offset:]
        self.status = 206 if offset else 200
        self.headers = {"Content-Range": f"bytes {offset}-{len(data) - 1}/{len(data)}"}
        self.content_length = len(self.data)
        self.position = 0
        self.fail_after = fail_after

    def readinto(self, buffer: memoryview) -> int:
        if self.fail_after is not None and self.position >= self.fail_after:
            raise ConnectionResetError("dropped")
        piece = self.data[self.position : self.position + min(len(buffer), 5000)]
        buffer[: len(piece)] = piece
        self.position += len(piece)
        return len(piece)

    def iter_bytes(self, chunk_size: int = 1 << 20) -> object:
        raise AssertionError("readinto is there: iter_bytes must not be used")

    def close(self) -> None:
        pass


def test_views_fill_the_one_buffer_and_resume_after_a_drop() -> None:
    data = bytes(range(256)) * 200
    opened: list[int] = []

    def open_result(offset: int) -> Filling:
        opened.append(offset)
        return Filling(data, offset, fail_after=20000 if not offset else None)

    body = ResultBody(open_result, expected_size=len(data), description="t")
    buffer = bytearray(4096)
    received = []
    for piece in body.views(buffer):
        assert isinstance(piece, memoryview)
        assert piece.obj is buffer
        received.append(bytes(piece))
    assert b"".join(received) == data
    assert opened == [0, 20480]  # resumed where the drop left it


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_utf16_rows_through_readinto_match_csv(newline: str) -> None:
    lines = ["id\tname\tamount"] + [f"z_{i}\tAcme, {i}\t{i}.5" for i in range(3000)]
    text = newline.join(lines) + newline
    data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    body = ResultBody(lambda offset: Filling(data, offset), expected_size=None, description="t")
    expected = list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t"))
    assert list(iter_rows(body, CONTENT_TSV_UTF16)) == expected


def test_csv_rows_through_readinto_drop_nul() -> None:
    data = b"id,v\n" + b"".join(b"r%d,x\x00y\n" % i for i in range(2000))
    body = ResultBody(lambda offset: Filling(data, offset), expected_size=None, description="t")
    rows = list(iter_rows(body, CONTENT_CSV))
    assert len(rows) == 2000
    assert rows[-1] == {"id": "r1999", "v": "xy"}
