"""``python -m report_gateway.cli``: the same as the ``report-gateway`` script."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
