"""Every Gateway method for provider zuora, replaying Zuora's documented examples
(tests/cassettes/zuora/docs) and, for shapes the pages describe only in words, small
hand-built exchanges. The network is blocked; the host is reached by data-center name."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from report_gateway import (
    Gateway,
    NotSupportedError,
    ParameterError,
    ProviderError,
    RunFailedError,
    RunNotFoundError,
    RunStatus,
    Scope,
    ScopeError,
)
from report_gateway.models import CONTENT_TSV_UTF16
from report_gateway.provider import UnknownStatusWarning

OVERVIEW = "overview-of-the-zuora-reporting-api.yaml"
LATEST = "get-last-completed-report-run.yaml"
CANCEL = "cancel-a-report-run.yaml"
ERRORS = "zuora-reporting-error-shapes.yaml"
REPORT_ID = "ff8080816293d35b0162bcb3e7780a75"
RUN_ID = "ff808081629755b80162bcc5bd624d2d"

Replay = Callable[..., AbstractContextManager[Any]]


def test_documented_flow_search_start_get_download_rows(
    docs_gateway: Gateway, docs_cassette: Replay, transport: Any, tmp_path: Path
) -> None:
    with docs_cassette(OVERVIEW) as played:
        (found,) = docs_gateway.search("zuora", "customer report")
        in_entity = docs_gateway.search(
            "zuora", "customer report", scope=Scope(entity_name="EuropeanBU")
        )
        started = docs_gateway.start("zuora", found.id, {"viewType": "summary"})
        run = docs_gateway.get("zuora", started.id)
        csv_path = docs_gateway.download(run, tmp_path / "customers.csv")
    assert played.all_played
    with docs_cassette(OVERVIEW, allow_playback_repeats=True):  # the export, twice more
        raw_path = docs_gateway.download(run, tmp_path / "customers.tsv", raw=True)
        rows = list(docs_gateway.rows(run))

    assert (found.id, found.name) == (REPORT_ID, "Customer report")
    assert found.description == "REP0000007 (Account)"
    assert [t.id for t in in_entity] == [REPORT_ID]
    search, entity_search, post = transport.sent[:3]
    assert search.header("entityName") is None
    assert entity_search.header("entityName") == "EuropeanBU"
    assert post.method == "POST"
    assert post.url.endswith(f"/reports/{REPORT_ID}/reportrun?viewType=Summary")
    assert post.body is None  # no filters given: Zuora applies the saved ones
    assert post.header("Idempotency-Key") is None  # Zuora has none; the POST is never retried

    assert started.id == RUN_ID
    assert started.status is RunStatus.RUNNING
    assert started.raw_status == "STARTED"
    assert started.parameters == {"viewType": "Summary"}

    assert run.status is RunStatus.SUCCEEDED
    assert run.raw_status == "COMPLETED"
    assert run.created_at == datetime(2018, 4, 13, 2, 11, 38, 464000, tzinfo=UTC)
    assert run.finished_at == datetime(2018, 4, 13, 2, 11, 40, 8000, tzinfo=UTC)
    assert run.error is None
    assert run.result is not None
    assert run.result.content_type == CONTENT_TSV_UTF16
    assert run.result.needs_auth
    assert run.result.size is None
    assert run.result.url == (
        f"https://zconnectsandbox.zuora.com/api/rest/v1/reportruns/export/{RUN_ID}"
    )
    assert run.raw is not None
    assert run.raw["reportDefinition"] == "..."

    assert csv_path.read_text(encoding="utf-8").splitlines() == [
        "Account: Currency,Sum of Account: Account Balance",
        'EUR,"4,800"',
        'USD,"22,600.95"',
    ]
    assert raw_path.read_bytes().decode("utf-16").splitlines() == [
        "Account: Currency\tSum of Account: Account Balance",
        "EUR\t4,800",
        "USD\t22,600.95",
    ]
    assert rows == [
        {"Account: Currency": "EUR", "Sum of Account: Account Balance": "4,800"},
        {"Account: Currency": "USD", "Sum of Account: Account Balance": "22,600.95"},
    ]
    export = [r for r in transport.sent if "/reportruns/export/" in r.url]
    assert export
    assert all(r.header("apiSecretAccessKey") == "REDACTED" for r in export)


def test_last_completed_and_never_run(docs_gateway: Gateway, docs_cassette: Replay) -> None:
    with docs_cassette(LATEST) as played:
        run = docs_gateway.last_completed("zuora", REPORT_ID)
        with pytest.raises(RunNotFoundError, match="has not run this report yet"):
            docs_gateway.last_completed("zuora", "ff8080816293d35b0162bcb3e7780a76")
    assert played.all_played
    assert run.status is RunStatus.SUCCEEDED
    assert run.created_at == datetime(2016, 1, 19, 1, 24, 52, tzinfo=UTC)  # epoch millis
    assert run.finished_at == datetime(2016, 1, 19, 1, 24, 55, tzinfo=UTC)
    assert run.parameters == {"viewType": "Summary"}


def test_template_learns_the_view_type_from_the_last_completed_run(
    docs_gateway: Gateway, docs_cassette: Replay
) -> None:
    with docs_cassette(LATEST) as played:
        known = docs_gateway.template("zuora", REPORT_ID)
        never_run = docs_gateway.template("zuora", "ff8080816293d35b0162bcb3e7780a76")
        # validation now knows the report is a Summary report: no request needed to refuse
        with pytest.raises(ParameterError, match="Summary report"):
            docs_gateway.validate("zuora", REPORT_ID, {"viewType": "Detail"})
    assert played.all_played
    assert known.parameters["viewType"].allowed_values == ("Summary",)
    assert known.parameters["viewType"].default == "Summary"
    assert never_run.parameters["viewType"].allowed_values == ("Summary", "Detail")
    assert never_run.parameters["viewType"].default is None


def test_cancel_deletes_then_reads_the_run_back(
    docs_gateway: Gateway, docs_cassette: Replay, transport: Any
) -> None:
    with docs_cassette(CANCEL, OVERVIEW) as played:
        before = docs_gateway.start("zuora", REPORT_ID, {"viewType": "Summary"})
        after = docs_gateway.cancel(before)
    methods = [(r.method, r.url.rsplit("/api/rest/v1", 1)[1]) for r in transport.sent]
    assert methods == [
        ("POST", f"/reports/{REPORT_ID}/reportrun?viewType=Summary"),
        ("DELETE", f"/reportruns/{RUN_ID}"),
        ("GET", f"/reportruns/{RUN_ID}"),
    ]
    assert after.id == RUN_ID
    # The documented GET answers COMPLETED (the pages' examples are independent snapshots).
    assert after.status is RunStatus.SUCCEEDED
    assert played.play_count == 3


def test_view_type_refused_by_zuora_becomes_a_parameter_error(
    docs_gateway: Gateway, docs_cassette: Replay
) -> None:
    with docs_cassette(ERRORS), pytest.raises(ParameterError) as caught:
        docs_gateway.start("zuora", REPORT_ID, {"viewType": "Detail"})
    assert caught.value.parameter == "viewType"
    assert "viewType is not valid for this report" in str(caught.value)


def test_documented_error_shapes_surface_as_provider_errors(
    docs_gateway: Gateway, docs_cassette: Replay
) -> None:
    with docs_cassette(ERRORS, allow_playback_repeats=True):
        with pytest.raises(ProviderError) as xml:
            docs_gateway.get("zuora", "ff808081629755b80162bcc5bd624d2f")
        with pytest.raises(ProviderError) as success_false:
            docs_gateway.get("zuora", "ff808081629755b80162bcc5bd624d30")
    assert xml.value.status == 500
    assert xml.value.request_id is not None
    assert "Internal error." in str(xml.value)
    assert success_false.value.provider == "zuora"


def test_bad_credentials_surface_as_an_authentication_error(
    make_gateway: Callable[..., Gateway], docs_cassette: Replay
) -> None:
    gateway = make_gateway(
        {
            "api_access_key_id": "REDACTED",
            "api_secret_access_key": "WRONG-REDACTED",
            "data_center": "us-cloud-2-sandbox",
        }
    )
    with docs_cassette(ERRORS, allow_playback_repeats=True), pytest.raises(ProviderError) as bad:
        gateway.search("zuora", "customer report")
    assert bad.value.status == 401
    assert "WRONG-REDACTED" not in str(bad.value)


def test_both_entity_fields_are_refused_before_any_request(
    docs_gateway: Gateway, transport: Any
) -> None:
    both = Scope(entity_id="8ad09be48db5aba7018db604776d4855", entity_name="EuropeanBU")
    calls: list[Callable[[], object]] = [
        lambda: docs_gateway.search("zuora", "customer report", scope=both),
        lambda: docs_gateway.start("zuora", REPORT_ID, {"viewType": "Summary"}, scope=both),
        lambda: docs_gateway.get("zuora", RUN_ID, scope=both),
        lambda: docs_gateway.last_completed("zuora", REPORT_ID, scope=both),
        lambda: docs_gateway.template("zuora", REPORT_ID, scope=both),
        lambda: docs_gateway.search("zuora", "x", scope=Scope(account="acct_1")),
    ]
    for call in calls:
        with pytest.raises(ScopeError):
            call()
    assert transport.sent == []


def test_templates_and_runs_are_not_supported(docs_gateway: Gateway, transport: Any) -> None:
    with pytest.raises(NotSupportedError, match="search"):
        docs_gateway.templates("zuora")
    with pytest.raises(NotSupportedError, match="last_completed"):
        list(docs_gateway.runs("zuora"))
    assert transport.sent == []


def _run_body(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "success": True,
        "response": {
            "reportType": "Detail",
            "id": RUN_ID,
            "reportId": REPORT_ID,
            "startedOn": "2018-04-13T02:11:38.464+0000",
            "status": status,
            "reportDefinition": "...",
            "updatedOn": 1523585500000,
            **extra,
        },
    }


@pytest.mark.parametrize("status", ["INVALID", "ERROR"])
def test_invalid_and_error_runs_fail_the_wait_with_the_reason(
    docs_gateway: Gateway, script: Callable[..., Any], scripted: Callable[..., Any], status: str
) -> None:
    path = f"/reportruns/{RUN_ID}"
    with script([scripted("GET", path, _run_body(status, errorMessage="Field X is gone"))]):
        run = docs_gateway.get("zuora", RUN_ID)
        with pytest.raises(RunFailedError) as caught:
            docs_gateway.wait(run, sleep=lambda _: None)
    assert run.status is RunStatus.FAILED
    assert run.result is None
    assert run.finished_at == datetime(2018, 4, 13, 2, 11, 40, tzinfo=UTC)
    assert status in str(caught.value)
    assert "Field X is gone" in str(caught.value)


def test_canceled_spelled_either_way(
    docs_gateway: Gateway, script: Callable[..., Any], scripted: Callable[..., Any]
) -> None:
    path = f"/reportruns/{RUN_ID}"
    with script([scripted("GET", path, _run_body("CANCELLED"))]):
        two_ls = docs_gateway.get("zuora", RUN_ID)
    with script([scripted("GET", path, _run_body("CANCELED"))]):
        one_l = docs_gateway.get("zuora", RUN_ID)
    assert two_ls.status is one_l.status is RunStatus.CANCELED


def test_an_unknown_status_warns_and_counts_as_running(
    docs_gateway: Gateway, script: Callable[..., Any], scripted: Callable[..., Any]
) -> None:
    path = f"/reportruns/{RUN_ID}"
    with (
        script([scripted("GET", path, _run_body("ARCHIVING"))]),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        run = docs_gateway.get("zuora", RUN_ID)
    assert run.status is RunStatus.RUNNING
    assert run.raw_status == "ARCHIVING"
    assert any(issubclass(w.category, UnknownStatusWarning) for w in caught)


def test_search_follows_search_start_pages(
    docs_gateway: Gateway, script: Callable[..., Any], scripted: Callable[..., Any]
) -> None:
    def page(start: int, count: int) -> dict[str, Any]:
        reports = [
            {"id": f"r{start + i:03d}", "name": f"Invoice {start + i}"} for i in range(count)
        ]
        return {"success": True, "response": {"reports": reports, "count": count}}

    with script(
        [
            scripted("GET", "/reports/search?query=invoice", page(0, 50)),
            scripted("GET", "/reports/search?query=invoice&searchStart=50", page(50, 50)),
            scripted("GET", "/reports/search?query=invoice&searchStart=100", page(100, 7)),
        ]
    ) as played:
        found = docs_gateway.search("zuora", "invoice")
    assert played.all_played
    assert [t.id for t in found] == [f"r{i:03d}" for i in range(107)]
