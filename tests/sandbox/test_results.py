"""Result files: sizes known up front, any byte range reproducible, ZIPs readable (ZIP64 too)."""

from __future__ import annotations

import datetime as dt
import io
import random
import zipfile
from collections.abc import Iterator

import pytest
from report_gateway_sandbox.results import Column, TableFile, ValueContext, ZipFile

COLUMNS = [
    Column("id", "index", "txn_"),
    Column("created", "utc"),
    Column("amount", "amount"),
    Column("note", "text"),
]
CONTEXT = ValueContext(1_735_689_600, 1_738_368_000, None, display=False)


def _all(body: TableFile | ZipFile) -> bytes:
    return b"".join(body.iter_range(0, body.size, 1 << 16))


@pytest.mark.parametrize("utf16", [False, True])
def test_any_range_equals_the_slice(utf16: bool) -> None:
    table = TableFile(COLUMNS, seed=3, context=CONTEXT, rows=3000, utf16=utf16, delimiter="\t")
    data = _all(table)
    assert len(data) == table.size
    rng = random.Random(1)
    for _ in range(100):
        start = rng.randrange(table.size)
        end = rng.randrange(start, table.size + 1)
        assert b"".join(table.iter_range(start, end, 4096)) == data[start:end]


def test_rows_and_seed() -> None:
    table = TableFile(COLUMNS, seed=3, context=CONTEXT, rows=2500)
    lines = _all(table).decode().splitlines()
    assert len(lines) == 2501
    assert lines[2500].split(",") == table.row_values(2499)
    assert _all(TableFile(COLUMNS, seed=3, context=CONTEXT, rows=2500)) == _all(table)
    assert _all(TableFile(COLUMNS, seed=4, context=CONTEXT, rows=2500)) != _all(table)


def test_columns_without_a_row_number() -> None:
    table = TableFile(
        [Column("a", "amount"), Column("b", "text")], seed=1, context=CONTEXT, rows=3000
    )
    assert len(_all(table).splitlines()) == 3001


def test_zip_is_readable_and_ranges_work() -> None:
    table = TableFile(COLUMNS, seed=3, context=CONTEXT, rows=1500)
    archive = ZipFile(table, filename="r.zip", member="r.csv", when=dt.datetime(2025, 1, 2))
    data = _all(archive)
    assert len(data) == archive.size
    assert zipfile.ZipFile(io.BytesIO(data)).read("r.csv") == _all(table)
    fresh = ZipFile(table, filename="r.zip", member="r.csv", when=dt.datetime(2025, 1, 2))
    assert b"".join(fresh.iter_range(archive.size - 40, archive.size, 100)) == data[-40:]


class _Zeros:
    """A 4.5 GB stand-in file, so the ZIP64 layout can be checked without making one."""

    size = 4_500_000_000
    content_type = "text/csv"
    filename = "big.csv"

    def iter_range(self, start: int, end: int, chunk_size: int) -> Iterator[bytes]:
        while start < end:
            n = min(chunk_size, end - start)
            yield bytes(n)
            start += n


class _Lazy(io.RawIOBase):
    """A seekable read-only view of a ranged body, so zipfile reads only what it needs."""

    def __init__(self, body: ZipFile) -> None:
        self.body = body
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.body.size}[whence]
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        end = min(self.body.size, self.pos + len(buffer))
        data = b"".join(self.body.iter_range(self.pos, end, 1 << 20))
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def test_zip64_layout_for_files_over_4_gib() -> None:
    archive = ZipFile(_Zeros(), filename="big.zip", member="big.csv", when=dt.datetime(2025, 1, 2))
    archive._crc = 0x12345678  # skip hashing 4.5 GB of zeros; the layout is what is checked
    reader = zipfile.ZipFile(_Lazy(archive))
    (info,) = reader.infolist()
    assert info.file_size == 4_500_000_000
    assert info.compress_size == 4_500_000_000
    assert info.CRC == 0x12345678
    with reader.open(info) as member:
        assert member.read(10) == bytes(10)
