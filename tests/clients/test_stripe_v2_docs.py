"""Stripe Reports v2's documented examples, replayed through the generated client."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import pytest
from reporting_runtime import (
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryConfig,
)
from reporting_runtime.converter import converter
from stripe_reporting_client.v2 import Client, models

STRIPE_KEY = "sk_test_REDACTED"  # placeholder, as in the cassettes

Cassette = Callable[[str, str], AbstractContextManager[Any]]

WEEK = {"interval_start": "2025-08-18T00:00:00.000Z", "interval_end": "2025-08-25T00:00:00.000Z"}


def test_report_and_runs_from_the_reports_guide(cassette: Cassette, transport: Any) -> None:
    client = Client(api_key=STRIPE_KEY, stripe_version="2025-07-03.private", transport=transport)
    bodies = [
        models.CreateReportRunRequest(
            report="report_test_123",
            report_parameters={
                "columns": ["col_1", "col_2"],
                "interval_start": "2025-06-25T00:00:00.000Z",
            },
        ),
        models.CreateReportRunRequest(report="report_123"),
        models.CreateReportRunRequest(
            report="report_123", report_parameters={"connected_account": "acct_123"}
        ),
        models.CreateReportRunRequest(
            report="report_123",
            report_parameters={"organization_report_granularity": "concatenated_report"},
        ),
        models.CreateReportRunRequest(report="report_123", report_parameters={}),
        models.CreateReportRunRequest(
            report="report_123",
            report_parameters={"organization_report_granularity": "aggregated_report"},
        ),
    ]
    contexts = [None, "acct_context", "acct_context", None, None, None]
    with cassette("stripe-v2", "stripe-reports-v2-api.yaml") as played:
        report = client.retrieve_report("report_test_123")
        runs = [
            client.create_report_run(body=body, stripe_context=context)
            for body, context in zip(bodies, contexts, strict=True)
        ]
        finished = client.retrieve_report_run("reprun_123")
    assert played.all_played
    # JSON bodies as documented; Stripe-Context only where it was given.
    for request, interaction_body in zip(transport.sent[1:7], bodies, strict=True):
        assert json.loads(request.body or b"") == converter.unstructure(interaction_body)
    assert transport.sent[2].header("Stripe-Context") == "acct_context"
    assert transport.sent[1].header("Stripe-Context") is None
    assert transport.sent[0].header("Stripe-Version") == "2025-07-03.private"

    assert report.name == "example report"
    interval = report.parameters["interval_start"]
    assert interval.required is True
    assert interval.type is models.ReportParameterType.TIMESTAMP
    assert interval.timestamp_details is not None
    assert interval.timestamp_details.min == datetime(2025, 7, 5, tzinfo=UTC)
    columns = report.parameters["columns"]
    assert columns.array_details is not None
    assert columns.array_details.enum_details is not None
    assert columns.array_details.enum_details.allowed_values == ["col_1", "col_2"]

    assert [run.id for run in runs][:2] == ["reprun_123", "reprun_docexample_1"]
    assert all(run.status is models.ReportRunStatus.RUNNING for run in runs)
    assert runs[0].created == datetime(2025, 7, 3, 1, 2, 29, 964240, tzinfo=UTC)
    assert runs[0].result is None

    assert finished.status is models.ReportRunStatus.SUCCEEDED
    assert finished.result is not None
    assert finished.result.file is not None
    file = finished.result.file
    assert file.size == 209  # "209" on the wire
    assert file.content_type is models.ResultFileContentType.CSV
    assert file.download_url.url.startswith("https://stripeusercontent.com/files/")
    assert file.download_url.expires_at == datetime(2025, 7, 3, 1, 10, 46, 679781, tzinfo=UTC)


def test_create_from_the_api_reference(cassette: Cassette, transport: Any) -> None:
    client = Client(api_key=STRIPE_KEY, transport=transport)
    with cassette("stripe-v2", "stripe-api-v2-reporting-report-runs-create.yaml") as played:
        run = client.create_report_run(
            body=models.CreateReportRunRequest(report="report_test_xxx", report_parameters=WEEK)
        )
    assert played.all_played
    assert json.loads(transport.sent[0].body or b"") == {
        "report": "report_test_xxx",
        "report_parameters": WEEK,
    }
    assert transport.sent[0].header("Stripe-Version") == "2026-01-28.preview"  # the default
    assert run.id == "reprun_test_xxx"
    assert run.report_name == "test report name"
    assert run.result_options is not None
    assert run.result_options.compress_file is False
    assert run.report_parameters == WEEK
    assert run.status_details == {}


def test_documented_errors_map_to_error_classes(cassette: Cassette) -> None:
    # One attempt each: the cassette holds one answer per request, retries would replay none.
    client = Client(api_key=STRIPE_KEY, retry=RetryConfig(total=0))
    body = models.CreateReportRunRequest(report="report_test_xxx", report_parameters=WEEK)
    with cassette("stripe-v2", "stripe-api-v2-errors.yaml") as played:
        with pytest.raises(BadRequestError) as bad:
            client.create_report_run(body=body)
        with pytest.raises(PermissionDeniedError) as denied:
            client.retrieve_report("report_secret_xxx")
        with pytest.raises(NotFoundError) as missing:
            client.retrieve_report_run("reprun_missing")
        with pytest.raises(RateLimitError) as limited:
            client.create_report_run(body=body)
    assert played.all_played

    assert (bad.value.code, bad.value.request_id) == ("invalid_fields", "req_docexample_v2_400")
    assert denied.value.code == "report_inaccessible"
    assert missing.value.status == 404
    assert "No such report_run: reprun_missing" in missing.value.message
    assert limited.value.code == "report_run_rate_limit_exceeded"
    assert limited.value.status == 429
