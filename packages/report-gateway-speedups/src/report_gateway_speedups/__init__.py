"""Native byte loops for report-gateway, where pure Python cannot keep up with the bytes.

Optional: report-gateway imports this package when it is installed and otherwise runs its
own pure-Python version of each function, which is also the reference the tests compare
these with. ``quote_comma_cells`` is the fast path of the Zuora export conversion
(``report_gateway.download.TsvToCsv``).

The extension's build is optional (a failed compile, e.g. no C compiler, still installs
this package, so the Zuora plugin that depends on it installs everywhere). Without the
compiled module this package imports but defines none of the functions, so
``from report_gateway_speedups import quote_comma_cells`` raises ``ImportError``: the
signal report-gateway already takes to fall back to pure Python.
"""

from __future__ import annotations

__all__: list[str] = []

try:
    from report_gateway_speedups._speedups import quote_comma_cells
except ImportError:
    pass
else:
    __all__ += ["quote_comma_cells"]
