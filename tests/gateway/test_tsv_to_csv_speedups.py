"""The compiled fast path of the Zuora conversion (report-gateway-speedups) writes the same
bytes as the pure-Python one it replaces, so whether a user's environment has the
accelerator never changes a converted file."""

from __future__ import annotations

import codecs
import csv
import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_gateway import download
from report_gateway.download import TsvToCsv, _quote_comma_cells
from report_gateway_speedups import quote_comma_cells

#: What a cell may hold under the fast path's precondition (no quote, no CR, no line break
#: inside a cell): commas, spaces, non-ASCII, non-BMP (four UTF-8 bytes), a BOM character
#: and NUL; empty cells and empty lines come from the list sizes.
CELL_PARTS = ["a", "7", " ", ",", ",,", "é", "€", "😀", "\ufeff", "\x00"]
CELLS = st.lists(st.sampled_from(CELL_PARTS), max_size=5).map("".join)
LINES = st.lists(st.lists(CELLS, max_size=6).map("\t".join), min_size=1, max_size=10)


@settings(max_examples=500, deadline=None)
@given(lines=LINES)
def test_native_and_python_quoting_give_the_same_bytes(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    expected = _quote_comma_cells(text)
    data = text.encode("utf-8")
    assert quote_comma_cells(data) == expected
    # Any contiguous bytes-like object, as TsvToCsv might pass a reused buffer.
    assert quote_comma_cells(bytearray(data)) == expected
    assert quote_comma_cells(memoryview(data)) == expected


def test_quoting_is_what_csv_writer_writes() -> None:
    text = "id\tamount\tnote\n1\t4,815.84\t\n\n2\t,\tx, y,z\n"
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t"))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    assert quote_comma_cells(text.encode("utf-8")) == out.getvalue().encode("utf-8")
    assert quote_comma_cells(b"") == b""


def test_text_is_refused() -> None:
    with pytest.raises(TypeError):
        quote_comma_cells("id\tamount\n")  # type: ignore[arg-type]


def _converted(data: bytes, cuts: list[int]) -> bytes:
    out = io.BytesIO()
    converter = TsvToCsv(out, what="the export")
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        converter.feed(memoryview(data)[start:end])
    converter.finish()
    return out.getvalue()


@settings(max_examples=200, deadline=None)
@given(
    lines=LINES,
    line_end=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=6),
)
def test_the_conversion_is_the_same_with_and_without_the_accelerator(
    lines: list[str], line_end: str, cuts: list[int]
) -> None:
    text = "id\tname\n" + line_end.join(lines) + line_end
    data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    assert download._native_quote_comma_cells is quote_comma_cells  # installed: in use
    accelerated = _converted(data, cuts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(download, "_native_quote_comma_cells", None)
        assert _converted(data, cuts) == accelerated
