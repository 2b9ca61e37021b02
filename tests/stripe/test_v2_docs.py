"""Provider ``stripe-v2`` through the Gateway, replaying Stripe's documented v2 examples.

tests/cassettes/stripe-v2/docs/ holds the Reports v2 guide (a report, six creates, a
succeeded run), the create reference page and the documented error shapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import pytest
from report_gateway import (
    Gateway,
    NotSupportedError,
    ParameterError,
    ProviderError,
    ReportRun,
    RunNotFoundError,
    RunStatus,
    Scope,
)
from report_gateway.models import CONTENT_CSV
from reporting_runtime import RateLimitError

Cassette = Callable[..., AbstractContextManager[Any]]
MakeGateway = Callable[..., Gateway]

GUIDE = "stripe-reports-v2-api.yaml"
CREATE = "stripe-api-v2-reporting-report-runs-create.yaml"
ERRORS = "stripe-api-v2-errors.yaml"
WEEK = {"interval_start": "2025-08-18T00:00:00.000Z", "interval_end": "2025-08-25T00:00:00.000Z"}


def test_template_from_the_guide(docs_gateway: Gateway, docs_cassette: Cassette) -> None:
    with docs_cassette("stripe-v2", GUIDE, pick=[0]):
        template = docs_gateway.template("stripe-v2", "report_test_123")
    assert template.name == "example report"
    start = template.parameters["interval_start"]
    assert (start.type, start.required) == ("timestamp", True)
    # The guide prints max before min; the template keeps them in order.
    assert start.minimum == datetime(2025, 1, 1, tzinfo=UTC)
    assert start.maximum == datetime(2025, 7, 5, tzinfo=UTC)
    columns = template.parameters["columns"]
    assert (columns.type, columns.allowed_values) == ("array", ("col_1", "col_2"))


def test_templates_and_search_from_the_reports_setting(
    make_gateway: MakeGateway, docs_cassette: Cassette
) -> None:
    gw = make_gateway({"stripe-v2": {"api_key": "sk_test_REDACTED", "reports": "report_test_123"}})
    with docs_cassette("stripe-v2", GUIDE, pick=[0, 0, 0]):
        assert [t.id for t in gw.templates("stripe-v2")] == ["report_test_123"]
        assert [t.id for t in gw.search("stripe-v2", "example")] == ["report_test_123"]
        assert gw.search("stripe-v2", "payouts") == []


def test_search_by_report_id_without_settings(
    docs_gateway: Gateway, docs_cassette: Cassette
) -> None:
    with docs_cassette("stripe-v2", GUIDE, pick=[0]):
        assert [t.id for t in docs_gateway.search("stripe-v2", "report_test_123")] == [
            "report_test_123"
        ]


def test_start_with_the_guide_parameters(
    docs_gateway: Gateway, docs_cassette: Cassette, transport: Any
) -> None:
    with docs_cassette("stripe-v2", GUIDE, pick=[0, 1]) as played:
        run = docs_gateway.start(
            "stripe-v2",
            "report_test_123",
            {"columns": ["col_1", "col_2"], "interval_start": "2025-06-25"},
            idempotency_key="nightly-2025-06-25",
        )
        assert played.all_played
    create = transport.sent[1]
    assert json.loads(create.body or b"") == {
        "report": "report_test_123",
        "report_parameters": {
            "columns": ["col_1", "col_2"],
            "interval_start": "2025-06-25T00:00:00.000Z",
        },
    }
    assert create.header("Idempotency-Key") == "nightly-2025-06-25"
    assert create.header("Stripe-Version") == "2025-07-03.private"
    assert create.header("Stripe-Context") is None
    assert run.id == "reprun_123"
    assert run.status is RunStatus.RUNNING
    assert run.raw_status == "running"
    assert run.created_at == datetime(2025, 7, 3, 1, 2, 29, 964240, tzinfo=UTC)
    assert run.parameters["interval_start"] == "2025-06-25T00:00:00.000Z"


def test_context_from_the_settings_goes_in_stripe_context(
    make_gateway: MakeGateway, docs_cassette: Cassette, transport: Any
) -> None:
    gw = make_gateway({"stripe-v2": {"api_key": "sk_test_REDACTED", "context": "{{CONTEXT_ID}}"}})
    driver = gw.driver("stripe-v2")
    with docs_cassette("stripe-v2", GUIDE, pick=[2, 3]):
        first = driver.start("report_123", {}, scope=Scope(), idempotency_key="a")
        second = driver.start(
            "report_123", {"connected_account": "acct_123"}, scope=Scope(), idempotency_key="b"
        )
    assert [r.header("Stripe-Context") for r in transport.sent] == ["{{CONTEXT_ID}}"] * 2
    assert first.scope == second.scope == Scope(context="{{CONTEXT_ID}}")


def test_granularity_runs_from_the_guide(
    docs_gateway: Gateway, docs_cassette: Cassette, transport: Any
) -> None:
    driver = docs_gateway.driver("stripe-v2")
    with docs_cassette("stripe-v2", GUIDE, pick=[4, 5, 6]):
        runs = [
            driver.start("report_123", params, scope=Scope(), idempotency_key=f"k{i}")
            for i, params in enumerate(
                [
                    {"organization_report_granularity": "concatenated_report"},
                    {},
                    {"organization_report_granularity": "aggregated_report"},
                ]
            )
        ]
    assert [r.id for r in runs] == [
        "reprun_docexample_3",
        "reprun_docexample_4",
        "reprun_docexample_5",
    ]
    assert all(r.header("Stripe-Context") is None for r in transport.sent)


def test_get_the_succeeded_run(docs_gateway: Gateway, docs_cassette: Cassette) -> None:
    with docs_cassette("stripe-v2", GUIDE, pick=[7]):
        run = docs_gateway.get("stripe-v2", "reprun_123")
    assert run.status is RunStatus.SUCCEEDED
    assert run.error is None
    assert run.finished_at is None
    result = run.result
    assert result is not None
    assert result.size == 209
    assert result.content_type == CONTENT_CSV
    assert result.needs_auth is False
    assert result.url.startswith("https://stripeusercontent.com/files/")
    assert result.expires_at == datetime(2025, 7, 3, 1, 10, 46, 679781, tzinfo=UTC)
    assert result.filename == "reprun_123.csv"
    assert "stripeusercontent" not in repr(result)  # a pre-signed URL is a credential


def test_create_reference_page(
    docs_gateway: Gateway, docs_cassette: Cassette, transport: Any
) -> None:
    driver = docs_gateway.driver("stripe-v2")
    with docs_cassette("stripe-v2", CREATE):
        run = driver.start("report_test_xxx", WEEK, scope=Scope(), idempotency_key="k")
    assert json.loads(transport.sent[0].body or b"") == {
        "report": "report_test_xxx",
        "report_parameters": WEEK,
    }
    assert (run.id, run.status) == ("reprun_test_xxx", RunStatus.RUNNING)


def test_rate_limited_create_waits_for_a_slot_with_the_same_key(
    docs_gateway: Gateway, docs_cassette: Cassette, transport: Any
) -> None:
    driver = docs_gateway.driver("stripe-v2")
    driver.rate_limit_interval = 0.01  # type: ignore[attr-defined]
    # The wait is the gateway's admission; the cassette holds no report to validate against.
    driver.validate = lambda report_id, parameters, scope: dict(parameters)  # type: ignore[method-assign]
    with docs_cassette("stripe-v2", ERRORS, CREATE, pick=[3, 3, 4]):
        run = docs_gateway.start("stripe-v2", "report_test_xxx", WEEK, idempotency_key="once")
    assert run.id == "reprun_test_xxx"
    # Two refusals, then the slot: one run, every attempt under the same key.
    assert [r.header("Idempotency-Key") for r in transport.sent] == ["once"] * 3


def test_rate_limit_wait_is_bounded(make_gateway: MakeGateway, docs_cassette: Cassette) -> None:
    gw = make_gateway({"stripe-v2": {"api_key": "sk_test_REDACTED", "rate_limit_wait": "0"}})
    driver = gw.driver("stripe-v2")
    with docs_cassette("stripe-v2", ERRORS, pick=[3]), pytest.raises(RateLimitError) as caught:
        driver.start("report_test_xxx", WEEK, scope=Scope(), idempotency_key="k")
    assert caught.value.code == "report_run_rate_limit_exceeded"


def test_documented_errors(docs_gateway: Gateway, docs_cassette: Cassette) -> None:
    with docs_cassette("stripe-v2", ERRORS, pick=[1, 2]):
        with pytest.raises(ProviderError) as denied:
            docs_gateway.template("stripe-v2", "report_secret_xxx")
        with pytest.raises(RunNotFoundError, match="reprun_missing"):
            docs_gateway.get("stripe-v2", "reprun_missing")
    assert denied.value.status == 403
    assert denied.value.code == "report_inaccessible"
    assert denied.value.request_id == "req_docexample_v2_403"


def test_granularity_refused_with_a_context(
    make_gateway: MakeGateway, docs_cassette: Cassette
) -> None:
    gw = make_gateway({"stripe-v2": {"api_key": "sk_test_REDACTED"}})
    report = {
        "id": "report_123",
        "object": "v2.reporting.report",
        "livemode": False,
        "name": "Balance",
        "parameters": {
            "organization_report_granularity": {
                "required": False,
                "type": "enum",
                "enum_details": {"allowed_values": ["concatenated_report", "aggregated_report"]},
            }
        },
    }
    from report_gateway_stripe.v2 import template_of
    from reporting_runtime.converter import structure
    from stripe_reporting_client.v2 import models

    template = template_of(structure(report, models.Report))
    driver = gw.driver("stripe-v2")
    driver.template = lambda report_id, *, scope: template  # type: ignore[method-assign]
    with pytest.raises(ParameterError, match="Stripe-Context"):
        gw.validate(
            "stripe-v2",
            "report_123",
            {"organization_report_granularity": "aggregated_report"},
            scope=Scope(context="acct_1"),
        )
    assert gw.validate(
        "stripe-v2", "report_123", {"organization_report_granularity": "aggregated_report"}
    ) == {"organization_report_granularity": "aggregated_report"}


def test_runs_last_completed_and_cancel_are_not_supported(docs_gateway: Gateway) -> None:
    with pytest.raises(NotSupportedError, match="no list endpoint"):
        list(docs_gateway.runs("stripe-v2"))
    with pytest.raises(NotSupportedError):
        docs_gateway.last_completed("stripe-v2", "report_test_123")
    run = ReportRun(
        provider="stripe-v2",
        id="reprun_123",
        report_id="report_test_123",
        status=RunStatus.RUNNING,
        raw_status="running",
    )
    with pytest.raises(NotSupportedError, match="cancel"):
        docs_gateway.cancel(run)
