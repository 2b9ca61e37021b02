"""Every Gateway method, against the example plugin's toy provider and small fake drivers."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from report_gateway import (
    DownloadError,
    Gateway,
    NotSupportedError,
    ParameterError,
    ProviderError,
    ProviderSpec,
    ReportRun,
    ReportTemplate,
    RunCanceledError,
    RunFailedError,
    RunNotFoundError,
    RunStatus,
    Scope,
    ScopeError,
    StartProgress,
    UnknownProviderError,
    UnknownReportError,
    WaitTimeoutError,
    hookimpl,
)
from report_gateway.provider import (
    ProviderContext,
    StartReporter,
    UnknownStatusWarning,
    no_progress,
)

MakeGateway = Callable[..., Gateway]


def no_sleep(seconds: float) -> None:
    pass


def finished(gw: Gateway, report: str = "daily_sales", **params: Any) -> ReportRun:
    params = params or ({"day": "2025-01-31"} if report == "daily_sales" else {})
    return gw.wait(gw.start("example", report, params), sleep=no_sleep)


def test_providers(make_gateway: MakeGateway) -> None:
    assert make_gateway().providers() == ["example"]


def test_unknown_provider_lists_available(make_gateway: MakeGateway) -> None:
    with pytest.raises(UnknownProviderError, match="available providers: example") as info:
        make_gateway().templates("strpie")
    assert info.value.available == ("example",)


def test_templates_template_and_search(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    assert [t.id for t in gw.templates("example")] == ["daily_sales", "customers", "broken"]
    template = gw.template("example", "daily_sales")
    assert isinstance(template, ReportTemplate)
    assert template.parameters["currency"].allowed_values == ("usd", "eur")
    assert [t.id for t in gw.search("example", "SALES")] == ["daily_sales"]
    assert gw.search("example", "nothing like it") == []


def test_unknown_report(make_gateway: MakeGateway) -> None:
    with pytest.raises(UnknownReportError, match="unknown report 'nope'"):
        make_gateway().template("example", "nope")


def test_start_validates_before_creating(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    with pytest.raises(ParameterError) as info:
        gw.start("example", "daily_sales", {"day": "2025-01-31", "currency": "gbp"})
    assert info.value.parameter == "currency"
    assert "usd, eur" in str(info.value)
    with pytest.raises(ParameterError, match="'day': is required"):
        gw.start("example", "daily_sales", {})
    assert list(gw.runs("example")) == []


def test_validate_normalizes(make_gateway: MakeGateway) -> None:
    params = make_gateway().validate("example", "daily_sales", {"day": "2025-01-31"})
    assert params == {"day": "2025-01-31", "currency": "usd"}


def test_start_get_wait_download_rows(
    make_gateway: MakeGateway, example_plugin: ModuleType, tmp_path: Path
) -> None:
    gw = make_gateway()
    run = gw.start("example", "daily_sales", {"day": "2025-01-31", "currency": "eur"})
    assert run.status is RunStatus.PENDING
    assert run.raw_status == "queued"
    assert gw.get("example", run.id).status is RunStatus.RUNNING

    progress: list[RunStatus] = []
    done = gw.wait(run, on_progress=lambda r, elapsed: progress.append(r.status), sleep=no_sleep)
    assert done.status is RunStatus.SUCCEEDED
    assert progress[-1] is RunStatus.SUCCEEDED
    assert [
        (run.id, None, RunStatus.PENDING),
        (run.id, RunStatus.PENDING, RunStatus.SUCCEEDED),
    ] == example_plugin.CHANGES

    path = gw.download(done, tmp_path / "sales.csv")
    assert path.read_text().splitlines()[1] == "sale_1,2025-01-31,100,eur"
    rows = list(gw.rows(done))
    assert rows[0] == {"sale_id": "sale_1", "day": "2025-01-31", "amount": "100", "currency": "eur"}
    assert len(rows) == 3


def test_wait_resumes_from_a_run_id(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    run_id = gw.start("example", "customers").id
    resumed = gw.wait(gw.get("example", run_id), sleep=no_sleep)
    assert resumed.id == run_id
    assert resumed.status is RunStatus.SUCCEEDED


def test_wait_timeout(make_gateway: MakeGateway) -> None:
    gw = make_gateway({"example": {"token": "t", "polls": 1000}})
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    run = gw.start("example", "customers")
    with pytest.raises(WaitTimeoutError, match=f"report-gateway wait example {run.id}"):
        gw.wait(run, timeout=5, clock=lambda: now[0], sleep=sleep)
    assert now[0] == pytest.approx(5.0)


def test_failed_run_raises_with_reason(make_gateway: MakeGateway) -> None:
    with pytest.raises(RunFailedError, match="toy failure") as info:
        finished(make_gateway(), "broken")
    assert info.value.run.raw_status == "error"


def test_cancel(make_gateway: MakeGateway, example_plugin: ModuleType) -> None:
    gw = make_gateway()
    run = gw.start("example", "customers")
    canceled = gw.cancel(run)
    assert canceled.status is RunStatus.CANCELED
    assert example_plugin.CHANGES[-1] == (run.id, RunStatus.PENDING, RunStatus.CANCELED)
    with pytest.raises(RunCanceledError):
        gw.wait(canceled, sleep=no_sleep)
    with pytest.raises(DownloadError, match="no result"):
        gw.download(canceled, "never.csv")


def test_cancel_not_supported_is_clear(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    with pytest.raises(NotSupportedError, match="cancel"):
        gw.cancel(finished(gw, "customers"))


def test_runs_and_last_completed(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    first = finished(gw, "customers")
    second = finished(gw, "customers")
    gw.start("example", "customers")
    assert [r.id for r in gw.runs("example", limit=2)] == ["exrun_3", second.id]
    assert len(list(gw.runs("example", limit=None))) == 3
    assert gw.last_completed("example", "customers").id == second.id
    assert first.id != second.id
    with pytest.raises(RunNotFoundError):
        gw.last_completed("example", "daily_sales")


def test_scope_reaches_the_driver_and_bad_scope_is_refused(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    mine = gw.start("example", "customers", scope=Scope(account="acct_1"))
    assert mine.scope == Scope(account="acct_1")
    assert list(gw.runs("example")) == []
    assert [r.id for r in gw.runs("example", scope=Scope(account="acct_1"))] == [mine.id]
    with pytest.raises(ScopeError, match="only Scope"):
        gw.start("example", "customers", scope=Scope(entity_id="e1"))


def test_each_start_gets_one_idempotency_key(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    a = gw.start("example", "customers")
    b = gw.start("example", "customers")
    assert a.id != b.id
    again = gw.start("example", "customers", idempotency_key="nightly-2025-01-31")
    same = gw.start("example", "customers", idempotency_key="nightly-2025-01-31")
    assert again.id == same.id


# A fake driver for what the toy cannot show -------------------------------------------------


class RecordingDriver:
    """Records calls; its behaviour is set per test."""

    def __init__(self, context: ProviderContext, error: BaseException | None = None) -> None:
        self.context = context
        self.error = error
        self.calls: list[tuple[str, Any]] = []

    def templates(self, *, scope: Scope) -> Sequence[ReportTemplate]:
        if self.error is not None:
            raise self.error
        return []

    def template(self, report_id: str, *, scope: Scope) -> ReportTemplate:
        raise UnknownReportError("fake", report_id)

    def search(self, query: str, *, scope: Scope) -> Sequence[ReportTemplate]:
        return []

    def validate(
        self, report_id: str, parameters: Mapping[str, Any], *, scope: Scope
    ) -> dict[str, Any]:
        self.calls.append(("validate", dict(parameters)))
        return {**parameters, "normalized": True}

    def start(
        self, report_id: str, parameters: Mapping[str, Any], *, scope: Scope, idempotency_key: str
    ) -> ReportRun:
        self.calls.append(("start", (dict(parameters), idempotency_key)))
        return self.get("r1", scope=scope)

    def get(self, run_id: str, *, scope: Scope) -> ReportRun:
        raw = "MYSTERY"
        return ReportRun(
            provider="fake",
            id=run_id,
            report_id="rep",
            status=self.context.map_status(raw),
            raw_status=raw,
        )

    def cancel(self, run: ReportRun) -> ReportRun:
        raise NotSupportedError("fake", "cancel")

    def runs(self, *, limit: int | None, scope: Scope) -> Iterator[ReportRun]:
        if self.error is not None:
            raise self.error
        yield from ()

    def last_completed(self, report_id: str, *, scope: Scope) -> ReportRun:
        raise RunNotFoundError("none")

    def open_result(self, run: ReportRun, *, offset: int = 0) -> Any:
        raise AssertionError("not used")


class FakeProvider:
    def __init__(self, error: BaseException | None = None) -> None:
        self.created: list[RecordingDriver] = []
        self.error = error

    def factory(self, context: ProviderContext) -> RecordingDriver:
        driver = RecordingDriver(context, self.error)
        self.created.append(driver)
        return driver

    @hookimpl
    def report_gateway_providers(self) -> list[ProviderSpec]:
        return [ProviderSpec(name="fake", factory=self.factory)]


def test_start_passes_validated_parameters_and_a_fresh_key(make_gateway: MakeGateway) -> None:
    provider = FakeProvider()
    gw = make_gateway(plugins=[provider])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStatusWarning)
        gw.start("fake", "rep", {"x": 1})
        gw.start("fake", "rep", {"x": 1})
    driver = provider.created[0]
    starts = [args for name, args in driver.calls if name == "start"]
    assert [params for params, _ in starts] == [{"x": 1, "normalized": True}] * 2
    keys = [key for _, key in starts]
    assert len(set(keys)) == 2
    assert all(len(key) == 36 for key in keys)
    assert [name for name, _ in driver.calls] == ["validate", "start", "validate", "start"]


def test_unknown_status_warns_once_and_counts_as_running(make_gateway: MakeGateway) -> None:
    gw = make_gateway(plugins=[FakeProvider()])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        first = gw.get("fake", "r1")
        second = gw.get("fake", "r1")
    assert [type(w.message) for w in record] == [UnknownStatusWarning]
    assert "MYSTERY" in str(record[0].message)
    assert first.status is RunStatus.RUNNING
    assert second.raw_status == "MYSTERY"


def test_driver_created_once_across_threads(make_gateway: MakeGateway) -> None:
    provider = FakeProvider()
    gw = make_gateway(plugins=[provider])
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def use() -> None:
        try:
            barrier.wait()
            gw.templates("fake")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(provider.created) == 1


def test_runtime_errors_become_provider_errors(make_gateway: MakeGateway) -> None:
    runtime = pytest.importorskip("reporting_runtime")
    if not hasattr(runtime, "NotFoundError"):
        pytest.skip("reporting_runtime errors not available yet")
    try:
        cause = runtime.NotFoundError(
            status=404,
            code="resource_missing",
            message="No such report",
            request_id="req_123",
            provider="fake",
            operation="list_report_types",
        )
    except TypeError:
        pytest.skip("reporting_runtime.NotFoundError has another signature")
    gw = make_gateway(plugins=[FakeProvider(error=cause)])
    with pytest.raises(ProviderError) as info:
        gw.templates("fake")
    assert info.value.cause is cause
    assert info.value.status == 404
    assert info.value.request_id == "req_123"
    with pytest.raises(ProviderError):
        list(gw.runs("fake"))


def test_other_exceptions_pass_through(make_gateway: MakeGateway) -> None:
    gw = make_gateway(plugins=[FakeProvider(error=KeyError("bug"))])
    with pytest.raises(KeyError):
        gw.templates("fake")


def test_duplicate_provider_is_a_configuration_error(
    make_gateway: MakeGateway, example_plugin: ModuleType
) -> None:
    from report_gateway import ConfigurationError

    class Clash:
        @hookimpl
        def report_gateway_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec(name="example", factory=FakeProvider().factory)]

    with pytest.raises(ConfigurationError, match="two plugins register the provider 'example'"):
        make_gateway(plugins=[example_plugin, Clash()]).providers()


# Start progress: a driver reports through the ``progress`` its start is given -------------


class WaitingDriver(RecordingDriver):
    """Says it waits for a slot in ``start``, through the reporter the gateway passes."""

    def start(
        self,
        report_id: str,
        parameters: Mapping[str, Any],
        *,
        scope: Scope,
        idempotency_key: str,
        progress: StartReporter = no_progress,
    ) -> ReportRun:
        progress(waited_seconds=0.0, position=2, reason="limit")
        progress(waited_seconds=1.5, position=1, reason="limit")
        return RecordingDriver.get(self, "r1", scope=scope)


class WaitingProvider(FakeProvider):
    def factory(self, context: ProviderContext) -> RecordingDriver:
        driver = WaitingDriver(context, self.error)
        self.created.append(driver)
        return driver


def test_start_progress_reaches_on_progress_only_during_that_start(
    make_gateway: MakeGateway,
) -> None:
    gw = make_gateway(plugins=[WaitingProvider()])
    events: list[StartProgress] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStatusWarning)
        run = gw.start("fake", "rep", on_progress=events.append)
        gw.get("fake", run.id)
        gw.start("fake", "rep")  # no on_progress: reports go nowhere, the start still works
    assert events == [
        StartProgress(
            provider="fake", report_id="rep", waited_seconds=0.0, position=2, reason="limit"
        ),
        StartProgress(
            provider="fake", report_id="rep", waited_seconds=1.5, position=1, reason="limit"
        ),
    ]
    assert all(e.state == "waiting_for_slot" for e in events)


def test_a_failing_on_progress_does_not_cost_the_start(
    make_gateway: MakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    gw = make_gateway(plugins=[WaitingProvider()])

    def broken(event: StartProgress) -> None:
        raise RuntimeError("display gone")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStatusWarning)
        run = gw.start("fake", "rep", on_progress=broken)
    assert run.id == "r1"
    assert "on_progress" in caplog.text


def test_a_driver_that_never_reports_starts_as_before(make_gateway: MakeGateway) -> None:
    events: list[StartProgress] = []
    gw = make_gateway()
    run = gw.wait(gw.start("example", "customers", on_progress=events.append), sleep=no_sleep)
    assert run.status is RunStatus.SUCCEEDED
    assert events == []


def test_a_driver_whose_start_takes_no_progress_is_called_without_it(
    make_gateway: MakeGateway,
) -> None:
    provider = FakeProvider()
    gw = make_gateway(plugins=[provider])
    events: list[StartProgress] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStatusWarning)
        run = gw.start("fake", "rep", on_progress=events.append)
    assert run.id == "r1"
    assert provider.created[0].calls[-1][0] == "start"
    assert events == []


class ScopedFake(FakeProvider):
    """A provider sending only an account, whose driver never looks at the scope."""

    @hookimpl
    def report_gateway_providers(self) -> list[ProviderSpec]:
        return [
            ProviderSpec(
                name="fake", factory=self.factory, scope_headers={"account": "X-Fake-Account"}
            )
        ]


def test_the_gateway_refuses_an_unsupported_scope_before_the_driver_sees_it(
    make_gateway: MakeGateway,
) -> None:
    provider = ScopedFake()
    gw = make_gateway(plugins=[provider])
    for call in (
        lambda: gw.get("fake", "r1", scope=Scope(context="ctx_1")),
        lambda: gw.start("fake", "rep", {"x": 1}, scope=Scope(context="ctx_1")),
        lambda: gw.template("fake", "rep", scope=Scope(context="ctx_1")),
        lambda: list(gw.runs("fake", scope=Scope(context="ctx_1"))),
    ):
        with pytest.raises(ScopeError, match=r"only Scope\(account=\.\.\.\)"):
            call()
    assert provider.created[0].calls == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStatusWarning)
        assert gw.get("fake", "r1", scope=Scope(account="acct_1")).id == "r1"


def test_fan_out_and_resume_check_each_scope_before_journaling_or_sending(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    provider = ScopedFake()
    gw = make_gateway(plugins=[provider], journal=tmp_path / "journal.sqlite3")
    bad = Scope(context="ctx_1")
    # Refused up front, before any scope is journaled or sent (one error, not one per scope).
    with pytest.raises(ScopeError):
        gw.run_many("fake", "rep", {"x": 1}, scopes=[bad], output_dir=tmp_path / "out")
    journal = gw.journal
    assert journal is not None
    assert journal.entries() == []
    assert provider.created[0].calls == []
    # An entry journaled with that scope (by another version, say) is refused on resume too.
    journal.begin("fake", "rep", bad, {"x": 1}, key="k1")
    [outcome] = gw.resume().outcomes
    assert isinstance(outcome.error, ScopeError)
    assert provider.created[0].calls == []
