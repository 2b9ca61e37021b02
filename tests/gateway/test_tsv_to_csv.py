"""Zuora's UTF-16 export to CSV by blocks gives exactly what the csv round trip gives.

The conversion replaces the csv module's per-row work with ``str.replace`` on blocks
without quotes or commas; this pins it to the reference (``csv.reader`` with a tab, then
``csv.writer``) on random text cut into random pieces, errors included.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_gateway import IntegrityError
from report_gateway.download import TsvToCsv, _quote_comma_cells, utf16_encoding
from report_gateway.rows import guarded_reader, utf16_lines

ALPHABET = ["a", "b", " ", "\t", "\t", "\n", "\r\n", "\r", ",", '"', "é", "\x00", "😀"]


def reference(data: bytes) -> bytes | str:
    text = io.TextIOWrapper(
        io.BytesIO(data), encoding=utf16_encoding(data[:2]), errors="strict", newline=""
    )
    out = io.StringIO()
    try:
        try:
            decoded = text.read()
        except UnicodeDecodeError:
            return "IntegrityError"
        # NULs are padding: dropped from the text before it is split into lines (as rows()
        # drops them), so NULs after the last line break are not a row cut short.
        clean = io.StringIO(decoded.replace("\x00", ""), newline="")
        lines = utf16_lines(clean, "the export", strip_nul=False)
        rows = guarded_reader(lines, delimiter="\t", what="the export")
        csv.writer(out, lineterminator="\n").writerows(rows)
    except IntegrityError as exc:
        return type(exc).__name__
    return out.getvalue().encode("utf-8")


def by_blocks(data: bytes, piece: int) -> bytes | str:
    out = io.BytesIO()
    converter = TsvToCsv(out, what="the export")
    try:
        for start in range(0, len(data), piece):
            converter.feed(memoryview(data)[start : start + piece])
        converter.finish()
    except IntegrityError as exc:
        return type(exc).__name__
    return out.getvalue()


@pytest.mark.parametrize("seed", range(4))
def test_blocks_match_the_csv_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        kind = rng.choice(("quotes", "commas", "plain"))
        letters = {
            "quotes": ALPHABET,
            "commas": [c for c in ALPHABET if c != '"'],
            "plain": [c for c in ALPHABET if c not in '",'],
        }[kind]
        text = "id\tname\n" + "".join(rng.choice(letters) for _ in range(rng.randint(0, 60)))
        if rng.random() < 0.8 and not text.endswith(("\n", "\r")):
            text += "\n"
        bom = codecs.BOM_UTF16_LE if rng.random() < 0.5 else b""
        data = bom + text.encode("utf-16-le")
        expected = reference(data)
        for piece in (1, 3, 64, 1 << 20):
            assert by_blocks(data, piece) == expected, (text, piece)


def test_a_large_plain_export_converts_in_one_pass() -> None:
    text = "id\tname\tamount\r\n" + "".join(
        f"z_{i}\tcustomer {i}\t{i}.00\r\n" for i in range(20000)
    )
    data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    assert by_blocks(data, 1 << 16) == reference(data)
    assert by_blocks(data, 1 << 16) == text.replace("\r\n", "\n").replace("\t", ",").encode()


def _written(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


@pytest.mark.parametrize("seed", range(3))
def test_comma_cells_quoted_as_csv_writer_would(seed: int) -> None:
    """The quote-free fast path on its own: cells of commas, tabs' neighbours and text in
    every arrangement (a comma first, last or alone in a cell, several in one, empty
    cells, blank lines, non-ASCII) against ``csv.writer`` over the same cells."""
    rng = random.Random(seed)
    pieces = ["", ",", ",,", "a", "a,", ",a", "a,b", "1,234.56", "é,😀", " , ", "x,y,z"]
    for _ in range(500):
        rows = [
            [rng.choice(pieces) for _ in range(rng.randint(0, 5))] for _ in range(rng.randint(1, 6))
        ]
        text = "".join("\t".join(row) + "\n" for row in rows)
        # A row of one empty cell is a blank line: csv reads it as no cells at all.
        expected = _written([row if row != [""] else [] for row in rows])
        assert _quote_comma_cells(text) == expected, text


def test_every_split_point_gives_the_round_trip() -> None:
    """A small export holding every kind of cell, cut in two at every byte offset."""
    text = (
        "id\tamount\tnote\n"
        '1\t4,815.84\t,lead\n2\t\tend,\n,\t,,\t"q,x"\tplain\n'
        "\n3\t1,2,3\té,😀\r\n4\t\x00,\x00\tz\r5\ta\tb,c\r\n"
    )
    for bom in (b"", codecs.BOM_UTF16_LE):
        data = bom + text.encode("utf-16-le")
        expected = reference(data)
        assert isinstance(expected, bytes)
        for cut in range(len(data) + 1):
            assert cut_in_two(data, cut) == expected, cut


def cut_in_two(data: bytes, cut: int) -> bytes | str:
    out = io.BytesIO()
    converter = TsvToCsv(out, what="the export")
    try:
        converter.feed(memoryview(data)[:cut])
        converter.feed(memoryview(data)[cut:])
        converter.finish()
    except IntegrityError as exc:
        return type(exc).__name__
    return out.getvalue()


@pytest.mark.parametrize("seed", range(4))
def test_commas_without_quotes_match_at_every_split_point(seed: int) -> None:
    rng = random.Random(100 + seed)
    letters = [c for c in ALPHABET if c != '"']
    for _ in range(40):
        text = "id\tname\n" + "".join(rng.choice(letters) for _ in range(rng.randint(0, 30)))
        data = (text + "\n").encode("utf-16-le")
        expected = reference(data)
        for cut in range(len(data) + 1):
            assert cut_in_two(data, cut) == expected, (text, cut)


# -- cells written by the csv module, cut anywhere (hypothesis) -------------------------------

#: What a cell may hold: the characters that force quoting (comma, quote, CR, LF, CR LF, a
#: tab inside a quoted source cell), empty cells, non-ASCII and non-BMP (a surrogate pair in
#: UTF-16), a stray BOM character and NUL padding.
CELL_PARTS = ["a", "7", " ", ",", '"', "\t", "\r", "\n", "\r\n", "é", "😀", "\ufeff", "\x00"]
CELLS = st.lists(st.sampled_from(CELL_PARTS), max_size=6).map("".join)
ROWS = st.lists(st.lists(CELLS, min_size=1, max_size=5), min_size=1, max_size=8)


def _source(rows: list[list[str]], line_end: str, encoding: str, bom: bool) -> bytes:
    """The export as Zuora's side would write it: ``csv.writer`` with a tab, in UTF-16."""
    out = io.StringIO()
    # A header row first, as every export has (an export without a BOM must start with a
    # character of U+0000..U+00FF: see utf16_encoding).
    csv.writer(out, delimiter="\t", lineterminator=line_end).writerows([["id", "name"], *rows])
    head = codecs.BOM_UTF16_LE if encoding == "utf-16-le" else codecs.BOM_UTF16_BE
    return (head if bom else b"") + out.getvalue().encode(encoding)


def _by_cuts(data: bytes, cuts: list[int]) -> bytes | str:
    out = io.BytesIO()
    converter = TsvToCsv(out, what="the export")
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    try:
        for start, end in itertools.pairwise(bounds):
            converter.feed(memoryview(data)[start:end])
        converter.finish()
    except IntegrityError as exc:
        return type(exc).__name__
    return out.getvalue()


@settings(max_examples=400, deadline=None)
@given(
    rows=ROWS,
    line_end=st.sampled_from(["\n", "\r\n", "\r"]),
    encoding=st.sampled_from(["utf-16-le", "utf-16-be"]),
    bom=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=6),
)
def test_csv_written_cells_convert_as_the_round_trip_in_any_split(
    rows: list[list[str]], line_end: str, encoding: str, bom: bool, cuts: list[int]
) -> None:
    """Cells holding every character that forces quoting, written by ``csv.writer`` (so
    the source has quoted cells with tabs, quotes and line breaks inside), cut at random
    byte offsets: inside a surrogate pair, between CR and LF, inside a quoted cell. The
    converted bytes are those of the csv round trip, or the same error."""
    if encoding == "utf-16-be" and not bom:
        encoding = "utf-16-le"  # without a BOM the export is little-endian by definition
    data = _source(rows, line_end, encoding, bom)
    assert _by_cuts(data, cuts) == reference(data)
