"""``--format parquet|jsonl``: the result saved as a table instead of the provider's file.

Checked before a run is started (a missing extra, ``-o -`` for Parquet or ``-o r.csv``
for Parquet would otherwise cost a finished run), then written through
``report_gateway.tabular``: atomically, in record batches, so memory stays bounded
whatever the result's size.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .exits import UsageError

if TYPE_CHECKING:
    from report_gateway.gateway import Gateway
    from report_gateway.models import ReportRun

    from .progress import Progress


def check_format(args: argparse.Namespace) -> None:
    """Refuse what cannot work before a run is created for nothing."""
    fmt = getattr(args, "format", "csv")
    if getattr(args, "untyped", False) and fmt != "parquet":
        raise UsageError(
            f"--untyped goes with --format parquet (--format {fmt} writes every cell as text)"
        )
    if fmt == "csv" or getattr(args, "output", None) is None:
        return
    if getattr(args, "raw", False):
        raise UsageError(
            f"--raw keeps the provider's bytes: it cannot be combined with --format {fmt}"
        )
    _check_suffix(args.output, fmt)
    if fmt == "parquet":
        if args.output == "-":
            raise UsageError("--format parquet needs a file or a folder for -o, not stdout")
        from report_gateway.tabular import require

        require("pyarrow.parquet")  # MissingExtraError: names the pip install line


#: File name endings that say what a file holds, and the --format that writes it.
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".zip": "csv", ".parquet": "parquet",
             ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}  # fmt: skip


def _check_suffix(output: str, fmt: str) -> None:
    """``-o r.csv --format parquet`` would write Parquet under a CSV's name, for the next
    program to misread: refused, naming both (a name without a known ending is taken)."""
    if output == "-" or output.endswith(("/", os.sep)) or os.path.isdir(output):
        return
    suffix = Path(output).suffix.lower()
    says = _SUFFIXES.get(suffix)
    if says is not None and says != fmt:
        raise UsageError(
            f"-o {output} names a {suffix[1:]} file but --format {fmt} writes {fmt}: name it "
            f"{Path(output).with_suffix('.' + fmt).name} or a folder, or change --format"
        )


def save_as(
    gateway: Gateway,
    run: ReportRun,
    output: str,
    fmt: str,
    stdout: IO[str],
    progress: Progress,
    *,
    typed: bool = True,
) -> dict[str, Any]:
    """Write ``run``'s rows to ``output`` as ``fmt``; return where and how many bytes.
    ``typed=False`` (``--untyped``): every Parquet column as text."""
    from report_gateway import tabular

    if output == "-":  # jsonl only (check_format): through a temporary, as csv does
        with tempfile.TemporaryDirectory(prefix="report-gateway-") as folder:
            path = tabular.write_jsonl(gateway, run, Path(folder) / "result.jsonl", durable=False)
            size = path.stat().st_size
            progress.finish()
            stdout.flush()
            binary = getattr(stdout, "buffer", None)
            with path.open("rb") as fh:
                if binary is not None:
                    while chunk := fh.read(1 << 20):
                        binary.write(chunk)
                    binary.flush()
                else:  # a text-only stream (tests)
                    stdout.write(fh.read().decode("utf-8"))
                    stdout.flush()
        return {"path": "-", "bytes": size, "format": fmt}
    target = tabular.output_path(run, output, fmt)
    replaced = target.is_file()
    if fmt == "parquet":
        path = tabular.to_parquet(gateway, run, target, typed=typed)
    else:
        path = tabular.write_jsonl(gateway, run, target)
    size = os.stat(path).st_size
    progress.downloaded(size, str(path))
    saved: dict[str, Any] = {"path": str(path), "bytes": size, "format": fmt}
    if replaced:
        saved["replaced"] = True
        saved["notes"] = [f"replaced the existing file {path}"]
    return saved
