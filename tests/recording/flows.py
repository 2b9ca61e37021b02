"""The flows recorded per provider, written once and run three ways.

The recorder runs each flow against the sandbox (or the live services) inside a recording
cassette; tests/flows replays the same function against the cassette, and ``pytest --live``
runs it against the real services. A flow chooses its parameters only from what the
provider answered (never from today's date), so a replay sends byte-identical requests.
Polling is the gateway's own ``wait``; the caller injects its ``sleep`` (real while
recording, a no-op in replay, where the recorded statuses decide how many polls happen).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from report_gateway import Gateway, ReportRun, ReportTemplate, RunStatus

__all__ = [
    "FLOWS",
    "ZUORA_QUERY",
    "Flow",
    "FlowContext",
    "FlowResult",
    "count_csv",
]

STRIPE_REPORT = "balance.summary.1"
STRIPE_V2_REPORT = "report_balance_summary"
#: The Zuora report searched for; the sandbox serves it, a live tenant may name it otherwise.
ZUORA_QUERY = "Customer report"
#: The latest window end used when a provider announces none (a fixed day: replays must
#: send what was recorded).
FALLBACK_END = datetime(2025, 2, 1, tzinfo=UTC)
WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class FlowContext:
    """How a flow waits and where it writes. ``zuora_query`` may differ in live runs."""

    out_dir: Path
    sleep: Callable[[float], None]
    poll_interval: float = 0.25
    timeout: float = 600.0
    zuora_query: str = ZUORA_QUERY


@dataclass
class FlowResult:
    """What a user of the flow sees: the run, the file and its rows."""

    provider: str
    flow: str
    run: ReportRun
    file: Path | None = None
    bytes: int = 0
    header: list[str] = field(default_factory=list)
    rows: int = 0
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Flow:
    provider: str
    name: str
    description: str
    run: Callable[[Gateway, FlowContext], FlowResult]

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.name}"


def count_csv(path: Path) -> tuple[list[str], int]:
    """The header and the number of data rows of a UTF-8 CSV file."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        return header, sum(1 for _ in reader)


def _wait(gw: Gateway, run: ReportRun, ctx: FlowContext) -> ReportRun:
    return gw.wait(
        run,
        timeout=ctx.timeout,
        poll_interval=ctx.poll_interval,
        max_interval=ctx.poll_interval * 4,
        sleep=ctx.sleep,
    )


def _download(gw: Gateway, run: ReportRun, ctx: FlowContext, name: str) -> tuple[Path, int]:
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    path = gw.download(run, ctx.out_dir / name, unzip=True, durable=False)
    return path, path.stat().st_size


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return _as_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _window(first: Any, last: Any) -> tuple[datetime, datetime]:
    """A week ending at the provider's last whole day of data (fixed when it names none)."""
    end = _as_datetime(last) or FALLBACK_END
    end = end.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - WINDOW
    begin = _as_datetime(first)
    if begin is not None and start < begin:
        start = begin
    return start, end


# -- stripe (Reporting v1) ---------------------------------------------------------------------


def stripe_balance_summary(gw: Gateway, ctx: FlowContext) -> FlowResult:
    """templates, start balance.summary.1, wait, download, rows, runs."""
    templates = gw.templates("stripe")
    assert STRIPE_REPORT in {t.id for t in templates}, "balance.summary.1 is not offered"
    template = gw.template("stripe", STRIPE_REPORT)
    start, end = _window(template.available_from, template.available_until)
    run = gw.start(
        "stripe",
        STRIPE_REPORT,
        {"interval_start": int(start.timestamp()), "interval_end": int(end.timestamp())},
    )
    done = _wait(gw, run, ctx)
    path, size = _download(gw, done, ctx, "stripe-balance-summary.csv")
    header, count = count_csv(path)
    rows = list(gw.rows(done))
    recent = [r.id for r in gw.runs("stripe", limit=5)]
    return FlowResult(
        "stripe",
        "balance-summary",
        done,
        file=path,
        bytes=size,
        header=header,
        rows=count,
        notes={
            "templates": len(templates),
            "streamed_rows": len(rows),
            "streamed_header": list(rows[0]) if rows else [],
            "listed": done.id in recent,
            "announced_size": done.result.size if done.result else None,
        },
    )


# -- stripe-v2 (Reports v2) --------------------------------------------------------------------


def _v2_bounds(template: ReportTemplate) -> tuple[Any, Any]:
    spec = template.parameters.get("interval_start")
    if spec is None:
        return template.available_from, template.available_until
    return spec.minimum, spec.maximum


def stripe_v2_balance_summary(gw: Gateway, ctx: FlowContext) -> FlowResult:
    """template, start, wait, download through the pre-signed URL."""
    template = gw.template("stripe-v2", STRIPE_V2_REPORT)
    start, end = _window(*_v2_bounds(template))
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    run = gw.start(
        "stripe-v2",
        STRIPE_V2_REPORT,
        {"interval_start": start.strftime(stamp), "interval_end": end.strftime(stamp)},
    )
    done = _wait(gw, run, ctx)
    path, size = _download(gw, done, ctx, "stripe-v2-balance-summary.csv")
    header, count = count_csv(path)
    return FlowResult(
        "stripe-v2",
        "balance-summary",
        done,
        file=path,
        bytes=size,
        header=header,
        rows=count,
        notes={"announced_size": done.result.size if done.result else None},
    )


# -- zuora -------------------------------------------------------------------------------------


def _zuora_report(gw: Gateway, ctx: FlowContext) -> tuple[ReportTemplate, dict[str, Any]]:
    found = gw.search("zuora", ctx.zuora_query)
    assert found, f"zuora search for {ctx.zuora_query!r} found nothing"
    exact = [t for t in found if t.name == ctx.zuora_query]
    template = (exact or found)[0]
    spec = template.parameters.get("viewType")
    view = None
    if spec is not None:
        view = spec.default or (spec.allowed_values[0] if spec.allowed_values else None)
    view = view or str((template.raw or {}).get("reportType") or "Summary")
    return template, {"viewType": str(view)}


def zuora_export(gw: Gateway, ctx: FlowContext) -> FlowResult:
    """search, start, wait, export download, last completed."""
    template, parameters = _zuora_report(gw, ctx)
    run = gw.start("zuora", template.id, parameters)
    done = _wait(gw, run, ctx)
    path, size = _download(gw, done, ctx, "zuora-export.csv")
    header, count = count_csv(path)
    latest = gw.last_completed("zuora", template.id)
    return FlowResult(
        "zuora",
        "export",
        done,
        file=path,
        bytes=size,
        header=header,
        rows=count,
        notes={"report": template.name, "last_completed": latest.id},
    )


def zuora_cancel(gw: Gateway, ctx: FlowContext) -> FlowResult:
    """search, start, cancel at once: the run ends CANCELLED."""
    template, parameters = _zuora_report(gw, ctx)
    run = gw.start("zuora", template.id, parameters)
    canceled = gw.cancel(run)
    return FlowResult(
        "zuora",
        "cancel",
        canceled,
        notes={"report": template.name, "started_status": run.status},
    )


FLOWS: tuple[Flow, ...] = (
    Flow("stripe", "balance-summary", stripe_balance_summary.__doc__ or "", stripe_balance_summary),
    Flow(
        "stripe-v2",
        "balance-summary",
        stripe_v2_balance_summary.__doc__ or "",
        stripe_v2_balance_summary,
    ),
    Flow("zuora", "export", zuora_export.__doc__ or "", zuora_export),
    Flow("zuora", "cancel", zuora_cancel.__doc__ or "", zuora_cancel),
)

#: The status each flow ends in.
EXPECTED_STATUS = {
    "stripe/balance-summary": RunStatus.SUCCEEDED,
    "stripe-v2/balance-summary": RunStatus.SUCCEEDED,
    "zuora/export": RunStatus.SUCCEEDED,
    "zuora/cancel": RunStatus.CANCELED,
}
