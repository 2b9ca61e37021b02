"""``python -m tests.recording [--live] [--provider NAME ...]``: re-record the flow cassettes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .cassettes import REPO
from .flows import FLOWS
from .recorder import LIVE_ENV, record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.recording",
        description="Record the flow cassettes from the sandbox (default) or the live services.",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="record from the real services; credentials from "
        + ", ".join(sorted({n for names in LIVE_ENV.values() for n in names}))
        + " (providers without them are skipped)",
    )
    parser.add_argument(
        "--provider",
        action="append",
        choices=sorted({f.provider for f in FLOWS}),
        help="record only this provider's flows (repeatable)",
    )
    args = parser.parse_args(argv)
    recordings = record(live=args.live, providers=args.provider)
    for rec in recordings:
        where = rec.path.relative_to(REPO)
        if rec.skipped:
            print(f"skipped  {rec.flow.id}: {rec.skipped}")
            continue
        result = rec.result
        detail = ""
        if result is not None:
            detail = f"run {result.run.id} {result.run.raw_status}"
            if result.file is not None:
                detail += f", {result.rows} rows, {result.bytes} bytes"
        print(f"recorded {rec.flow.id} -> {where} ({rec.size} bytes; {detail})")
    if args.live and all(rec.skipped for rec in recordings):
        print("nothing recorded: no provider credentials in the environment", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
