"""End-to-end flows against the sandbox's Zuora API: what a user's job does, start to rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from report_gateway import (
    Gateway,
    ParameterError,
    ReportRun,
    RunCanceledError,
    RunFailedError,
    RunNotFoundError,
    RunStatus,
    Scope,
    ScopeError,
    UnknownReportError,
)
from report_gateway_sandbox import ZUORA_ENTITIES, FaultRule, Sandbox

CUSTOMER_REPORT = "ff8080816293d35b0162bcb3e7780a75"  # Summary
INVOICE_DETAIL = "ff8080816293d35b0162bcb3e7780a76"  # Detail
ENTITY_ID = {name: eid for eid, name in ZUORA_ENTITIES.items()}


def wait(gw: Gateway, run: ReportRun, seen: list[str] | None = None) -> ReportRun:
    def progress(snapshot: ReportRun, elapsed: float) -> None:
        if seen is not None and (not seen or seen[-1] != snapshot.raw_status):
            seen.append(snapshot.raw_status)

    return gw.wait(run, timeout=30, poll_interval=0.05, max_interval=0.1, on_progress=progress)


def test_search_start_wait_download_rows(
    gw: Gateway, sandbox: Sandbox, counts: Any, tmp_path: Path
) -> None:
    sandbox.configure(run_seconds=1.5)  # each phase lasts several polls
    (template,) = gw.search("zuora", "Customer report")
    assert template.id == CUSTOMER_REPORT
    assert template.parameters["viewType"].allowed_values == ("Summary",)
    assert template.parameters["viewType"].default == "Summary"

    run = gw.start("zuora", template.id, {"viewType": "Summary"})
    seen: list[str] = []
    done = wait(gw, run, seen)

    assert seen == ["STARTED", "QUERYDATA", "PROCESSINGDATA", "COMPLETED"]
    assert done.status is RunStatus.SUCCEEDED
    assert done.created_at is not None
    assert done.finished_at is not None
    assert done.finished_at > done.created_at

    csv_path = gw.download(done, tmp_path / "customers.csv")
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Account: Currency,Account: Account Number,Sum of Account: Account Balance"
    assert len(lines) == 1 + 40

    raw = gw.download(done, tmp_path / "customers.tsv", raw=True).read_bytes()
    assert raw.startswith((b"\xff\xfe", b"\xfe\xff")) or raw[1:2] == b"\x00"
    decoded = raw.decode("utf-16").splitlines()
    assert decoded[0].split("\t") == lines[0].split(",")
    assert len(decoded) == 41

    rows = list(gw.rows(done))
    assert len(rows) == 40
    assert set(rows[0]) == {
        "Account: Currency",
        "Account: Account Number",
        "Sum of Account: Account Balance",
    }
    assert counts.runs_created == 1


def test_last_completed_returns_the_finished_run(gw: Gateway) -> None:
    with pytest.raises(RunNotFoundError, match="has not run this report"):
        gw.last_completed("zuora", CUSTOMER_REPORT)
    done = wait(gw, gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"}))
    latest = gw.last_completed("zuora", CUSTOMER_REPORT)
    assert latest.id == done.id
    assert latest.status is RunStatus.SUCCEEDED
    assert latest.created_at == done.created_at  # epoch millis here, "+0000" strings in get
    assert [r["Account: Account Number"] for r in gw.rows(latest)] == [
        r["Account: Account Number"] for r in gw.rows(done)
    ]
    with pytest.raises(UnknownReportError):
        gw.last_completed("zuora", "ff80808100000000000000000000dead")


def test_template_by_id(gw: Gateway) -> None:
    with pytest.raises(UnknownReportError):
        gw.template("zuora", "ff80808100000000000000000000dead")
    fresh = gw.template("zuora", INVOICE_DETAIL)
    assert fresh.parameters["viewType"].allowed_values == ("Summary", "Detail")
    assert fresh.parameters["viewType"].default is None
    (found,) = gw.search("zuora", "invoice detail")
    assert gw.template("zuora", INVOICE_DETAIL) == found
    assert found.parameters["viewType"].allowed_values == ("Detail",)
    assert found.parameters["viewType"].default == "Detail"


def test_cancel_then_wait_raises_canceled(gw: Gateway, sandbox: Sandbox) -> None:
    sandbox.configure(run_seconds=30)
    run = gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"})
    canceled = gw.cancel(run)
    assert canceled.status is RunStatus.CANCELED
    assert canceled.raw_status == "CANCELLED"
    with pytest.raises(RunCanceledError) as caught:
        wait(gw, run)
    assert caught.value.run.id == run.id


def test_cancel_of_a_finished_run_returns_it_unchanged(gw: Gateway) -> None:
    done = wait(gw, gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"}))
    assert gw.cancel(done).status is RunStatus.SUCCEEDED


def test_error_run_fails_the_wait(gw: Gateway, sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="fail_run", path="*/reportrun", count=1))
    run = gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"})
    with pytest.raises(RunFailedError) as caught:
        wait(gw, run)
    assert caught.value.run.raw_status == "ERROR"
    assert "ERROR" in str(caught.value)
    assert caught.value.run.result is None


def test_wrong_view_type_is_refused(gw: Gateway, counts: Any) -> None:
    # Not yet known locally: Zuora's own refusal becomes a ParameterError.
    with pytest.raises(ParameterError) as by_zuora:
        gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Detail"})
    assert by_zuora.value.parameter == "viewType"
    assert counts.requests("run_report") == 1
    # Once search has shown the report, the mismatch is caught before any request.
    gw.search("zuora", "Customer report")
    with pytest.raises(ParameterError, match=r"Summary report.*allowed: Summary"):
        gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Detail"})
    with pytest.raises(ParameterError, match="allowed: Summary, Detail"):
        gw.start("zuora", INVOICE_DETAIL, {"viewType": "Pivot"})
    with pytest.raises(ParameterError, match="required"):
        gw.start("zuora", INVOICE_DETAIL, {})
    assert counts.requests("run_report") == 1
    assert counts.runs_created == 0


def test_filters_are_sent_as_the_run_body(gw: Gateway, counts: Any) -> None:
    filters = [
        {
            "logicalOperator": "AND",
            "filterClauses": [{"field": "Account.Currency", "value": "USD", "operator": "="}],
        }
    ]
    done = wait(gw, gw.start("zuora", INVOICE_DETAIL, {"viewType": "detail", "filters": filters}))
    assert done.status is RunStatus.SUCCEEDED
    assert counts.runs_created == 1


def test_unknown_report(gw: Gateway, counts: Any) -> None:
    with pytest.raises(UnknownReportError):
        gw.start("zuora", "ff80808100000000000000000000dead", {"viewType": "Summary"})
    assert counts.runs_created == 0


def _first_numbers(gw: Gateway, scope: Scope) -> list[str]:
    run = wait(gw, gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"}, scope=scope))
    assert run.scope == scope
    return [
        row["Account: Account Number"] + row["Sum of Account: Account Balance"]
        for row in gw.rows(run)
    ]


def test_entity_scoping(gw: Gateway, counts: Any) -> None:
    europe_by_id = _first_numbers(gw, Scope(entity_id=ENTITY_ID["EuropeanBU"]))
    europe_by_name = _first_numbers(gw, Scope(entity_name="EuropeanBU"))
    americas = _first_numbers(gw, Scope(entity_name="AmericasBU"))
    home = _first_numbers(gw, Scope())
    assert europe_by_id == europe_by_name
    assert americas != europe_by_id
    assert home not in (americas, europe_by_id)

    headers = [entry["headers"] for entry in counts.logged("run_report")]
    assert headers[0].get("entityId") == ENTITY_ID["EuropeanBU"]
    assert "entityName" not in headers[0]
    assert headers[1].get("entityName") == "EuropeanBU"
    assert "entityId" not in headers[3]
    assert "entityName" not in headers[3]


def test_a_run_belongs_to_its_entity(gw: Gateway) -> None:
    run = gw.start(
        "zuora", CUSTOMER_REPORT, {"viewType": "Summary"}, scope=Scope(entity_name="EuropeanBU")
    )
    assert gw.get("zuora", run.id, scope=Scope(entity_name="EuropeanBU")).id == run.id
    with pytest.raises(RunNotFoundError):
        gw.get("zuora", run.id, scope=Scope(entity_name="AmericasBU"))


def test_entity_from_settings_is_the_default_scope(
    make_gateway: Callable[..., Gateway], sandbox_settings: dict[str, Any], counts: Any
) -> None:
    gw = make_gateway({**sandbox_settings, "entity_name": "EuropeanBU"})
    from_settings = _first_numbers_default(gw)
    assert counts.logged("run_report")[-1]["headers"].get("entityName") == "EuropeanBU"
    explicit = _first_numbers(gw, Scope(entity_name="EuropeanBU"))
    assert from_settings == explicit
    # An explicit scope replaces the settings' entity rather than adding to it.
    gw.search("zuora", "Customer", scope=Scope(entity_id=ENTITY_ID["AmericasBU"]))
    last = counts.logged("search_reports")[-1]["headers"]
    assert last.get("entityId") == ENTITY_ID["AmericasBU"]
    assert "entityName" not in last


def _first_numbers_default(gw: Gateway) -> list[str]:
    run = wait(gw, gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"}))
    assert run.scope == Scope(entity_name="EuropeanBU")
    return [
        row["Account: Account Number"] + row["Sum of Account: Account Balance"]
        for row in gw.rows(run)
    ]


def test_both_entity_headers_are_refused_before_any_request(gw: Gateway, counts: Any) -> None:
    gw.search("zuora", "Customer report")  # the driver exists; count from here
    before = len(counts.sandbox.stats()["request_log"])
    both = Scope(entity_id=ENTITY_ID["EuropeanBU"], entity_name="EuropeanBU")
    with pytest.raises(ScopeError):
        gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"}, scope=both)
    with pytest.raises(ScopeError):
        gw.search("zuora", "Customer report", scope=both)
    with pytest.raises(ScopeError):
        gw.get("zuora", "any", scope=both)
    assert len(counts.sandbox.stats()["request_log"]) == before
    assert counts.runs_created == 0


def test_download_resumes_after_a_dropped_export(
    gw: Gateway, sandbox: Sandbox, counts: Any, tmp_path: Path
) -> None:
    # Past the first 1 MiB chunk, so the bytes already received are kept and not re-read.
    sandbox.configure(result_bytes=3_000_000)
    done = wait(gw, gw.start("zuora", INVOICE_DETAIL, {"viewType": "Detail"}))
    clean = gw.download(done, tmp_path / "clean.csv").read_bytes()
    sandbox.add_fault(
        FaultRule(
            kind="drop_connection", path="*/reportruns/export/*", count=1, after_bytes=1_500_000
        )
    )
    resumed = gw.download(done, tmp_path / "resumed.csv").read_bytes()
    assert resumed == clean
    ranges = [e["headers"].get("Range") for e in counts.logged("export_report_run")]
    assert ranges[-1] is not None
    assert ranges[-1].startswith("bytes=")


def test_bad_credentials(
    make_gateway: Callable[..., Gateway], sandbox_settings: dict[str, Any]
) -> None:
    from report_gateway import ProviderError

    gw = make_gateway({**sandbox_settings, "api_secret_access_key": "not-the-password"})
    with pytest.raises(ProviderError) as caught:
        gw.search("zuora", "Customer report")
    assert caught.value.status == 401
    assert "not-the-password" not in str(caught.value)
