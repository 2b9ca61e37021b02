"""The Zuora Reporting API's documented examples, replayed through the generated client."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import pytest
from reporting_runtime import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ReportingError,
    RetryConfig,
    ServerError,
)
from zuora_reporting_client import DATA_CENTERS, Client, models

ZUORA_ID = ZUORA_SECRET = "REDACTED"  # placeholders, as in the cassettes

Cassette = Callable[[str, str], AbstractContextManager[Any]]

REPORT_ID = "ff8080816293d35b0162bcb3e7780a75"
RUN_ID = "ff808081629755b80162bcc5bd624d2d"


@pytest.fixture
def client(transport: Any) -> Client:
    return Client(
        DATA_CENTERS["us-cloud-2-sandbox"],
        api_access_key_id=ZUORA_ID,
        api_secret_access_key=ZUORA_SECRET,
        transport=transport,
    )


def test_overview_flow_search_run_poll_export(
    client: Client, cassette: Cassette, transport: Any
) -> None:
    with cassette("zuora", "overview-of-the-zuora-reporting-api.yaml") as played:
        found = client.search_reports(query="customer report")
        in_entity = client.search_reports(query="customer report", entity_name="EuropeanBU")
        started = client.run_report(found.response.reports[0].id, view_type="Summary")
        polled = client.get_report_run(started.response.report_run_id)
        with client.export_report_run(polled.response.id) as export:
            assert export.headers["Content-Type"] == "text/csv;charset=utf-16"
            exported = export.read()
    assert played.all_played
    first = transport.sent[0]
    assert first.header("apiAccessKeyId") == ZUORA_ID
    assert first.header("apiSecretAccessKey") == ZUORA_SECRET
    assert first.header("entityName") is None
    assert transport.sent[1].header("entityName") == "EuropeanBU"
    assert transport.sent[2].body is None  # no filters: the saved ones apply

    assert found.success is True
    assert found.response.count == 1
    report = found.response.reports[0]
    assert (report.id, report.name, report.number) == (REPORT_ID, "Customer report", "REP0000007")
    assert report.ds_name == "Account"
    assert report.created_on == datetime(2018, 4, 13, 1, 52, 10, tzinfo=UTC)
    assert in_entity.response.reports == found.response.reports

    assert started.response.report_run_id == RUN_ID
    run = polled.response
    assert run.status is models.ReportRunStatus.COMPLETED
    assert (run.report_id, run.report_type) == (REPORT_ID, "Summary")
    assert run.started_on == datetime(2018, 4, 13, 2, 11, 38, 464000, tzinfo=UTC)

    rows = exported.decode("utf-16").splitlines()
    assert rows[0].split("\t") == ["Account: Currency", "Sum of Account: Account Balance"]
    assert rows[1:] == ["EUR\t4,800", "USD\t22,600.95"]


def test_last_completed_run_and_the_never_run_error(client: Client, cassette: Cassette) -> None:
    with cassette("zuora", "get-last-completed-report-run.yaml") as played:
        latest = client.get_last_completed_report_run(REPORT_ID)
        with pytest.raises(ApiError) as never_run:
            client.get_last_completed_report_run("ff8080816293d35b0162bcb3e7780a76")
    assert played.all_played

    assert latest.response.status is models.ReportRunStatus.COMPLETED
    assert latest.response.started_on == datetime(2016, 1, 19, 1, 24, 52, tzinfo=UTC)
    assert latest.response.updated_on == datetime(2016, 1, 19, 1, 24, 55, tzinfo=UTC)
    assert never_run.value.message == "The current user has not run this report yet."
    assert never_run.value.code == "ZAN-USAGE-REST-ERROR"
    assert never_run.value.request_id == "docexample-latest-none"


def test_report_data_page(client: Client, cassette: Cassette) -> None:
    with cassette("zuora", "get-report-data.yaml") as played:
        data = client.get_report_data(RUN_ID, offset=1, page_size=2)
    assert played.all_played
    assert data.response.page == [
        {"Invoice.Amount": "1,729.76", "Account.Currency": "USD"},
        {"Invoice.Amount": "4,800", "Account.Currency": "EUR"},
    ]
    assert (data.response.offset, data.response.size, data.response.total) == (1, 2, 2)


def test_cancel_both_documented_answers(client: Client, cassette: Cassette) -> None:
    with cassette("zuora", "cancel-a-report-run.yaml") as played:
        first = client.cancel_report_run(RUN_ID)
        second = client.cancel_report_run("ff808081629755b80162bcc5bd624d2e")
    assert played.all_played
    assert first.success is True
    assert first.response == "The report run has been canceled"
    assert second.response == "The report run was canceled"


def test_every_documented_error_shape_becomes_an_api_error(cassette: Cassette) -> None:
    # One attempt each: the cassette holds one answer per request, retries would replay none.
    good = Client(
        DATA_CENTERS["us-cloud-2-sandbox"],
        api_access_key_id=ZUORA_ID,
        api_secret_access_key=ZUORA_SECRET,
        retry=RetryConfig(total=0),
    )
    wrong = Client(
        DATA_CENTERS["us-cloud-2-sandbox"],
        api_access_key_id=ZUORA_ID,
        api_secret_access_key="WRONG-REDACTED",
        retry=RetryConfig(total=0),
    )
    with cassette("zuora", "zuora-reporting-error-shapes.yaml") as played:
        with pytest.raises(BadRequestError) as json_in_string:
            good.run_report(REPORT_ID, view_type="Detail")
        with pytest.raises(ServerError) as xml:
            good.get_report_run("ff808081629755b80162bcc5bd624d2f")
        with pytest.raises(BadRequestError) as flat:
            good.export_report_run("ff808081629755b80162bcc5bd624d2f")
        with pytest.raises(AuthenticationError) as login:
            wrong.search_reports(query="customer report")
        with pytest.raises(ApiError) as success_false:
            good.get_report_run("ff808081629755b80162bcc5bd624d30")
        with pytest.raises(BadRequestError) as html:
            good.get_report_data(RUN_ID, offset=1, page_size=0)
        with pytest.raises(AuthenticationError) as bare:
            wrong.search_reports(query="customer report")
    assert played.all_played

    assert json_in_string.value.message == "viewType is not valid for this report."
    assert json_in_string.value.code == "ZAN-USAGE-REST-ERROR"
    assert json_in_string.value.request_id == "docexample-err-json-string"
    assert xml.value.message == "Internal error."
    assert xml.value.status == 500
    assert flat.value.message == "The report run is not completed."
    assert login.value.code == "loginFailed"
    assert success_false.value.message == "Report not found."
    assert success_false.value.status == 200
    assert html.value.status == 400
    assert bare.value.status == 401
    for caught in (json_in_string, xml, flat, login, success_false, html, bare):
        assert isinstance(caught.value, ReportingError)
        assert "WRONG-REDACTED" not in str(caught.value)


def test_credentials_go_together(client: Client) -> None:
    with pytest.raises(ValueError, match="needed together"):
        Client(api_access_key_id=ZUORA_ID)
