"""End-to-end flows against the sandbox: start, wait, download, rows, for v1 and v2.

The sandbox records the headers each request arrived with (``stats()["request_log"]``), so
these tests check what reached each endpoint, the key above all.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import report_gateway_stripe.v1 as stripe_v1
from report_gateway import (
    Gateway,
    ParameterError,
    ReportRun,
    RunFailedError,
    RunNotFoundError,
    RunStatus,
    Scope,
    UnknownReportError,
)
from report_gateway.models import CONTENT_CSV, CONTENT_ZIP
from report_gateway_sandbox import STRIPE_TEST_KEY, FaultRule, Sandbox, SandboxConfig

MakeGateway = Callable[..., Gateway]

ROWS = 25
WEEK = {"interval_start": "2025-01-01", "interval_end": "2025-01-08T00:00:00Z"}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    config = SandboxConfig(run_seconds=0.2, result_rows=ROWS, seed=7)
    with Sandbox(config) as sb:
        yield sb


@pytest.fixture
def gw(make_gateway: MakeGateway, sandbox: Sandbox) -> Gateway:
    return make_gateway(_settings(sandbox))


def _settings(sb: Sandbox, **v2: Any) -> dict[str, dict[str, Any]]:
    return {
        "stripe": {
            "api_key": STRIPE_TEST_KEY,
            "base_url": sb.stripe_base_url,
            "files_base_url": sb.files_base_url,
        },
        "stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sb.stripe_base_url, **v2},
    }


def _wait(gw: Gateway, run: ReportRun) -> ReportRun:
    return gw.wait(run, timeout=30, poll_interval=0.05, max_interval=0.2)


def _log(sb: Sandbox, operation: str | None = None) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = sb.stats()["request_log"]
    return [e for e in entries if operation is None or e["operation"] == operation]


def _header(entry: dict[str, Any], name: str) -> str | None:
    for key, value in entry["headers"].items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _runs_created(sb: Sandbox, provider: str) -> int:
    return int(sb.stats()["runs_created"][provider])


# -- Stripe v1 ------------------------------------------------------------------------------


def test_v1_start_wait_download_rows(gw: Gateway, sandbox: Sandbox, tmp_path: Path) -> None:
    assert "balance.summary.1" in [t.id for t in gw.templates("stripe")]
    run = gw.start("stripe", "balance.summary.1", WEEK)
    assert run.status is RunStatus.PENDING
    assert run.parameters == {"interval_end": 1736294400, "interval_start": 1735689600}
    done = _wait(gw, run)
    assert done.status is RunStatus.SUCCEEDED
    assert done.finished_at is not None
    result = done.result
    assert result is not None
    assert result.needs_auth is True
    assert result.content_type == CONTENT_CSV
    path = gw.download(done, tmp_path / "balance.csv")
    assert path.stat().st_size == result.size
    rows = list(gw.rows(done))
    assert len(rows) == ROWS
    assert set(rows[0]) == {"category", "description", "net_amount", "currency"}
    downloads = _log(sandbox, "download_file_contents")
    assert downloads
    assert all(_header(e, "Authorization") == f"Bearer {STRIPE_TEST_KEY}" for e in downloads)
    (create,) = _log(sandbox, "create_report_run")
    assert _header(create, "Idempotency-Key")


def test_v1_files_follow_a_non_default_base_url(
    make_gateway: MakeGateway, sandbox: Sandbox, tmp_path: Path
) -> None:
    # A proxy or sandbox named in base_url serves the files too: no files_base_url needed.
    gw = make_gateway({"stripe": {"api_key": STRIPE_TEST_KEY, "base_url": sandbox.stripe_base_url}})
    done = _wait(gw, gw.start("stripe", "balance.summary.1", WEEK))
    path = gw.download(done, tmp_path / "balance.csv")
    assert done.result is not None
    assert path.stat().st_size == done.result.size
    (download,) = _log(sandbox, "download_file_contents")
    assert _header(download, "Authorization") == f"Bearer {STRIPE_TEST_KEY}"


@pytest.mark.parametrize(
    ("settings", "files_host"),
    [
        ({}, "https://files.stripe.com"),
        ({"base_url": "https://api.stripe.com"}, "https://files.stripe.com"),
        ({"base_url": "https://api.stripe.com/"}, "https://files.stripe.com"),
        ({"base_url": "http://127.0.0.1:9/"}, "http://127.0.0.1:9"),
        (
            {"base_url": "http://127.0.0.1:9", "files_base_url": "http://127.0.0.1:8"},
            "http://127.0.0.1:8",
        ),
        (
            {"base_url": "https://api.stripe.com", "files_base_url": "http://127.0.0.1:8"},
            "http://127.0.0.1:8",
        ),
    ],
)
def test_v1_files_host_follows_base_url_only_when_unset_and_not_stripes(
    make_gateway: MakeGateway, settings: dict[str, str], files_host: str
) -> None:
    gw = make_gateway({"stripe": {"api_key": STRIPE_TEST_KEY, **settings}})
    driver = gw.driver("stripe")
    assert isinstance(driver, stripe_v1.StripeV1Driver)
    assert driver.files_base_url == files_host


UNREACHABLE = "http://127.0.0.1:9"


def _profile(tmp_path: Path, **values: str) -> Path:
    config = tmp_path / "config.toml"
    lines = ["[profiles.default.stripe]", *(f'{key} = "{value}"' for key, value in values.items())]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def test_v1_an_explicit_base_url_outranks_a_files_host_from_the_profile(
    make_gateway: MakeGateway, sandbox: Sandbox, tmp_path: Path
) -> None:
    # The profile's files host is unreachable: the download works only from base_url's host.
    gw = make_gateway(
        {"stripe": {"api_key": STRIPE_TEST_KEY, "base_url": sandbox.stripe_base_url}},
        config_file=_profile(tmp_path, files_base_url=UNREACHABLE),
    )
    driver = gw.driver("stripe")
    assert isinstance(driver, stripe_v1.StripeV1Driver)
    assert driver.files_base_url == sandbox.stripe_base_url.rstrip("/")
    done = _wait(gw, gw.start("stripe", "balance.summary.1", WEEK))
    path = gw.download(done, tmp_path / "balance.csv")
    assert done.result is not None
    assert path.stat().st_size == done.result.size
    (download,) = _log(sandbox, "download_file_contents")
    assert _header(download, "Authorization") == f"Bearer {STRIPE_TEST_KEY}"


@pytest.mark.parametrize(
    ("explicit", "profile", "files_host"),
    [
        # An explicit files_base_url wins over everything.
        (
            {"base_url": "http://127.0.0.1:7", "files_base_url": "http://127.0.0.1:8"},
            {"files_base_url": UNREACHABLE},
            "http://127.0.0.1:8",
        ),
        (
            {"files_base_url": "http://127.0.0.1:8"},
            {"base_url": "http://127.0.0.1:7"},
            "http://127.0.0.1:8",
        ),
        # Both in the same layer: files_base_url as given.
        (
            {},
            {"base_url": "http://127.0.0.1:7", "files_base_url": "http://127.0.0.1:8"},
            "http://127.0.0.1:8",
        ),
        # A profile's files host against an explicit base_url: ignored, even for Stripe's own.
        ({"base_url": "http://127.0.0.1:7"}, {"files_base_url": UNREACHABLE}, "http://127.0.0.1:7"),
        (
            {"base_url": "https://api.stripe.com"},
            {"files_base_url": UNREACHABLE},
            "https://files.stripe.com",
        ),
        # Only a profile's base_url: files follow it.
        ({}, {"base_url": "http://127.0.0.1:7"}, "http://127.0.0.1:7"),
    ],
)
def test_v1_files_host_weighs_the_layers_of_base_url_and_files_base_url(
    make_gateway: MakeGateway,
    tmp_path: Path,
    explicit: dict[str, str],
    profile: dict[str, str],
    files_host: str,
) -> None:
    gw = make_gateway(
        {"stripe": {"api_key": STRIPE_TEST_KEY, **explicit}},
        config_file=_profile(tmp_path, **profile),
    )
    driver = gw.driver("stripe")
    assert isinstance(driver, stripe_v1.StripeV1Driver)
    assert driver.files_base_url == files_host


def test_v1_columns_shape_the_file(gw: Gateway) -> None:
    columns = ["balance_transaction_id", "net", "currency"]
    run = gw.start(
        "stripe", "balance_change_from_activity.itemized.3", {**WEEK, "columns": columns}
    )
    rows = list(gw.rows(_wait(gw, run)))
    assert list(rows[0]) == columns


def test_v1_single_column_given_as_a_string(gw: Gateway) -> None:
    run = gw.start("stripe", "balance_change_from_activity.itemized.3", {**WEEK, "columns": "net"})
    assert run.parameters["columns"] == ["net"]
    rows = list(gw.rows(_wait(gw, run)))
    assert list(rows[0]) == ["net"]


def test_v2_single_column_given_as_a_string(gw: Gateway) -> None:
    run = gw.start("stripe-v2", "report_itemized_balance_change", {**WEEK, "columns": "net"})
    assert run.parameters["columns"] == ["net"]
    rows = list(gw.rows(_wait(gw, run)))
    assert list(rows[0]) == ["net"]


def test_v1_account_scope_from_call_and_settings(
    make_gateway: MakeGateway, sandbox: Sandbox, tmp_path: Path
) -> None:
    gw = make_gateway(_settings(sandbox))
    scoped = Scope(account="acct_connected1")
    run = gw.start("stripe", "balance.summary.1", WEEK, scope=scoped)
    assert run.scope == scoped
    done = _wait(gw, run)
    gw.download(done, tmp_path / "connected.csv")
    assert {_header(e, "Stripe-Account") for e in _log(sandbox)} == {"acct_connected1"}
    # The platform account does not see the connected account's run.
    with pytest.raises(RunNotFoundError):
        gw.get("stripe", run.id)

    settings = _settings(sandbox)
    settings["stripe"]["account"] = "acct_connected1"
    configured = make_gateway(settings)
    assert configured.get("stripe", run.id).scope == scoped
    assert [r.id for r in configured.runs("stripe")] == [run.id]


def test_v1_runs_follow_pages_and_last_completed(
    gw: Gateway, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe_v1, "PAGE_SIZE", 2)
    started = [gw.start("stripe", "balance.summary.1", WEEK) for _ in range(3)]
    other = gw.start("stripe", "payouts.summary.1", WEEK)
    newest_first = [other.id, *reversed([r.id for r in started])]
    assert [r.id for r in gw.runs("stripe", limit=None)] == newest_first
    assert [r.id for r in gw.runs("stripe", limit=3)] == newest_first[:3]
    pages = _log(sandbox, "list_report_runs")
    assert any("starting_after=" in e["query"] for e in pages)
    for run in started:
        _wait(gw, run)
    last = gw.last_completed("stripe", "balance.summary.1")
    assert last.id == started[-1].id
    assert last.status is RunStatus.SUCCEEDED


def test_v1_bad_input_creates_nothing(gw: Gateway, sandbox: Sandbox) -> None:
    with pytest.raises(UnknownReportError, match=r"balance\.summary\.9"):
        gw.start("stripe", "balance.summary.9", WEEK)
    future = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    with pytest.raises(ParameterError, match="outside the data available") as caught:
        gw.start("stripe", "balance.summary.1", {**WEEK, "interval_end": future})
    assert caught.value.parameter == "interval_end"
    assert "2020-01-01T00:00:00Z .. " in str(caught.value)
    with pytest.raises(ParameterError, match="columns"):
        # balance.summary.1 has no default_columns: it takes no columns.
        gw.start("stripe", "balance.summary.1", {**WEEK, "columns": ["net_amount"]})
    with pytest.raises(ParameterError, match="currency"):
        gw.start("stripe", "balance.summary.1", {**WEEK, "currency": "dollars"})
    with pytest.raises(ParameterError, match="is required"):
        gw.start("stripe", "balance.summary.1", {"interval_start": "2025-01-01"})
    assert _runs_created(sandbox, "stripe") == 0


def test_v1_failed_run_carries_the_reason(gw: Gateway, sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="fail_run", path="/v1/reporting/report_runs", count=1))
    run = gw.start("stripe", "balance.summary.1", WEEK)
    with pytest.raises(RunFailedError, match="internal error") as caught:
        _wait(gw, run)
    assert caught.value.run.status is RunStatus.FAILED
    assert caught.value.run.error is not None


# -- Stripe v2 ------------------------------------------------------------------------------


def test_v2_start_wait_download_rows_without_the_key(
    gw: Gateway, sandbox: Sandbox, tmp_path: Path
) -> None:
    template = gw.template("stripe-v2", "report_balance_summary")
    assert template.parameters["interval_start"].required
    run = gw.start("stripe-v2", "report_balance_summary", WEEK)
    assert run.status is RunStatus.RUNNING
    assert run.parameters == {
        "interval_start": "2025-01-01T00:00:00.000Z",
        "interval_end": "2025-01-08T00:00:00.000Z",
    }
    done = _wait(gw, run)
    result = done.result
    assert result is not None
    assert result.needs_auth is False
    assert result.content_type == CONTENT_CSV
    path = gw.download(done, tmp_path / "v2.csv")
    assert path.stat().st_size == result.size
    assert len(list(gw.rows(done))) == ROWS
    presigned = _log(sandbox, "download_presigned")
    assert len(presigned) == 2
    for entry in presigned:
        assert _header(entry, "Authorization") is None
        assert STRIPE_TEST_KEY not in str(entry["headers"])
    api_calls = [e for e in _log(sandbox) if e["operation"] != "download_presigned"]
    assert all(_header(e, "Authorization") == f"Bearer {STRIPE_TEST_KEY}" for e in api_calls)


@pytest.mark.parametrize("how", ["parameter", "setting"])
def test_v2_compressed_result_unzips(
    make_gateway: MakeGateway, sandbox: Sandbox, tmp_path: Path, how: str
) -> None:
    params: dict[str, Any] = dict(WEEK)
    if how == "parameter":
        gw = make_gateway(_settings(sandbox))
        params["result_options"] = {"compress_file": True}
    else:
        gw = make_gateway(_settings(sandbox, compress_file="true"))
    done = _wait(gw, gw.start("stripe-v2", "report_balance_summary", params))
    assert done.raw is not None
    assert done.raw["result_options"] == {"compress_file": True}
    assert done.result is not None
    assert done.result.content_type == CONTENT_ZIP
    archive = gw.download(done, tmp_path / "v2.zip")
    assert zipfile.is_zipfile(archive)
    unzipped = gw.download(done, tmp_path / "v2.csv", unzip=True)
    text = unzipped.read_text(encoding="utf-8")
    assert text.startswith("category,description,net_amount,currency")
    assert len(list(gw.rows(done))) == ROWS
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as zf:
        assert zf.read(zf.namelist()[0]).decode() == text


def test_v2_context_scoping(make_gateway: MakeGateway, sandbox: Sandbox, tmp_path: Path) -> None:
    gw = make_gateway(_settings(sandbox))
    scoped = Scope(context="acct_org_member")
    run = gw.start("stripe-v2", "report_balance_summary", WEEK, scope=scoped)
    done = _wait(gw, run)
    assert done.scope == scoped
    gw.download(done, tmp_path / "member.csv")
    api_calls = [e for e in _log(sandbox) if e["operation"] != "download_presigned"]
    assert {_header(e, "Stripe-Context") for e in api_calls} == {"acct_org_member"}
    for entry in _log(sandbox, "download_presigned"):
        assert _header(entry, "Stripe-Context") is None
    with pytest.raises(RunNotFoundError, match="same context"):
        gw.get("stripe-v2", run.id)
    configured = make_gateway(_settings(sandbox, context="acct_org_member"))
    assert configured.get("stripe-v2", run.id).status is RunStatus.SUCCEEDED


def test_v2_expired_url_is_refreshed(gw: Gateway, sandbox: Sandbox, tmp_path: Path) -> None:
    done = _wait(gw, gw.start("stripe-v2", "report_balance_summary", WEEK))
    sandbox.add_fault(FaultRule(kind="expired_url", path="/_files/v2/*", count=1))
    before = len(_log(sandbox, "retrieve_report_run"))
    path = gw.download(done, tmp_path / "refreshed.csv")
    assert done.result is not None
    assert path.stat().st_size == done.result.size
    assert [e["status"] for e in _log(sandbox, "download_presigned")] == [403, 200]
    assert len(_log(sandbox, "retrieve_report_run")) == before + 1


def test_v2_url_past_expires_at_is_refreshed_before_use(
    gw: Gateway, sandbox: Sandbox, tmp_path: Path
) -> None:
    done = _wait(gw, gw.start("stripe-v2", "report_balance_summary", WEEK))
    driver = gw.driver("stripe-v2")
    later = datetime.now(UTC) + timedelta(minutes=10)
    driver.now = lambda: later  # type: ignore[attr-defined]
    before = len(_log(sandbox, "retrieve_report_run"))
    gw.download(done, tmp_path / "late.csv")
    assert [e["status"] for e in _log(sandbox, "download_presigned")] == [200]
    assert len(_log(sandbox, "retrieve_report_run")) == before + 1


@pytest.mark.parametrize(
    ("report", "parameters", "name", "allowed"),
    [
        (
            "report_balance_summary",
            {**WEEK, "organization_report_granularity": "summed_report"},
            "organization_report_granularity",
            "concatenated_report, aggregated_report",
        ),
        (
            "report_itemized_balance_change",
            {**WEEK, "columns": ["net", "tip"]},
            "columns",
            "balance_transaction_id",
        ),
        # One string is a list of one, still checked against the allowed names.
        ("report_itemized_balance_change", {**WEEK, "columns": "tip"}, "columns", "net"),
        ("report_balance_summary", {"interval_start": "2025-01-01"}, "interval_end", ".."),
        ("report_balance_summary", {**WEEK, "interval_end": 20250108}, "interval_end", ".."),
        ("report_balance_summary", {**WEEK, "currency": "usd"}, "currency", "interval_end"),
        (
            "report_connected_account_activity",
            {**WEEK, "connected_account": 17},
            "connected_account",
            "",
        ),
        (
            "report_balance_summary",
            {**WEEK, "result_options": {"compress_file": "yes"}},
            "result_options.compress_file",
            "True, False",
        ),
    ],
)
def test_v2_bad_input_creates_nothing(
    gw: Gateway,
    sandbox: Sandbox,
    report: str,
    parameters: dict[str, Any],
    name: str,
    allowed: str,
) -> None:
    with pytest.raises(ParameterError) as caught:
        gw.start("stripe-v2", report, parameters)
    assert caught.value.parameter == name
    assert allowed in str(caught.value)
    assert _runs_created(sandbox, "stripe-v2") == 0


def test_v2_unknown_report(gw: Gateway, sandbox: Sandbox) -> None:
    with pytest.raises(UnknownReportError, match="report_nope"):
        gw.start("stripe-v2", "report_nope", WEEK)
    assert _runs_created(sandbox, "stripe-v2") == 0


def test_v2_failed_run_carries_the_reason(gw: Gateway, sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="fail_run", path="/v2/reporting/report_runs", count=1))
    run = gw.start("stripe-v2", "report_balance_summary", WEEK)
    with pytest.raises(RunFailedError, match=r"internal_error") as caught:
        _wait(gw, run)
    assert caught.value.run.error is not None
    assert "An internal error occurred" in caught.value.run.error


def test_v2_waits_for_a_concurrency_slot(make_gateway: MakeGateway, sandbox: Sandbox) -> None:
    sandbox.configure(v2_concurrency_limit=1, run_seconds=0.3)
    gw = make_gateway(_settings(sandbox, rate_limit_wait=20))
    first = gw.start("stripe-v2", "report_balance_summary", WEEK)
    second = gw.start("stripe-v2", "report_balance_summary", WEEK)
    assert first.id != second.id
    creates = _log(sandbox, "create_report_run")
    assert 429 in [e["status"] for e in creates]
    assert creates[-1]["status"] == 200
    keys = {_header(e, "Idempotency-Key") for e in creates[1:]}
    assert len(keys) == 1  # every attempt of the second start reused one key
    assert _runs_created(sandbox, "stripe-v2") == 2


@pytest.mark.parametrize(
    ("provider", "report", "operation", "files"),
    [
        ("stripe", "balance.summary.1", "download_file_contents", "/v1/files/*"),
        ("stripe-v2", "report_balance_summary", "download_presigned", "/_files/v2/*"),
    ],
)
def test_dropped_download_resumes_with_a_range(
    gw: Gateway,
    sandbox: Sandbox,
    tmp_path: Path,
    provider: str,
    report: str,
    operation: str,
    files: str,
) -> None:
    # Large enough that whole chunks arrive before the cut, so there is something to keep.
    sandbox.configure(result_bytes=3_000_000)
    done = _wait(gw, gw.start(provider, report, WEEK))
    whole = gw.download(done, tmp_path / "whole.csv").read_bytes()
    cut = FaultRule(kind="drop_connection", path=files, count=1, after_bytes=2_500_000)
    sandbox.add_fault(cut)
    resumed = gw.download(done, tmp_path / "resumed.csv").read_bytes()
    assert resumed == whole
    first, retry = _log(sandbox, operation)[-2:]
    assert _header(first, "Range") is None
    offset = int((_header(retry, "Range") or "bytes=0-").removeprefix("bytes=").rstrip("-"))
    assert 0 < offset <= 2_500_000
    assert retry["status"] == 206
    if provider == "stripe-v2":
        assert _header(retry, "Authorization") is None
