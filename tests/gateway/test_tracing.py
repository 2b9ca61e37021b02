"""report-gateway[otel]: spans for start, each poll, wait and download, recorded by an
in-memory exporter; no key and no pre-signed URL in any of them, nor in what urllib3's
auto-instrumentation records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from report_gateway import Gateway, RunStatus, tracing
from report_gateway_sandbox import Sandbox, SandboxConfig

KEY = "sk_test_sandbox_4eC39HqLyjWDarjtT1zdp7dc"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(run_seconds=0.3, result_rows=30)) as sb:
        yield sb


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.instrument(tracer_provider=provider)
    URLLib3Instrumentor().instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        URLLib3Instrumentor().uninstrument()
        tracing.uninstrument()


def _gateway(sandbox: Sandbox, provider: str) -> Gateway:
    settings = {"api_key": KEY, "base_url": sandbox.url}
    if provider == "stripe":
        settings["files_base_url"] = sandbox.url
    return Gateway({provider: settings}, journal=None, environ={})


def _text(span: ReadableSpan) -> str:
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    return f"{span.name} {dict(span.attributes or {})} {events}"


def _v2_run(gw: Gateway, tmp_path: Path) -> Path:
    run = gw.start(
        "stripe-v2",
        "report_balance_summary",
        {"interval_start": "2025-01-01T00:00:00Z", "interval_end": "2025-02-01T00:00:00Z"},
    )
    done = gw.wait(run, poll_interval=0.1, max_interval=0.2)
    assert done.status is RunStatus.SUCCEEDED
    return gw.download(done, tmp_path / "out.csv")


def test_spans_for_start_each_poll_wait_and_download(
    sandbox: Sandbox, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    with _gateway(sandbox, "stripe-v2") as gw:
        saved = _v2_run(gw, tmp_path)
    spans = exporter.get_finished_spans()
    ours = [s for s in spans if s.name.startswith("report_gateway.")]
    names = [s.name for s in ours]
    assert names[0] == "report_gateway.start"
    assert names.count("report_gateway.poll") >= 1
    assert names[-2:] == ["report_gateway.wait", "report_gateway.download"]
    by_name = {s.name: s for s in ours}
    start, wait, download = (by_name[f"report_gateway.{n}"] for n in ("start", "wait", "download"))
    run_id = start.attributes[tracing.RUN_ID]
    assert start.attributes[tracing.PROVIDER] == "stripe-v2"
    assert start.attributes[tracing.REPORT] == "report_balance_summary"
    assert wait.attributes[tracing.RUN_ID] == run_id
    assert wait.attributes[tracing.STATUS] == "succeeded"
    assert download.attributes[tracing.BYTES] == saved.stat().st_size
    for poll in (s for s in ours if s.name == "report_gateway.poll"):
        assert poll.parent is not None
        assert poll.parent.span_id == wait.context.span_id
        assert poll.attributes[tracing.RUN_ID] == run_id
    # run_changed: the status changes are events on the start and wait spans
    changes = [e for s in (start, wait) for e in s.events if e.name.endswith("run_changed")]
    assert changes[-1].attributes[tracing.STATUS] == "succeeded"


def test_no_span_holds_the_key_or_the_presigned_query(
    sandbox: Sandbox, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    with _gateway(sandbox, "stripe-v2") as gw:
        _v2_run(gw, tmp_path)
    spans = exporter.get_finished_spans()
    http = [s for s in spans if not s.name.startswith("report_gateway.")]
    # urllib3's instrumentation is on: the API calls are recorded with their URLs...
    urls = [str(s.attributes.get("url.full") or s.attributes.get("http.url")) for s in http]
    assert any("/v2/reporting/report_runs" in url for url in urls), urls
    # ...but the pre-signed download is not, and nothing anywhere carries its signature.
    for span in spans:
        text = _text(span)
        assert "signature" not in text, text
        assert KEY not in text


def test_v1_download_keeps_its_http_span(
    sandbox: Sandbox, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    """Suppression is for URLs that are credentials only: Stripe v1's file download is
    authorised by a header, so its HTTP span stays (with no key in it)."""
    with _gateway(sandbox, "stripe") as gw:
        run = gw.start(
            "stripe",
            "balance.summary.1",
            {"interval_start": "2025-01-01", "interval_end": "2025-02-01"},
        )
        gw.download(gw.wait(run, poll_interval=0.1, max_interval=0.2), tmp_path / "v1.csv")
    spans = exporter.get_finished_spans()
    urls = [str(s.attributes.get("url.full") or s.attributes.get("http.url")) for s in spans]
    assert any("/contents" in url for url in urls), urls
    assert all(KEY not in _text(s) for s in spans)


def test_the_runtime_suppresses_only_urls_that_are_credentials() -> None:
    from reporting_runtime.instrumentation import carries_credential

    assert carries_credential("https://files.example/r.csv?expires=1&signature=abc")
    assert carries_credential("https://s3.example/r.csv?X-Amz-Signature=abc&X-Amz-Date=1")
    assert not carries_credential("https://api.stripe.com/v1/reporting/report_runs?limit=10")


def test_without_instrument_the_plugin_is_quiet(sandbox: Sandbox, tmp_path: Path) -> None:
    """Installed but not instrumented: runs work and the hook records nothing."""
    with _gateway(sandbox, "stripe-v2") as gw:
        assert "otel" in [info.name for info in gw.plugins()]
        assert _v2_run(gw, tmp_path).stat().st_size > 0


def test_async_wait_has_a_wait_span_with_a_poll_span_per_poll(
    sandbox: Sandbox, exporter: InMemorySpanExporter
) -> None:
    import asyncio

    from report_gateway.aio import AsyncGateway

    async def scenario(gw: Gateway) -> None:
        async with AsyncGateway(gw) as agw:
            run = await agw.start(
                "stripe-v2",
                "report_balance_summary",
                {"interval_start": "2025-01-01T00:00:00Z", "interval_end": "2025-02-01T00:00:00Z"},
            )
            done = await agw.wait(run, poll_interval=0.1, max_interval=0.2)
            assert done.status is RunStatus.SUCCEEDED

    with _gateway(sandbox, "stripe-v2") as gw:
        asyncio.run(scenario(gw))
    ours = [s for s in exporter.get_finished_spans() if s.name.startswith("report_gateway.")]
    waits = [s for s in ours if s.name == "report_gateway.wait"]
    assert len(waits) == 1
    wait = waits[0]
    run_id = next(s for s in ours if s.name == "report_gateway.start").attributes[tracing.RUN_ID]
    assert wait.attributes[tracing.RUN_ID] == run_id
    assert wait.attributes[tracing.STATUS] == "succeeded"
    polls = [s for s in ours if s.name == "report_gateway.poll"]
    assert polls
    for poll in polls:
        assert poll.parent is not None
        assert poll.parent.span_id == wait.context.span_id
        assert poll.attributes[tracing.RUN_ID] == run_id
        assert poll.attributes[tracing.PROVIDER] == "stripe-v2"
    assert polls[-1].attributes[tracing.STATUS] == "succeeded"
    # the status changes are events on the wait span, as with Gateway.wait
    changes = [e for e in wait.events if e.name.endswith("run_changed")]
    assert changes[-1].attributes[tracing.STATUS] == "succeeded"


def test_instrument_without_the_extra_names_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from report_gateway.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    with pytest.raises(MissingExtraError, match=r'pip install "report-gateway\[otel\]"'):
        tracing.instrument()


@pytest.mark.parametrize("query", ["e=1&s=abcdef", "hash=abcdef&exp=1"])
def test_a_url_marked_as_the_credential_is_never_recorded(
    sandbox: Sandbox, exporter: InMemorySpanExporter, query: str
) -> None:
    """Query keys that look harmless: the rule is the sender's mark, not the keys' names."""
    from reporting_runtime import Transport
    from reporting_runtime.messages import Request

    url = f"{sandbox.url}/_files/elsewhere/r.csv?{query}"
    with Transport() as transport:
        transport.send(Request(method="GET", url=url, url_is_credential=True)).close()
        assert not [s for s in exporter.get_finished_spans() if "abcdef" in _text(s)]
        # unmarked, the same URL is recorded: the mark is what keeps it out
        transport.send(Request(method="GET", url=url)).close()
    assert [s for s in exporter.get_finished_spans() if "abcdef" in _text(s)]


def test_stripe_v2_marks_its_presigned_download_as_the_credential(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reporting_runtime import Transport

    sent = []
    send = Transport.send

    def spy(self: Transport, request: Any, **kwargs: Any) -> Any:
        sent.append(request)
        return send(self, request, **kwargs)

    monkeypatch.setattr(Transport, "send", spy)
    with _gateway(sandbox, "stripe-v2") as gw:
        _v2_run(gw, tmp_path)
    downloads = [r for r in sent if r.operation == "download_presigned_url"]
    assert downloads
    assert all(r.url_is_credential for r in downloads)
    assert not any(r.url_is_credential for r in sent if r not in downloads)
