"""The toy provider's driver: an in-memory "API" that behaves like a slow report service.

Runs move ``queued -> working -> done`` as they are polled (``polls`` setting, default 2),
the ``broken`` report fails with a reason, results are CSV bytes served from memory with
Range support. It is written on ``BaseDriver`` and implements every operation (cancel, runs,
last completed), so it doubles as a template for a real plugin.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
from report_gateway.provider import (
    BaseDriver,
    NotSupportedError,
    ParameterSpec,
    ProviderContext,
    ReportRun,
    ReportTemplate,
    ResultFile,
    RunNotFoundError,
    RunStatus,
    Scope,
    StartReporter,
    UnknownReportError,
    no_progress,
)

from .plugin import ExampleSettings

_CURRENCIES = ("usd", "eur")

TEMPLATES = {
    "daily_sales": ReportTemplate(
        provider="example",
        id="daily_sales",
        name="Daily sales",
        description="One row per sale on a given day",
        parameters={
            "day": ParameterSpec(name="day", type="date", required=True),
            "currency": ParameterSpec(name="currency", allowed_values=_CURRENCIES, default="usd"),
        },
    ),
    "customers": ReportTemplate(
        provider="example", id="customers", name="Customer list", description="All customers"
    ),
    "broken": ReportTemplate(
        provider="example", id="broken", name="Broken report", description="Always fails"
    ),
}


class MemoryResponse:
    """A streaming-response look-alike over bytes in memory (what ``open_result`` returns)."""

    def __init__(self, data: bytes, *, offset: int = 0) -> None:
        total = len(data)
        self._data = data[offset:]
        self.status = 206 if offset else 200
        self.headers: dict[str, str] = {
            "content-type": "text/csv",
            "accept-ranges": "bytes",
            "content-length": str(len(self._data)),
        }
        if offset:
            self.headers["content-range"] = f"bytes {offset}-{total - 1}/{total}"
        self.content_length: int | None = len(self._data)
        self.closed = False

    def iter_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        for start in range(0, len(self._data), chunk_size):
            yield self._data[start : start + chunk_size]

    def read(self) -> bytes:
        return self._data

    def close(self) -> None:
        self.closed = True


@attrs.define
class _Run:
    id: str
    report_id: str
    parameters: dict[str, Any]
    scope: Scope
    created_at: dt.datetime
    polls: int = 0
    canceled: bool = False


class ToyDriver(BaseDriver):
    """One in-memory "account" per driver; thread-safe."""

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        self.polls_needed = context.settings_as(ExampleSettings).polls
        self._runs: dict[str, _Run] = {}
        self._keys: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # Templates ---------------------------------------------------------------------------

    def templates(self, *, scope: Scope) -> Sequence[ReportTemplate]:
        self.scope_headers(scope)  # a scope the spec refuses fails here, as a request would
        return list(TEMPLATES.values())

    def template(self, report_id: str, *, scope: Scope) -> ReportTemplate:
        self.scope_headers(scope)
        try:
            return TEMPLATES[report_id]
        except KeyError:
            raise UnknownReportError("example", report_id, f"known: {sorted(TEMPLATES)}") from None

    # search (by name, over templates) comes from BaseDriver.

    # Runs --------------------------------------------------------------------------------

    def start(
        self,
        report_id: str,
        parameters: Mapping[str, Any],
        *,
        scope: Scope,
        idempotency_key: str,
        progress: StartReporter = no_progress,
    ) -> ReportRun:
        self.scope_headers(scope)
        with self._lock:
            existing = self._keys.get(idempotency_key)
            if existing is not None:
                return self._snapshot(self._runs[existing])
            run = _Run(
                id=f"exrun_{next(self._ids)}",
                report_id=report_id,
                parameters=dict(parameters),
                scope=self.resolve_scope(scope),
                created_at=dt.datetime.now(dt.UTC),
            )
            self._runs[run.id] = run
            self._keys[idempotency_key] = run.id
            return self._snapshot(run)

    def get(self, run_id: str, *, scope: Scope) -> ReportRun:
        with self._lock:
            run = self._find(run_id, scope)
            run.polls += 1
            return self._snapshot(run)

    def cancel(self, run: ReportRun) -> ReportRun:
        with self._lock:
            state = self._find(run.id, run.scope)
            if self._raw_status(state) in ("done", "error"):
                raise NotSupportedError("example", "cancel", "the run has already finished")
            state.canceled = True
            return self._snapshot(state)

    def runs(self, *, limit: int | None, scope: Scope) -> Iterator[ReportRun]:
        where = self.resolve_scope(scope)
        with self._lock:
            newest_first = [r for r in reversed(self._runs.values()) if r.scope == where]
            snapshots = [self._snapshot(r) for r in newest_first[:limit]]
        yield from snapshots

    def last_completed(self, report_id: str, *, scope: Scope) -> ReportRun:
        self.template(report_id, scope=scope)
        for run in self.runs(limit=None, scope=scope):
            if run.report_id == report_id and run.status is RunStatus.SUCCEEDED:
                return run
        raise RunNotFoundError(f"example: no completed run of {report_id!r}")

    def open_result(self, run: ReportRun, *, offset: int = 0) -> MemoryResponse:
        with self._lock:
            state = self._find(run.id, run.scope)
        return MemoryResponse(self._csv(state), offset=offset)

    # Internals ---------------------------------------------------------------------------

    def _find(self, run_id: str, scope: Scope) -> _Run:
        run = self._runs.get(run_id)
        if run is None or run.scope != self.resolve_scope(scope):
            raise RunNotFoundError(f"example: no run {run_id!r}")
        return run

    def _raw_status(self, run: _Run) -> str:
        if run.canceled:
            return "stopped"
        if run.polls == 0:
            return "queued"
        if run.polls < self.polls_needed:
            return "working"
        return "error" if run.report_id == "broken" else "done"

    def _csv(self, run: _Run) -> bytes:
        if run.report_id == "customers":
            lines = ["id,name", "cus_1,Ada", "cus_2,Grace"]
        else:
            currency = run.parameters.get("currency", "usd")
            day = run.parameters.get("day", "")
            lines = ["sale_id,day,amount,currency"]
            lines += [f"sale_{i},{day},{i * 100},{currency}" for i in range(1, 4)]
        return ("\n".join(lines) + "\n").encode()

    def _snapshot(self, run: _Run) -> ReportRun:
        raw = self._raw_status(run)
        snapshot = self.make_run(
            id=run.id,
            report_id=run.report_id,
            raw_status=raw,
            created_at=run.created_at,
            parameters=run.parameters,
            scope=run.scope,
            error="toy failure: the broken report always fails" if raw == "error" else None,
            raw={"id": run.id, "status": raw, "polls": run.polls},
        )
        if not snapshot.status.is_terminal:
            return snapshot
        result = None
        if snapshot.status is RunStatus.SUCCEEDED:
            data = self._csv(run)
            result = ResultFile(
                url=f"memory://example/{run.id}.csv",
                size=len(data),
                filename=f"{run.id}.csv",
                needs_auth=True,
            )
        return attrs.evolve(snapshot, finished_at=run.created_at, result=result)
