"""Example third-party report-gateway plugin (see README.md): nothing here touches the core."""

from __future__ import annotations

__version__ = "0.1.0"
