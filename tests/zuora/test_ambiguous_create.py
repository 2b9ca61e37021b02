"""Zuora's run POST has no idempotency key: it is sent once, and when its answer is lost the
plugin looks for the run it may have created instead of creating another one.

The sandbox counts the runs it creates and the requests it receives, so each test checks
"never two runs" directly.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from report_gateway import Gateway, ProviderError, RunMayExistError, RunStatus
from report_gateway_sandbox import FaultRule, Sandbox
from report_gateway_zuora.driver import ZuoraDriver
from reporting_runtime import ConnectError, ConnectTimeout, RetryConfig, Timeout

REPORT = "ff8080816293d35b0162bcb3e7780a75"
RUN_POST = "*/reportrun"
PARAMS = {"viewType": "Summary"}


def test_a_dropped_answer_finds_the_run_it_created(
    gw: Gateway, sandbox: Sandbox, counts: Any
) -> None:
    sandbox.configure(run_seconds=0.3)
    sandbox.add_fault(FaultRule(kind="drop_connection", path=RUN_POST, method="POST", count=1))
    run = gw.start("zuora", REPORT, PARAMS)
    assert run.status is RunStatus.SUCCEEDED
    assert run.report_id == REPORT
    assert run.parameters == PARAMS
    assert counts.requests("run_report") == 1
    assert counts.runs_created == 1
    assert len(list(gw.rows(run))) == 40


def test_a_run_still_going_raises_run_may_exist(
    make_gateway: Callable[..., Gateway],
    sandbox_settings: dict[str, Any],
    sandbox: Sandbox,
    counts: Any,
) -> None:
    gw = make_gateway({**sandbox_settings, "create_lookup_seconds": 0.5})
    sandbox.configure(run_seconds=30)
    sandbox.add_fault(FaultRule(kind="drop_connection", path=RUN_POST, method="POST", count=1))
    with pytest.raises(RunMayExistError) as caught:
        gw.start("zuora", REPORT, PARAMS)
    message = str(caught.value)
    assert "may exist" in message
    assert f"report-gateway last zuora {REPORT}" in message
    assert "report-gateway runs" not in message  # Zuora has no runs listing
    assert caught.value.hint is not None
    assert f"report-gateway last zuora {REPORT}" in caught.value.hint
    assert caught.value.report_id == REPORT
    assert caught.value.started_after is not None
    assert counts.requests("run_report") == 1
    assert counts.runs_created == 1
    assert counts.requests("get_last_completed_report_run") >= 1


def test_an_older_completed_run_is_not_mistaken_for_the_lost_one(
    make_gateway: Callable[..., Gateway],
    sandbox_settings: dict[str, Any],
    sandbox: Sandbox,
    counts: Any,
) -> None:
    gw = make_gateway({**sandbox_settings, "create_lookup_seconds": 0.5})
    sandbox.configure(run_seconds=0.2)
    old = gw.wait(gw.start("zuora", REPORT, PARAMS), poll_interval=0.05)
    sandbox.configure(run_seconds=30)
    sandbox.add_fault(FaultRule(kind="drop_connection", path=RUN_POST, method="POST", count=1))
    with pytest.raises(RunMayExistError) as caught:
        gw.start("zuora", REPORT, PARAMS)
    assert old.id in str(caught.value)  # named as the last completed run, and rejected
    assert counts.runs_created == 2
    assert counts.requests("run_report") == 2


def test_a_server_error_on_the_post_is_not_retried(
    make_gateway: Callable[..., Gateway],
    sandbox_settings: dict[str, Any],
    sandbox: Sandbox,
    counts: Any,
) -> None:
    gw = make_gateway({**sandbox_settings, "create_lookup_seconds": 0.3})
    # 503 is in the retry statuses and GETs are retried through it...
    sandbox.add_fault(FaultRule(kind="server_error", path="*/reports/search", count=1))
    assert gw.search("zuora", "Customer report")
    assert counts.requests("search_reports") == 2
    # ...but a POST without an Idempotency-Key is sent once: nobody knows what it did.
    sandbox.add_fault(FaultRule(kind="server_error", path=RUN_POST, method="POST", count=1))
    with pytest.raises(RunMayExistError, match="ServerError"):
        gw.start("zuora", REPORT, PARAMS)
    assert counts.requests("run_report") == 1
    assert counts.runs_created == 0
    (post,) = counts.logged("run_report")
    assert "Idempotency-Key" not in post["headers"]


def test_a_read_timeout_on_the_post_finds_the_run(
    make_gateway: Callable[..., Gateway],
    sandbox_settings: dict[str, Any],
    sandbox: Sandbox,
    counts: Any,
) -> None:
    from reporting_runtime import Transport

    slow_reader = Transport(timeout=Timeout(connect=2, read=0.3))
    gw = make_gateway(sandbox_settings, transport=slow_reader)
    sandbox.configure(run_seconds=0.2)
    sandbox.add_fault(
        FaultRule(kind="latency", path=RUN_POST, method="POST", latency=1.0, phase="response")
    )
    run = gw.start("zuora", REPORT, PARAMS)
    assert run.status is RunStatus.SUCCEEDED
    assert counts.runs_created == 1
    slow_reader.close()


def test_a_garbled_success_answer_finds_the_run(gw: Gateway, sandbox: Sandbox, counts: Any) -> None:
    sandbox.configure(run_seconds=0.2)
    sandbox.add_fault(FaultRule(kind="malformed_json", path=RUN_POST, method="POST", count=1))
    run = gw.start("zuora", REPORT, PARAMS)
    assert run.status is RunStatus.SUCCEEDED
    assert counts.runs_created == 1


def test_a_connection_that_never_opened_is_reported_as_is(
    make_gateway: Callable[..., Gateway], sandbox_settings: dict[str, Any]
) -> None:
    """A connect timeout means nothing was sent: no lookup, no RunMayExistError."""
    gw = make_gateway(sandbox_settings)
    driver = gw.driver("zuora")
    assert isinstance(driver, ZuoraDriver)
    looked: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ConnectTimeout("zuora run_report: timed out connecting to x", provider="zuora")

    def latest(*args: Any, **kwargs: Any) -> Any:
        looked.append("latest")
        raise AssertionError("no lookup expected")

    driver.client.run_report = refuse  # type: ignore[method-assign]
    driver.client.get_last_completed_report_run = latest  # type: ignore[method-assign]
    with pytest.raises(ProviderError) as caught:
        gw.start("zuora", REPORT, PARAMS)
    assert isinstance(caught.value.cause, ConnectTimeout)
    assert looked == []


def test_a_refused_connection_fails_at_once_without_a_lookup(
    make_gateway: Callable[..., Gateway], sandbox_settings: dict[str, Any]
) -> None:
    """Nothing listens: the POST never left, so there is no run to look for (the lookup
    would stall for create_lookup_seconds and end in a misleading RunMayExistError)."""
    probe = socket.create_server(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    probe.close()
    gw = make_gateway(
        {**sandbox_settings, "base_url": closed, "create_lookup_seconds": 60},
        retry=RetryConfig(total=0),
    )
    driver = gw.driver("zuora")
    assert isinstance(driver, ZuoraDriver)
    looked: list[str] = []

    def latest(*args: Any, **kwargs: Any) -> Any:
        looked.append("latest")
        raise AssertionError("no lookup expected")

    driver.client.get_last_completed_report_run = latest  # type: ignore[method-assign]
    with pytest.raises(ProviderError) as caught:
        gw.start("zuora", REPORT, PARAMS)
    assert not isinstance(caught.value, RunMayExistError)
    assert isinstance(caught.value.cause, ConnectError)
    assert caught.value.cause.request_sent is False
    assert looked == []


def test_clock_skew_allowance_is_small() -> None:
    from report_gateway_zuora.driver import CLOCK_SKEW

    # Wide enough for a loopback or NTP-synced host, narrow enough not to adopt a run
    # someone started seconds before ours.
    assert timedelta(0) < CLOCK_SKEW <= timedelta(seconds=5)
