"""Provider ``stripe`` through the Gateway, replaying Stripe v1's documented examples.

tests/cassettes/stripe/docs/ holds the report-type, report-run, file-contents and error
examples; each Gateway method the examples can answer is exercised here.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from report_gateway import (
    Gateway,
    NotSupportedError,
    ParameterError,
    ReportRun,
    ResultFile,
    RunStatus,
    Scope,
)

Cassette = Callable[..., AbstractContextManager[Any]]

TYPES = "stripe-api-reporting-report-type.yaml"
RUNS = "stripe-api-reporting-report-run.yaml"
FILES = "stripe-api-files-contents.yaml"
ERRORS = "stripe-api-errors.yaml"
DOCUMENTED_RUN = "frr_1MrQwrLkdIwHu7ixUov4x2b3"


def test_templates_and_search(docs_gateway: Gateway, docs_cassette: Cassette) -> None:
    with docs_cassette("stripe", TYPES, pick=[0, 0, 0]):
        templates = docs_gateway.templates("stripe")
        found = docs_gateway.search("stripe", "balance summary")
        assert docs_gateway.search("stripe", "payouts") == []
    assert [t.id for t in templates] == ["balance.summary.1"]
    assert [t.id for t in found] == ["balance.summary.1"]
    summary = templates[0]
    assert summary.name == "Balance summary"
    assert summary.available_from == datetime(2019, 1, 1, tzinfo=UTC)
    assert summary.available_until == datetime(2023, 3, 30, tzinfo=UTC)


def test_template_parameters(docs_gateway: Gateway, docs_cassette: Cassette) -> None:
    with docs_cassette("stripe", TYPES):
        docs_gateway.templates("stripe")
        template = docs_gateway.template("stripe", "balance.summary.1")
    params = template.parameters
    assert set(params) == {
        "interval_start",
        "interval_end",
        "columns",
        "currency",
        "timezone",
        "connected_account",
        "payout",
        "reporting_category",
    }
    start = params["interval_start"]
    assert (start.type, start.required) == ("timestamp", True)
    assert start.minimum == template.available_from
    assert start.maximum == template.available_until
    assert params["columns"].default == ("category", "currency", "description", "net_amount")


def test_start_validates_then_creates_with_the_idempotency_key(
    docs_gateway: Gateway, docs_cassette: Cassette, transport: Any
) -> None:
    with docs_cassette("stripe", TYPES, RUNS, pick=[1, 2]) as played:
        run = docs_gateway.start(
            "stripe",
            "balance.summary.1",
            {"interval_start": "1680000000", "interval_end": 1680100000},
            idempotency_key="job-2023-03-30",
        )
        assert played.all_played
    create = transport.sent[1]
    assert create.header("Idempotency-Key") == "job-2023-03-30"
    assert create.header("Authorization") == "Bearer sk_test_REDACTED"
    assert create.header("Stripe-Account") is None
    assert parse_qsl((create.body or b"").decode()) == [
        ("report_type", "balance.summary.1"),
        ("parameters[interval_start]", "1680000000"),
        ("parameters[interval_end]", "1680100000"),
    ]
    assert run.id == DOCUMENTED_RUN
    assert run.status is RunStatus.PENDING
    assert run.raw_status == "pending"
    assert run.created_at == datetime.fromtimestamp(1680203749, UTC)
    assert run.parameters == {"interval_end": 1680100000, "interval_start": 1680000000}
    assert run.result is None
    assert run.finished_at is None
    assert run.raw is not None
    assert run.raw["object"] == "reporting.report_run"


def test_start_outside_availability_is_refused_before_any_run(
    docs_gateway: Gateway, docs_cassette: Cassette, transport: Any
) -> None:
    with docs_cassette("stripe", TYPES, pick=[1]), pytest.raises(ParameterError) as caught:
        docs_gateway.start(
            "stripe",
            "balance.summary.1",
            {"interval_start": "2018-06-01", "interval_end": "2023-01-01"},
        )
    assert [r.method for r in transport.sent] == ["GET"]  # nothing was created
    assert caught.value.parameter == "interval_start"
    assert "2019-01-01T00:00:00Z .. 2023-03-30T00:00:00Z" in str(caught.value)


def test_stripe_400_on_a_run_parameter_is_a_parameter_error(
    docs_gateway: Gateway, docs_cassette: Cassette
) -> None:
    driver = docs_gateway.driver("stripe")
    with docs_cassette("stripe", ERRORS), pytest.raises(ParameterError) as caught:
        driver.start(
            "balance.summary.1",
            {"interval_start": 1000000000, "interval_end": 1680100000},
            scope=Scope(),
            idempotency_key="00000000-0000-4000-8000-000000000000",
        )
    message = str(caught.value)
    assert caught.value.parameter == "interval_start"
    assert "only available starting at 1546300800" in message
    assert "req_docexample_err" in message


def test_get_and_runs(docs_gateway: Gateway, docs_cassette: Cassette, transport: Any) -> None:
    with docs_cassette("stripe", RUNS, pick=[1, 2]):
        run = docs_gateway.get("stripe", DOCUMENTED_RUN)
        listed = list(docs_gateway.runs("stripe", limit=3))
    assert transport.sent[1].url == "https://api.stripe.com/v1/reporting/report_runs?limit=3"
    assert run.status is RunStatus.PENDING
    assert [r.id for r in listed] == [DOCUMENTED_RUN]


def test_last_completed_when_nothing_succeeded(
    docs_gateway: Gateway, docs_cassette: Cassette
) -> None:
    from report_gateway import RunNotFoundError

    # The documented list holds one pending run; 100 is the page size asked for.
    list_100 = "https://api.stripe.com/v1/reporting/report_runs?limit=100"
    with (
        docs_cassette("stripe", RUNS, TYPES, pick=[2, 4], uris={0: list_100}),
        pytest.raises(RunNotFoundError, match=r"no succeeded run of 'balance\.summary\.1'"),
    ):
        docs_gateway.last_completed("stripe", "balance.summary.1")


def test_cancel_is_not_supported(docs_gateway: Gateway) -> None:
    run = ReportRun(
        provider="stripe",
        id=DOCUMENTED_RUN,
        report_id="balance.summary.1",
        status=RunStatus.PENDING,
        raw_status="pending",
    )
    with pytest.raises(NotSupportedError, match="cancel"):
        docs_gateway.cancel(run)


def _succeeded_run() -> ReportRun:
    return ReportRun(
        provider="stripe",
        id=DOCUMENTED_RUN,
        report_id="balance.summary.1",
        status=RunStatus.SUCCEEDED,
        raw_status="succeeded",
        result=ResultFile(
            url="https://files.stripe.com/v1/files/file_docexample123/contents",
            size=69,
            needs_auth=True,
        ),
    )


def test_download_and_rows_from_the_files_host(
    docs_gateway: Gateway, docs_cassette: Cassette, tmp_path: Path, transport: Any
) -> None:
    with docs_cassette("stripe", FILES, pick=[0, 0]):
        path = docs_gateway.download(_succeeded_run(), tmp_path / "summary.csv")
        rows = list(docs_gateway.rows(_succeeded_run()))
    request = transport.sent[0]
    assert request.header("Authorization") == "Bearer sk_test_REDACTED"
    assert request.url == "https://files.stripe.com/v1/files/file_docexample123/contents"
    assert path.read_bytes().startswith(b"category,currency,description,net_amount\r\n")
    assert rows == [
        {"category": "charge", "currency": "usd", "description": "Charges", "net_amount": "100.00"}
    ]
