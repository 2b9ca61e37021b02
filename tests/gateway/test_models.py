"""Models and errors: what users print, compare and catch."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from report_gateway import (
    CredentialsError,
    Gateway,
    GatewayError,
    ParameterError,
    ProviderError,
    ReportRun,
    ResultFile,
    RunFailedError,
    RunMayExistError,
    RunStatus,
    Scope,
    WaitTimeoutError,
)
from report_gateway.provider import UnknownStatusWarning

MakeGateway = Callable[..., Gateway]


def test_terminal_statuses() -> None:
    assert {s for s in RunStatus if s.is_terminal} == {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.CANCELED,
    }


def test_scope_helpers() -> None:
    assert Scope().is_empty
    scope = Scope(entity_name="EU")
    assert not scope.is_empty
    assert scope.fields() == {"entity_name": "EU"}


def test_raw_payload_and_presigned_url_stay_out_of_repr() -> None:
    result = ResultFile(url="https://files.invalid/x?X-Amz-Signature=SIGNED", size=3, raw={"a": 1})
    run = ReportRun(
        provider="p",
        id="r1",
        report_id="rep",
        status=RunStatus.SUCCEEDED,
        raw_status="ok",
        result=result,
        raw={"payload": "RAWPAYLOAD"},
    )
    text = repr(run)
    assert "SIGNED" not in text
    assert "RAWPAYLOAD" not in text
    assert "size=3" in text


def test_runs_compare_without_raw() -> None:
    def make(raw: dict[str, str]) -> ReportRun:
        return ReportRun(
            provider="p", id="r", report_id="x", status=RunStatus.RUNNING, raw_status="r", raw=raw
        )

    assert make({"a": "1"}) == make({"b": "2"})


def test_error_messages_say_what_to_do() -> None:
    run = ReportRun(
        provider="zuora",
        id="rr_1",
        report_id="rep",
        status=RunStatus.FAILED,
        raw_status="ERROR",
        error="Query timed out",
    )
    assert str(RunFailedError(run)) == "zuora run rr_1 (rep) failed [ERROR]: Query timed out"
    timeout = WaitTimeoutError("stripe", "frr_1", RunStatus.PENDING, elapsed=60)
    assert "still pending after 60s" in str(timeout)
    assert "report-gateway wait stripe frr_1" in str(timeout)
    assert isinstance(timeout, TimeoutError)
    param = ParameterError("viewType", "must be given", allowed=["Summary", "Detail"])
    assert str(param) == "parameter 'viewType': must be given (allowed: Summary, Detail)"
    creds = CredentialsError("stripe", ["api_key: env STRIPE_API_KEY"])
    assert "env STRIPE_API_KEY" in str(creds)
    assert all(isinstance(e, GatewayError) for e in (timeout, param, creds))


def test_run_may_exist_says_how_the_provider_can_check() -> None:
    default = RunMayExistError("stripe", "balance.summary.1", "ReadTimeoutError: no answer")
    assert str(default).endswith(
        "a run may exist: check `report-gateway runs stripe` before starting another"
    )
    assert "ReadTimeoutError: no answer" in str(default)
    # A provider without a runs listing says how to look instead; no listing is suggested.
    hinted = RunMayExistError(
        "zuora", "rep_1", "connection dropped", hint="check `report-gateway last zuora rep_1`"
    )
    assert str(hinted).endswith("a run may exist: check `report-gateway last zuora rep_1`")
    assert "report-gateway runs" not in str(hinted)
    assert hinted.hint == "check `report-gateway last zuora rep_1`"
    assert isinstance(hinted, GatewayError)


def test_provider_error_copies_support_fields() -> None:
    class FakeApiError(Exception):
        status = 429
        code = "rate_limited"
        request_id = "req_9"
        provider = "stripe"
        operation = "create_report_run"

    error = ProviderError(FakeApiError("stripe create_report_run: HTTP 429"))
    assert (error.status, error.code, error.request_id) == (429, "rate_limited", "req_9")
    assert str(error) == "stripe create_report_run: HTTP 429"


@pytest.fixture(scope="module")
def example_context(example_plugin: ModuleType) -> Any:
    gw = Gateway(
        {"example": {"token": "t"}},
        plugins=[example_plugin],
        load_entrypoints=False,
        environ={"XDG_CONFIG_HOME": "/nonexistent/report-gateway-tests"},
    )
    return gw.driver("example").context  # type: ignore[attr-defined]


@given(raw=st.text(max_size=30))
def test_any_status_word_maps_without_crashing(example_context: Any, raw: str) -> None:
    context = example_context
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStatusWarning)
        status = context.map_status(raw)
    assert isinstance(status, RunStatus)
    if raw.strip().lower() in {s.value for s in RunStatus}:
        assert status is RunStatus(raw.strip().lower())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("queued", RunStatus.PENDING),
        ("working", RunStatus.RUNNING),
        ("done", RunStatus.SUCCEEDED),
        ("error", RunStatus.FAILED),
        ("stopped", RunStatus.CANCELED),
        ("CANCELLED", RunStatus.CANCELED),
        ("Succeeded", RunStatus.SUCCEEDED),
    ],
)
def test_plugin_words_then_builtin_fallback(
    make_gateway: MakeGateway, raw: str, expected: RunStatus
) -> None:
    context = make_gateway().driver("example").context  # type: ignore[attr-defined]
    assert context.map_status(raw) is expected


def test_a_result_file_of_an_unknown_content_type_is_refused_naming_the_known_ones() -> None:
    from report_gateway.models import CONTENT_CSV, CONTENT_TSV_UTF16, CONTENT_ZIP, ResultFile

    with pytest.raises(ValueError, match="'json' is not one of 'csv', 'zip', 'tsv-utf16'"):
        ResultFile(content_type="json")
    for known in (CONTENT_CSV, CONTENT_ZIP, CONTENT_TSV_UTF16):
        assert ResultFile(content_type=known).content_type == known
