"""Stripe Reporting v1's documented examples, replayed through the generated client."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from reporting_runtime import BadRequestError
from reporting_runtime.types import UnixTime
from stripe_reporting_client.v1 import Client, models

STRIPE_KEY = "sk_test_REDACTED"  # placeholder, as in the cassettes

Cassette = Callable[[str, str], AbstractContextManager[Any]]


@pytest.fixture
def client(transport: Any) -> Client:
    return Client(api_key=STRIPE_KEY, transport=transport)


def test_report_types_list_and_retrieve(client: Client, cassette: Cassette) -> None:
    with cassette("stripe", "stripe-api-reporting-report-type.yaml") as played:
        listed = client.list_report_types()
        one = client.retrieve_report_type("balance.summary.1")
    assert played.all_played

    assert isinstance(listed, models.ReportTypeList)
    assert [t.id for t in listed.data] == ["balance.summary.1"]
    assert listed.has_more is False
    assert one.name == "Balance summary"
    assert one.data_available_start == datetime(2019, 1, 1, tzinfo=UTC)
    assert one.data_available_end == datetime.fromtimestamp(1680134400, UTC)
    assert one.default_columns == ["category", "currency", "description", "net_amount"]
    assert one.version == 1


def test_report_run_create_retrieve_list(
    client: Client, cassette: Cassette, transport: Any
) -> None:
    body = models.CreateReportRunRequest(
        report_type="balance.summary.1",
        parameters=models.CreateReportRunParameters(
            interval_start=UnixTime(datetime.fromtimestamp(1680000000, UTC)),
            interval_end=UnixTime(datetime.fromtimestamp(1680100000, UTC)),
        ),
    )
    with cassette("stripe", "stripe-api-reporting-report-run.yaml") as played:
        created = client.create_report_run(body=body)
        fetched = client.retrieve_report_run(created.id)
        page = client.list_report_runs(limit=3)
    assert played.all_played
    # The form body the client sent is the documented one (vcrpy matched on the URL only).
    sent = parse_qsl((transport.sent[0].body or b"").decode())
    assert sent == [
        ("report_type", "balance.summary.1"),
        ("parameters[interval_start]", "1680000000"),
        ("parameters[interval_end]", "1680100000"),
    ]
    assert transport.sent[0].header("Authorization") == f"Bearer {STRIPE_KEY}"

    assert created.id == "frr_1MrQwrLkdIwHu7ixUov4x2b3"
    assert created.status is models.ReportRunStatus.PENDING
    assert created.created == datetime.fromtimestamp(1680203749, UTC)
    assert created.parameters.interval_start == datetime.fromtimestamp(1680000000, UTC)
    assert created.result is None
    assert created.succeeded_at is None
    assert fetched == created
    assert [run.id for run in page.data] == [created.id]
    assert page.has_more is False


def test_file_contents_stream_from_the_files_host(client: Client, cassette: Cassette) -> None:
    with (
        cassette("stripe", "stripe-api-files-contents.yaml") as played,
        client.download_file_contents("file_docexample123") as response,
    ):
        assert response.status == 200
        assert response.content_length == 69
        assert response.request_id == "req_docexample_file"
        body = b"".join(response.iter_bytes(chunk_size=16))
    assert played.all_played
    assert body.decode().splitlines() == [
        "category,currency,description,net_amount",
        "charge,usd,Charges,100.00",
    ]
    assert len(body) == 69


def test_documented_error_becomes_bad_request_with_code_param_and_request_id(
    client: Client, cassette: Cassette
) -> None:
    body = models.CreateReportRunRequest(
        report_type="balance.summary.1",
        parameters=models.CreateReportRunParameters(
            interval_start=UnixTime(datetime.fromtimestamp(1000000000, UTC)),
            interval_end=UnixTime(datetime.fromtimestamp(1680100000, UTC)),
        ),
    )
    with (
        cassette("stripe", "stripe-api-errors.yaml") as played,
        pytest.raises(BadRequestError) as caught,
    ):
        client.create_report_run(body=body, idempotency_key="00000000-0000-4000-8000-000000000000")
    assert played.all_played

    error = caught.value
    assert error.status == 400
    assert error.code == "parameter_invalid_integer"
    assert error.param == "parameters[interval_start]"
    assert error.request_id == "req_docexample_err"
    assert "only available starting at 1546300800" in error.message
    assert STRIPE_KEY not in str(error)
