"""How results look: aligned tables for people, JSON documents for tools.

The JSON shapes are a contract for scripts (keys only grow). A result file's URL is left
out on purpose: for Stripe v2 it is a pre-signed URL, which works like a password until it
expires.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from report_gateway.models import ParameterSpec, ReportRun, ReportTemplate, ResultFile

__all__ = [
    "Output",
    "format_bytes",
    "format_seconds",
    "key_values",
    "run_json",
    "status_text",
    "table",
    "template_json",
]


def format_bytes(count: float | None) -> str:
    """``1.5 MB`` style, decimal units (what file managers and rate displays show)."""
    if count is None:
        return "?"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - loop always returns


def format_seconds(seconds: float) -> str:
    """``4.2s`` under a minute, ``3m05s`` under an hour, ``1h02m`` beyond."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return ",".join(_cell(v) for v in value)
    return str(value).replace("\n", " ")


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Sequence[int] = ()
) -> str:
    """Columns padded to their widest cell; ``right`` lists column indexes to right-align."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(widths[i]) if i in right else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(list(headers)), *(line(row) for row in cells)])


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    """A ``name  value`` block for one object (a run, a template)."""
    shown = [(k, _cell(v)) for k, v in pairs if v is not None and v != "" and v != {}]
    width = max((len(k) for k, _ in shown), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in shown)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def result_json(result: ResultFile | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "size": result.size,
        "content_type": result.content_type,
        "filename": result.filename,
        "expires_at": _iso(result.expires_at),
        "checksum": result.checksum,
    }


def run_json(run: ReportRun) -> dict[str, Any]:
    """A run as scripts see it (no result URL: see the module docstring)."""
    return {
        "provider": run.provider,
        "id": run.id,
        "report_id": run.report_id,
        "status": run.status.value,
        "raw_status": run.raw_status,
        "created_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at),
        "parameters": _jsonable(dict(run.parameters)),
        "scope": run.scope.fields(),
        "result": result_json(run.result),
        "error": run.error,
    }


def parameter_json(spec: ParameterSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "type": spec.type,
        "required": spec.required,
        "description": spec.description,
        "allowed_values": list(spec.allowed_values) if spec.allowed_values else None,
        "minimum": _jsonable(spec.minimum),
        "maximum": _jsonable(spec.maximum),
        "element_type": spec.element_type,
        "default": _jsonable(spec.default),
    }


def template_json(template: ReportTemplate) -> dict[str, Any]:
    return {
        "provider": template.provider,
        "id": template.id,
        "name": template.name,
        "description": template.description,
        "available_from": _iso(template.available_from),
        "available_until": _iso(template.available_until),
        "parameters": [parameter_json(p) for p in template.parameters.values()],
    }


def status_text(run: ReportRun) -> str:
    """``running (QUERYDATA)``: the provider's own word is kept beside the neutral status
    because it is the one the provider's dashboard and support use.
    """
    status = run.status.value
    if run.raw_status and run.raw_status.lower() != status:
        status = f"{status} ({run.raw_status})"
    return status


def run_block(run: ReportRun) -> str:
    """One run for people: what it is, where it stands, and what to do with it."""
    result = run.result
    result_text = None
    if result is not None:
        result_text = result.content_type
        if result.size is not None:
            result_text += f", {format_bytes(result.size)} ({result.size} bytes)"
        if result.expires_at is not None:
            result_text += f", link expires {_cell(result.expires_at)}"
    params = ", ".join(f"{k}={_cell(v)}" for k, v in run.parameters.items()) or None
    scope = ", ".join(f"{k}={v}" for k, v in run.scope.fields().items()) or None
    return key_values(
        [
            ("provider", run.provider),
            ("run id", run.id),
            ("report", run.report_id),
            ("status", status_text(run)),
            ("created", run.created_at),
            ("finished", run.finished_at),
            ("parameters", params),
            ("scope", scope),
            ("result", result_text),
            ("error", run.error),
        ]
    )


def _scrubbed(value: Any, scrub: Callable[[str], str]) -> Any:
    """JSON-ready data with every string (keys too) passed through ``scrub``."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k): _scrubbed(v, scrub) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, scrub) for v in value]
    return value


class Output:
    """Where a command's answer goes: stdout as text or JSON, nothing else on stdout.

    ``scrub`` (the CLI's: the secrets the gateway holds, and key-shaped strings) is applied
    to everything printed: a provider writes the names, ids and reasons shown, and one that
    echoes a key into a template name or a run id must not get it printed.
    """

    def __init__(
        self, stream: IO[str], *, as_json: bool, scrub: Callable[[str], str] | None = None
    ) -> None:
        self.stream = stream
        self.as_json = as_json
        self.scrub = scrub

    def emit(self, data: Any, human: str | None) -> None:
        """Print ``data`` as JSON in --json mode, else the ``human`` text (if any)."""
        if self.as_json:
            plain = _jsonable(data)
            if self.scrub is not None:
                plain = _scrubbed(plain, self.scrub)
            json.dump(plain, self.stream, indent=2, ensure_ascii=False)
            self.stream.write("\n")
        elif human:
            if self.scrub is not None:
                human = self.scrub(human)
            self.stream.write(human.rstrip("\n") + "\n")
        self.stream.flush()
