from typing_extensions import Buffer

def quote_comma_cells(data: Buffer, /) -> bytes:
    """UTF-8 TSV lines with no double quote and LF line ends, as CSV: tab -> comma, a cell
    holding a comma in double quotes, line ends kept. Runs without the GIL."""
