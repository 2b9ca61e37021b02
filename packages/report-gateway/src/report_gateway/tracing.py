"""OpenTelemetry spans for runs (``pip install "report-gateway[otel]"``).

``instrument()`` (or ``GatewayInstrumentor().instrument(tracer_provider=...)``) wraps every
Gateway's ``start``, ``wait`` (a child span per poll), ``download``, ``rows`` and ``cancel``
in a span, and ``AsyncGateway.wait`` the same way (its other coroutines call the Gateway's
methods in threads that carry the caller's context, so they are traced as those are); this
module is also a plugin (entry point ``otel``) whose ``run_changed`` hook adds an event to
the current span for each status change. Without the extra installed, the plugin does
nothing and ``instrument`` raises ``MissingExtraError`` naming the
``pip install`` line.

What a span carries is chosen here, never taken from a request: the provider, the report,
the run id, the status, the bytes written. No key, no header, no URL: a result URL can be
pre-signed (its query is the credential). For the same reason the runtime sends a pre-signed
download with HTTP auto-instrumentation suppressed (``reporting_runtime.instrumentation``),
so urllib3's instrumentor records no ``url.full`` with a signature in it.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hookspecs import hookimpl

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from .models import ReportRun

__all__ = ["GatewayInstrumentor", "instrument", "report_gateway_run_changed", "uninstrument"]

TRACER_NAME = "report_gateway"
PROVIDER = "report_gateway.provider"
REPORT = "report_gateway.report"
RUN_ID = "report_gateway.run_id"
STATUS = "report_gateway.status"
RAW_STATUS = "report_gateway.raw_status"
BYTES = "report_gateway.bytes"
POLLS = "report_gateway.polls"


def _run_attributes(run: ReportRun) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        PROVIDER: run.provider,
        REPORT: run.report_id,
        RUN_ID: run.id,
        STATUS: run.status.value,
        RAW_STATUS: run.raw_status,
    }
    if run.result is not None and run.result.size is not None:
        attributes[BYTES] = run.result.size
    return attributes


@hookimpl
def report_gateway_run_changed(run: ReportRun, previous: ReportRun | None) -> None:
    """An event on the current span (the start or wait around it) per status change."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:  # nobody traces in this process
        return
    span = trace.get_current_span()
    if span.is_recording():
        attributes = _run_attributes(run)
        if previous is not None:
            attributes["report_gateway.previous_status"] = previous.status.value
        span.add_event("report_gateway.run_changed", attributes)


class GatewayInstrumentor:
    """Wraps the Gateway's run methods in spans, for every Gateway, until ``uninstrument``.

    Patches the class (as OpenTelemetry's library instrumentors do), so Gateways made by
    the CLI or by a job runner are traced without passing anything to them.
    """

    _originals: dict[tuple[type, str], Any] = {}

    def instrument(self, tracer_provider: TracerProvider | None = None) -> None:
        from .aio import AsyncGateway
        from .events import RunEvents
        from .gateway import Gateway
        from .tabular import require

        trace = require("opentelemetry.trace")  # MissingExtraError: names the pip line
        if self._originals:
            return
        tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        wrappers: dict[tuple[type, str], Callable[[Any, Tracer], Any]] = {
            (Gateway, "start"): _traced_start,
            (Gateway, "wait"): _traced_wait,
            (Gateway, "download"): _traced_download,
            (Gateway, "rows"): _traced_rows,
            (Gateway, "cancel"): _traced_cancel,
            (RunEvents, "watch"): _traced_watch,
            (AsyncGateway, "wait"): _traced_async_wait,
            (AsyncGateway, "_fetch"): _traced_fetch,
        }
        for (cls, name), wrap in wrappers.items():
            original = cls.__dict__[name]
            type(self)._originals[(cls, name)] = original
            setattr(cls, name, functools.wraps(original)(wrap(original, tracer)))

    def uninstrument(self) -> None:
        for (cls, name), original in type(self)._originals.items():
            setattr(cls, name, original)
        type(self)._originals.clear()


def instrument(tracer_provider: TracerProvider | None = None) -> None:
    """Trace every Gateway's runs (``GatewayInstrumentor().instrument``)."""
    GatewayInstrumentor().instrument(tracer_provider)


def uninstrument() -> None:
    GatewayInstrumentor().uninstrument()


def _failed(span: Span, error: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    # The type only: a provider's message may quote what the user sent.
    span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.set_attribute("error.type", type(error).__name__)


@contextlib.contextmanager
def _span(tracer: Tracer, name: str, attributes: dict[str, Any]) -> Iterator[Span]:
    """The current span of one call: a failure marks it by its type (``_failed``)."""
    with tracer.start_as_current_span(name, attributes=attributes, record_exception=False) as span:
        try:
            yield span
        except BaseException as error:
            _failed(span, error)
            raise


def _traced_start(original: Any, tracer: Tracer) -> Any:
    def start(self: Any, provider: str, report_id: str, *args: Any, **kwargs: Any) -> Any:
        attributes = {PROVIDER: provider, REPORT: report_id}
        with _span(tracer, "report_gateway.start", attributes) as span:
            run = original(self, provider, report_id, *args, **kwargs)
            span.set_attributes(_run_attributes(run))
            return run

    return start


def _traced_wait(original: Any, tracer: Tracer) -> Any:
    def wait(self: Any, run: ReportRun, *args: Any, **kwargs: Any) -> Any:
        with _span(tracer, "report_gateway.wait", _run_attributes(run)) as span:
            done = original(self, run, *args, **kwargs)
            span.set_attributes(_run_attributes(done))
            return done

    return wait


def _traced_async_wait(original: Any, tracer: Tracer) -> Any:
    async def wait(self: Any, run: ReportRun, *args: Any, **kwargs: Any) -> Any:
        with _span(tracer, "report_gateway.wait", _run_attributes(run)) as span:
            done = await original(self, run, *args, **kwargs)
            span.set_attributes(_run_attributes(done))
            return done

    return wait


def _traced_fetch(original: Any, tracer: Tracer) -> Any:
    """``AsyncGateway``'s poll request (in a call thread carrying the wait's context)."""

    def fetch(self: Any, previous: ReportRun) -> Any:
        return _poll_span(tracer, previous, lambda: original(self, previous))

    return fetch


def _poll_span(tracer: Tracer, run: ReportRun, poll: Callable[[], ReportRun]) -> ReportRun:
    with _span(tracer, "report_gateway.poll", _run_attributes(run)) as span:
        snapshot = poll()
        span.set_attributes(_run_attributes(snapshot))
        return snapshot


def _traced_watch(original: Any, tracer: Tracer) -> Any:
    def watch(
        self: Any, run: ReportRun, poll: Callable[[], ReportRun], *args: Any, **kwargs: Any
    ) -> Any:
        def traced_poll() -> ReportRun:
            return _poll_span(tracer, run, poll)

        return original(self, run, traced_poll, *args, **kwargs)

    return watch


def _traced_download(original: Any, tracer: Tracer) -> Any:
    def download(self: Any, run: ReportRun, *args: Any, **kwargs: Any) -> Any:
        with _span(tracer, "report_gateway.download", _run_attributes(run)) as span:
            saved: Path = original(self, run, *args, **kwargs)
            span.set_attribute(BYTES, saved.stat().st_size)
            return saved

    return download


def _traced_rows(original: Any, tracer: Tracer) -> Any:
    def rows(self: Any, run: ReportRun, *args: Any, **kwargs: Any) -> Iterator[dict[str, str]]:
        span = tracer.start_span(
            "report_gateway.rows", attributes=_run_attributes(run), record_exception=False
        )
        try:  # eager, as the method is: a run without a result fails at the call
            iterator = original(self, run, *args, **kwargs)
        except BaseException as error:
            _failed(span, error)
            span.end()
            raise
        return _counted(iterator, span)

    return rows


def _counted(iterator: Iterator[dict[str, str]], span: Span) -> Iterator[dict[str, str]]:
    count = 0
    try:
        for row in iterator:
            count += 1
            yield row
    except BaseException as error:
        _failed(span, error)
        raise
    finally:
        span.set_attribute("report_gateway.rows", count)
        span.end()


def _traced_cancel(original: Any, tracer: Tracer) -> Any:
    def cancel(self: Any, run: ReportRun) -> Any:
        with _span(tracer, "report_gateway.cancel", _run_attributes(run)) as span:
            canceled = original(self, run)
            span.set_attributes(_run_attributes(canceled))
            return canceled

    return cancel
