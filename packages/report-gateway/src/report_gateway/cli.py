"""The ``report-gateway`` command (written on top of ``Gateway`` by the CLI engineer)."""

from __future__ import annotations


def main() -> int:
    """Entry point placeholder until the command line lands."""
    print("report-gateway: the command line is not written yet")
    return 2
