"""Native byte loops for report-gateway, where pure Python cannot keep up with the bytes.

Optional: report-gateway imports this package when it is installed and otherwise runs its
own pure-Python version of each function, which is also the reference the tests compare
these with. ``quote_comma_cells`` is the fast path of the Zuora export conversion
(``report_gateway.download.TsvToCsv``).
"""

from __future__ import annotations

from report_gateway_speedups._speedups import quote_comma_cells

__all__ = ["quote_comma_cells"]
