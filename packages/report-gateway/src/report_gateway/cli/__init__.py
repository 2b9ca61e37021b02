"""The ``report-gateway`` command: ``main(argv)`` runs one subcommand and returns its exit code.

Only the argument parser is imported up front; commands, the gateway, pluggy and the HTTP
stack load after parsing, so ``report-gateway --help`` answers at interpreter speed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``report-gateway`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    ``--help``, ``--version`` and usage errors return argparse's code (0 or 2) instead of
    raising SystemExit, so callers and tests see one convention.
    """
    from .parser import build_parser

    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    from .commands import execute

    return execute(args, sys.stdout, sys.stderr)
