"""A report's result as typed Arrow record batches, a Parquet file, JSON lines or a dataframe.

The extras are optional: ``pyarrow`` (``report-gateway[arrow]``), ``pandas``
(``report-gateway[pandas]``) and ``polars`` (``report-gateway[polars]``) are imported only
when a function here needs them; a missing one is a ``MissingExtraError`` naming the
``pip install`` line that adds it.

Rows come from ``Gateway.rows`` (so every size, checksum, CRC and format check of a
download holds) and are packed into record batches of ``batch_rows`` rows: memory holds one
batch, never the file, for Parquet and JSON lines. ``to_arrow`` keeps the table it returns
(columnar and typed, several times smaller than the rows as dicts).

Column types come from the provider where it gives them: a driver may have a
``result_columns(run)`` method returning ``{column: type}`` in the neutral vocabulary of
``COLUMN_TYPES`` (Stripe Reports v2 answers from ``result.file.schema``); columns it does not
type, and every column of a provider without one (Stripe v1, Zuora), stay strings. An empty
cell in a typed column is null; a cell that does not parse as its type is a
``ColumnTypeError`` (a ``ResultFormatError``) naming the column and where its type came
from (``typed=False`` reads every column as strings). ``types`` adds or overrides types by
column name; a type name outside ``COLUMN_TYPES`` is refused before any request.

A result without a header row has no columns; one with a header and no rows has the
provider's typed columns when it gives them, else none (``rows`` yields nothing to name them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .download import safe_name
from .errors import MissingExtraError, ResultFormatError

if TYPE_CHECKING:
    from .gateway import Gateway
    from .models import ReportRun

__all__ = [
    "COLUMN_TYPES",
    "DEFAULT_BATCH_ROWS",
    "ColumnTypeError",
    "iter_batches",
    "require",
    "result_columns",
    "to_arrow",
    "to_pandas",
    "to_parquet",
    "to_polars",
    "write_jsonl",
]

#: Rows per record batch: about 10-30 MiB of Python rows in flight for a typical report.
DEFAULT_BATCH_ROWS = 65_536

#: The neutral column types a driver's ``result_columns`` may name.
COLUMN_TYPES = ("string", "integer", "number", "boolean", "timestamp", "date")

#: Module -> the extra that installs it.
_EXTRAS = {"pyarrow": "arrow", "pandas": "pandas", "polars": "polars", "opentelemetry": "otel"}


class ColumnTypeError(ResultFormatError):
    """A cell that does not parse as its column's type; ``by_schema``: the type came from
    the provider's schema (else from ``types=``), which ``typed=False`` turns off."""

    def __init__(self, message: str, *, column: str, kind: str, by_schema: bool) -> None:
        super().__init__(message)
        self.column = column
        self.kind = kind
        self.by_schema = by_schema


def check_types(types: Mapping[str, str] | None) -> None:
    """Refuse a type name the data tools do not know (a typo would be text silently)."""
    unknown = {name: kind for name, kind in (types or {}).items() if kind not in COLUMN_TYPES}
    if unknown:
        listed = ", ".join(f"{name!r}: {kind!r}" for name, kind in unknown.items())
        raise ValueError(f"types= names unknown column types ({listed}); the types are "
                         f"{', '.join(COLUMN_TYPES)}")  # fmt: skip


def require(module: str) -> Any:
    """Import an optional library, or say which extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top, top)
        raise MissingExtraError(
            f"{top} is not installed: this needs the {extra!r} extra, "
            f'pip install "report-gateway[{extra}]"'
        ) from None


def _arrow_type(kind: str) -> Any:
    pa = require("pyarrow")
    return {
        "integer": pa.int64(),
        "number": pa.float64(),
        "boolean": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
    }.get(kind, pa.string())


def result_columns(gateway: Gateway, run: ReportRun) -> dict[str, str]:
    """The column types the provider gives for ``run``'s result (``{}``: none)."""
    driver = gateway.driver(run.provider)
    columns = getattr(driver, "result_columns", None)
    if columns is None:
        return {}
    from .errors import provider_errors

    with provider_errors(run.provider, scrub=gateway.scrub):
        answer = columns(run)
    return {str(k): str(v) for k, v in (answer or {}).items() if v in COLUMN_TYPES}


def _typed(array: Any, kind: str, name: str, by_schema: bool) -> Any:
    """A string column as ``kind``: empty cells null, anything unparsable an error."""
    pa = require("pyarrow")
    pc = require("pyarrow.compute")
    array = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
    try:
        if kind == "timestamp":
            # ISO 8601 with an offset ("2025-01-01T00:00:00Z") is read as it says; the
            # providers' wall-clock form ("2025-01-01 00:00:00") is UTC.
            utc = _arrow_type(kind)
            zoned = pc.match_substring_regex(array, r"(Z|[+-]\d{2}:?\d{2})$")
            none = pa.scalar(None, pa.string())
            aware = pc.if_else(zoned, array, none).cast(utc)
            naive = pc.if_else(zoned, none, array).cast(pa.timestamp("us")).cast(utc)
            return pc.coalesce(aware, naive)
        return array.cast(_arrow_type(kind))
    except pa.ArrowInvalid as exc:
        if by_schema:
            source, advice = "the report's schema", "typed=False reads every column as text"
        else:
            source, advice = f"types={{{name!r}: {kind!r}}}", "leave the column out of types="
        raise ColumnTypeError(
            f"column {name!r} is typed {kind} by {source} but holds a value that is not one "
            f"({exc}); {advice}",
            column=name,
            kind=kind,
            by_schema=by_schema,
        ) from None


def iter_batches(
    gateway: Gateway,
    run: ReportRun,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    types: Mapping[str, str] | None = None,
    typed: bool = True,
    timeout: float | None = None,
    stall_timeout: float | None = None,
) -> Iterator[Any]:
    """``pyarrow.RecordBatch`` after ``pyarrow.RecordBatch``, ``batch_rows`` rows each (the
    last one shorter), all of one schema; nothing for a result with no rows. The options
    are checked at the call, before any request; the rows are read as batches are taken."""
    require("pyarrow")
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    check_types(types)
    return _batches(gateway, run, batch_rows, types or {}, typed, timeout, stall_timeout)


def _batches(
    gateway: Gateway,
    run: ReportRun,
    batch_rows: int,
    types: Mapping[str, str],
    typed: bool,
    timeout: float | None,
    stall_timeout: float | None,
) -> Iterator[Any]:
    kinds = {**(result_columns(gateway, run) if typed else {}), **types}
    rows = gateway.rows(run, timeout=timeout, stall_timeout=stall_timeout)
    names: list[str] | None = None
    schema: Any = None
    batch: list[dict[str, str]] = []
    done = 0
    for row in rows:
        batch.append(row)
        if len(batch) < batch_rows:
            continue
        if names is None:
            names, schema = _columns(batch, kinds)
        yield _batch(batch, names, schema, kinds, set(types), done)
        done += len(batch)
        batch = []
    if batch:
        if names is None:
            names, schema = _columns(batch, kinds)
        yield _batch(batch, names, schema, kinds, set(types), done)


def _columns(batch: list[dict[str, str]], kinds: Mapping[str, str]) -> tuple[list[str], Any]:
    """The header's columns: the keys of the first batch's shortest row (a row with cells
    beyond the header has more keys, so the first row alone may name too many)."""
    pa = require("pyarrow")
    names = list(batch[min(range(len(batch)), key=lambda i: len(batch[i]))])
    return names, pa.schema([(n, _arrow_type(kinds.get(n, "string"))) for n in names])


def _batch(
    rows: list[dict[str, str]],
    names: list[str],
    schema: Any,
    kinds: Mapping[str, str],
    overridden: set[str],
    done: int,
) -> Any:
    pa = require("pyarrow")
    width = len(names)
    for position, row in enumerate(rows):
        if len(row) != width:
            extra = [key for key in row if key not in names]
            raise ResultFormatError(
                f"row {done + position + 1} has cells beyond the header ({', '.join(extra)}): "
                "a table needs one set of columns; read it with rows() instead"
            )
    arrays = []
    for name in names:
        # A list, not a tuple: pyarrow converts a tuple of strings some 50 times slower.
        array = pa.array([row[name] for row in rows], type=pa.string())
        kind = kinds.get(name, "string")
        by_schema = name not in overridden
        arrays.append(array if kind == "string" else _typed(array, kind, name, by_schema))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _empty_schema(gateway: Gateway, run: ReportRun, typed: bool, types: Mapping[str, str]) -> Any:
    """The schema of a result with no rows: the provider's typed columns, if it gives them."""
    pa = require("pyarrow")
    kinds = {**(result_columns(gateway, run) if typed else {}), **types}
    return pa.schema([(name, _arrow_type(kind)) for name, kind in kinds.items()])


def to_arrow(
    gateway: Gateway,
    run: ReportRun,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    types: Mapping[str, str] | None = None,
    typed: bool = True,
    timeout: float | None = None,
    stall_timeout: float | None = None,
) -> Any:
    """The whole result as one ``pyarrow.Table`` (its chunks are the record batches)."""
    pa = require("pyarrow")
    batches = list(
        iter_batches(
            gateway, run, batch_rows=batch_rows, types=types, typed=typed,
            timeout=timeout, stall_timeout=stall_timeout,
        )
    )  # fmt: skip
    if not batches:
        return _empty_schema(gateway, run, typed, types or {}).empty_table()
    return pa.Table.from_batches(batches)


def to_pandas(gateway: Gateway, run: ReportRun, **options: Any) -> Any:
    """The result as a ``pandas.DataFrame`` (through Arrow, so typed the same way)."""
    require("pandas")
    return to_arrow(gateway, run, **options).to_pandas()


def to_polars(gateway: Gateway, run: ReportRun, **options: Any) -> Any:
    """The result as a ``polars.DataFrame`` (through Arrow, so typed the same way)."""
    polars = require("polars")
    return polars.from_arrow(to_arrow(gateway, run, **options))


def output_path(run: ReportRun, path: str | os.PathLike[str], extension: str) -> Path:
    """``path``, or inside an existing folder the result's own name with ``extension``."""
    target = Path(path)
    if not target.is_dir():
        return target
    filename = run.result.filename if run.result is not None else None
    stem = (filename or run.id).rsplit(".", 1)[0] if filename else run.id
    name = safe_name(f"{stem}.{extension}", fallback=safe_name(f"{run.id}.{extension}"))
    return target / name


def to_parquet(
    gateway: Gateway,
    run: ReportRun,
    path: str | os.PathLike[str],
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    types: Mapping[str, str] | None = None,
    typed: bool = True,
    compression: str = "zstd",
    overwrite: bool = True,
    durable: bool = True,
    timeout: float | None = None,
    stall_timeout: float | None = None,
) -> Path:
    """Write the result to a Parquet file, one row group per batch, atomically as
    ``download`` does; return the path. The file's row count is checked against the rows
    streamed before it replaces the target; any failure leaves no file."""
    pq = require("pyarrow.parquet")
    from .atomic import atomic_file

    target = output_path(run, path, "parquet")
    batches = iter_batches(
        gateway, run, batch_rows=batch_rows, types=types, typed=typed,
        timeout=timeout, stall_timeout=stall_timeout,
    )  # fmt: skip
    with atomic_file(target, overwrite=overwrite, durable=durable) as out:
        first = next(batches, None)
        schema = (
            first.schema if first is not None else _empty_schema(gateway, run, typed, types or {})
        )
        written = 0
        with pq.ParquetWriter(out, schema, compression=compression) as writer:
            batch = first
            while batch is not None:
                writer.write_batch(batch)
                written += batch.num_rows
                batch = next(batches, None)
        out.flush()
        _verify_parquet(out.name, written, str(target))
    return target


def _verify_parquet(fd_or_path: Any, rows: int, target: str) -> None:
    """Read the footer back: a writer that lost a batch must not replace the target."""
    pq = require("pyarrow.parquet")
    path = f"/proc/self/fd/{fd_or_path}" if isinstance(fd_or_path, int) else fd_or_path
    if not os.path.exists(path):  # no /proc (not Linux): the writer's own count stands
        return
    found = pq.read_metadata(path).num_rows
    if found != rows:
        raise ResultFormatError(f"{target}: the Parquet file holds {found} rows, not {rows}")


def write_jsonl(
    gateway: Gateway,
    run: ReportRun,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    durable: bool = True,
    timeout: float | None = None,
    stall_timeout: float | None = None,
) -> Path:
    """Write the rows as JSON lines (one object per row, values as text), atomically; needs
    no extra. Memory holds one row."""
    from .atomic import atomic_file

    target = output_path(run, path, "jsonl")
    with atomic_file(target, overwrite=overwrite, durable=durable) as out:
        for row in gateway.rows(run, timeout=timeout, stall_timeout=stall_timeout):
            out.write(json.dumps(row, ensure_ascii=False).encode("utf-8"))
            out.write(b"\n")
    return target
