"""`python -m tests.bench [--quick] [--only NAME ...]`: run the benchmarks, print one table,
exit 1 if a target is missed (2 if a benchmark could not run)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .sandbox_process import SandboxProcess
from .suite import BENCHMARKS, Bench, Sizes
from .table import Row, render

MiB = 1 << 20
#: Information rows a full run leaves out (they cost minutes and carry no target): the chunk
#: size study behind transfer.py, and the thread-per-wait comparison for ``waiting``.
OPT_IN = frozenset({"chunks", "waiting_threads"})
RUN_ORDER = (
    "download",
    "scale",
    "rows",
    "memory",
    "zuora",
    "chunks",
    "overhead",
    "fanout",
    "waiting",
    "waiting_threads",
    "aio_waiting",
    "startup",
    "arrow",
)


def _size(size: int) -> str:
    return f"{size / MiB:.0f} MiB" if size < 1024 * MiB else f"{size / (1024 * MiB):.1f} GiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke test of the suite itself"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only these benchmarks (repeatable): {', '.join(BENCHMARKS)};"
        f" a full run leaves out {', '.join(sorted(OPT_IN))}",
    )
    parser.add_argument(
        "--tmp", default=None, help="folder for the downloaded files (default: system temp)"
    )
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    wanted = args.only or [name for name in BENCHMARKS if name not in OPT_IN]
    workdir = Path(tempfile.mkdtemp(prefix="report-gateway-bench-", dir=args.tmp))
    free = shutil.disk_usage(workdir).free
    need = 3 * sizes.big + sizes.busy_file
    if free < need:
        print(
            f"need {need // MiB} MiB free in {workdir}, have {free // MiB}",
            file=sys.stderr,
        )
        return 2
    # The measured clients journal their runs as users' do, but into a journal of the
    # bench's own (fresh each run, gone with the folder), never into the user's; an
    # explicit REPORT_GATEWAY_JOURNAL (empty: journal off) is kept.
    os.environ.setdefault("REPORT_GATEWAY_JOURNAL", str(workdir / "journal.sqlite3"))
    results: list[tuple[str, Row]] = []
    broken: list[str] = []
    started = time.monotonic()
    try:
        with SandboxProcess(workdir / "sandbox.log", run_seconds=0.05) as sandbox:
            bench = Bench(sandbox, workdir, sizes)
            # Transfers first and together (memory and scale reuse their passes, and RSS
            # figures compared with each other come from processes started close in time).
            for name in RUN_ORDER:
                if name not in wanted:
                    continue
                number, function = BENCHMARKS[name]
                print(f"[{number}] {name} ...", file=sys.stderr, flush=True)
                t0 = time.monotonic()
                try:
                    rows = function(bench)
                except Exception:
                    traceback.print_exc()
                    broken.append(name)
                    rows = [Row(name, "ERROR", "-", "-", "-", False)]
                print(f"[{number}] {name} took {time.monotonic() - t0:.0f} s", file=sys.stderr)
                results.extend((number, row) for row in rows)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    mode = (
        "quick smoke run: sizes too small for the targets to mean anything"
        if args.quick
        else "full run"
    )
    print()
    print(f"report-gateway benchmarks ({mode}; {elapsed:.0f} s)")
    print(
        f"method: median of {sizes.pairs} alternating pairs per ratio (min-max in brackets),"
        f" {sizes.idle:g} s idle before every timed part, no os.sync, no best-of-N;"
        f" busy = another process allocating {_size(sizes.busy_alloc)} and writing"
        f" {_size(sizes.busy_file)} files in a loop"
    )
    print(
        f"command: python -m nox -s bench -- {' '.join(argv if argv is not None else sys.argv[1:])}"
    )
    print(render(sorted(results, key=lambda pair: int(pair[0]))))
    missed = [row for _, row in results if row.ok is False]
    if broken:
        print(f"\n{len(broken)} benchmark(s) failed to run: {', '.join(broken)}")
        return 2
    if missed:
        print(f"\n{len(missed)} target(s) missed")
        return 0 if args.quick else 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
