"""Streaming a result as ``dict[str, str]`` rows keyed by its header row.

Bytes flow from the response through a buffered reader and an incremental decoder into
``csv.reader``, so memory stays flat whatever the file size and the per-row work is one
``dict(zip(...))``, as in ``csv.DictReader``.

Tolerant results for imperfect files (documented in README):

- NUL characters are removed (they are padding, never data, in the providers' files).
- Bytes that are not valid text in the file's encoding become U+FFFD.
- A UTF-8 BOM is dropped; blank lines are skipped.
- A short row is completed with ``""`` for the missing columns.
- Cells beyond the header go under ``_extra_1``, ``_extra_2``, ... (by position; empty ones,
  such as a trailing comma, are left out).
- A repeated header name gets a suffix: ``Amount``, ``Amount_2``, ``Amount_3``.
- A file with no header row yields nothing.
- Malformed quoting that ``csv`` cannot read raises ``ResultFormatError`` with the line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from .errors import ResultFormatError
from .models import CONTENT_TSV_UTF16, CONTENT_ZIP
from .transfer import CHUNK_SIZE, ResultBody

__all__ = ["ResultFormatError", "iter_rows", "rows_from_text"]


class _ChunkReader(io.RawIOBase):
    """A read-only raw stream over an iterator of byte chunks (optionally NUL-free).

    Removing NUL at the byte level is safe for UTF-8: 0x00 never occurs inside a multi-byte
    sequence, and ``in``/``replace`` run in C, so clean files pay one scan per MiB.
    """

    def __init__(self, chunks: Iterator[bytes], *, strip_nul: bool) -> None:
        super().__init__()
        self._chunks = chunks
        self._strip_nul = strip_nul
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = self._view
        while not view:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            if self._strip_nul and b"\x00" in chunk:
                chunk = chunk.replace(b"\x00", b"")
            view = memoryview(chunk)
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        self._view = view[size:]
        return size

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()


def _unique(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    names: list[str] = []
    for name in header:
        count = seen.get(name, 0) + 1
        seen[name] = count
        names.append(name if count == 1 else f"{name}_{count}")
    return names


def rows_from_text(lines: Iterable[str], *, delimiter: str = ",") -> Iterator[dict[str, str]]:
    """Rows from an iterable of text lines (newline-preserving), with the tolerant rules."""
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        first = next(reader, None)
        while first is not None and not first:
            first = next(reader, None)
        if first is None:
            return
        header = _unique(first)
        width = len(header)
        for row in reader:
            if len(row) == width:
                yield dict(zip(header, row))
            elif not row:
                continue
            elif len(row) < width:
                record = dict(zip(header, row))
                for name in header[len(row) :]:
                    record[name] = ""
                yield record
            else:
                record = dict(zip(header, row))
                for position, cell in enumerate(row[width:], start=1):
                    if cell:
                        record[f"_extra_{position}"] = cell
                yield record
    except csv.Error as exc:
        raise ResultFormatError(
            f"cannot read the result as CSV at line {reader.line_num}: {exc}"
        ) from None


def _strip_nul_lines(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        yield line.replace("\x00", "") if "\x00" in line else line


def iter_rows(body: ResultBody, content_type: str) -> Iterator[dict[str, str]]:
    """Rows of a result body: CSV (UTF-8), Zuora UTF-16 tab-separated, or a ZIP with a CSV."""
    if content_type == CONTENT_ZIP:
        yield from _zip_rows(body)
        return
    if content_type != CONTENT_TSV_UTF16:
        yield from _csv_rows(body.chunks())
        return
    # UTF-16 NULs are half of every ASCII character: they are removed after decoding.
    raw = _ChunkReader(body.chunks(), strip_nul=False)
    with io.BufferedReader(raw, buffer_size=CHUNK_SIZE) as buffered:
        from .download import utf16_encoding

        encoding = utf16_encoding(buffered.peek(2)[:2])
        text = io.TextIOWrapper(buffered, encoding=encoding, errors="replace", newline="")
        yield from rows_from_text(_strip_nul_lines(text), delimiter="\t")


def _csv_rows(chunks: Iterator[bytes]) -> Iterator[dict[str, str]]:
    """Rows of UTF-8 CSV bytes (BOM and NULs dropped), whether from the wire or a ZIP member."""
    raw = _ChunkReader(chunks, strip_nul=True)
    with io.BufferedReader(raw, buffer_size=CHUNK_SIZE) as buffered:
        text = io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="replace", newline="")
        yield from rows_from_text(text)


def _zip_rows(body: ResultBody) -> Iterator[dict[str, str]]:
    """A ZIP cannot be read front to back (its index is at the end): spool it, then stream."""
    import tempfile
    import zipfile

    with tempfile.TemporaryFile() as spool:
        for chunk in body.chunks():
            spool.write(chunk)
        spool.seek(0)
        try:
            archive = zipfile.ZipFile(spool)
        except zipfile.BadZipFile as exc:
            raise ResultFormatError(f"result is not a valid ZIP file: {exc}") from None
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            csvs = [m for m in members if m.filename.lower().endswith(".csv")] or members
            if not csvs:
                return
            with archive.open(csvs[0]) as member:
                yield from _csv_rows(iter(lambda: member.read(CHUNK_SIZE), b""))
