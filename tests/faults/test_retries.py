"""Scenario 1: retries. Transient failures are retried with capped, fully jittered backoff
that honours the server's Retry-After and Stripe-Should-Retry, within a budget; a run is
never created twice, whether the create request carries an idempotency key (Stripe) or not
(Zuora).

The timing rules are checked on the runtime with an injected sleep (what it would sleep is
recorded, nothing waits); the outcomes (how many requests, how many runs) through the
public Gateway against the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from report_gateway import Gateway, GatewayError
from report_gateway.errors import ProviderError, RunMayExistError
from report_gateway_sandbox import STRIPE_TEST_KEY, FaultRule, Sandbox
from reporting_runtime import RateLimitError, RetryConfig, RetryPolicy, ServerError, Timeout
from reporting_runtime import Transport as RuntimeTransport
from stripe_reporting_client import v1

TYPE_PATH = "/v1/reporting/report_types/*"


class Sleeps:
    """Records each sleep instead of sleeping, and advances a fake monotonic clock."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        self.now = 1000.0

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def v1_client(
    sandbox: Sandbox,
    sleeps: Sleeps,
    config: RetryConfig,
    rng: Callable[[], float] = lambda: 1.0,
) -> v1.Client:
    policy = RetryPolicy(config, sleep=sleeps.sleep, clock=sleeps.clock, rng=rng)
    return v1.Client(sandbox.stripe_base_url, api_key=STRIPE_TEST_KEY, retry=policy)


# -- backoff rules (runtime, injected sleep) ---------------------------------------------


def test_5xx_backoff_is_exponential_capped_and_fully_jittered(sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="server_error", path=TYPE_PATH, status=503, count=5))
    sleeps = Sleeps()
    config = RetryConfig(total=5, backoff_base=1.0, backoff_max=4.0, budget_seconds=1000)
    # rng() == 1.0 gives the ceiling of each full-jitter draw: the capped exponential itself.
    client = v1_client(sandbox, sleeps, config)
    report_type = client.retrieve_report_type("balance.summary.1")
    assert report_type.id == "balance.summary.1"
    assert sleeps.slept == [1.0, 2.0, 4.0, 4.0, 4.0]

    # With a real random source every delay lies in [0, ceiling] and they are not all equal.
    sandbox.configure(faults=[FaultRule(kind="server_error", path=TYPE_PATH, count=5)])
    jittered = Sleeps()
    import random

    client = v1_client(sandbox, jittered, config, rng=random.Random(7).random)
    client.retrieve_report_type("balance.summary.1")
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(jittered.slept) == 5
    assert all(0 <= s <= c for s, c in zip(jittered.slept, ceilings, strict=True))
    assert jittered.slept != ceilings


def test_429_waits_the_retry_after_seconds(sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="rate_limit", path=TYPE_PATH, retry_after=7, count=2))
    sleeps = Sleeps()
    client = v1_client(sandbox, sleeps, RetryConfig(backoff_base=0.1, budget_seconds=1000))
    client.retrieve_report_type("balance.summary.1")
    assert sleeps.slept == [7.0, 7.0]


def test_429_waits_until_the_retry_after_http_date(sandbox: Sandbox) -> None:
    sandbox.add_fault(
        FaultRule(
            kind="rate_limit", path=TYPE_PATH, retry_after=30, retry_after_http_date=True, count=1
        )
    )
    sleeps = Sleeps()
    client = v1_client(sandbox, sleeps, RetryConfig(backoff_base=0.1, budget_seconds=1000))
    client.retrieve_report_type("balance.summary.1")
    # An HTTP date has whole seconds: the wait is the date minus now, not the backoff.
    assert len(sleeps.slept) == 1
    assert 27.0 <= sleeps.slept[0] <= 30.0


def test_stripe_should_retry_false_forbids_a_retry(sandbox: Sandbox) -> None:
    sandbox.add_fault(
        FaultRule(kind="server_error", path=TYPE_PATH, status=503, should_retry=False)
    )
    sleeps = Sleeps()
    client = v1_client(sandbox, sleeps, RetryConfig(budget_seconds=1000))
    with pytest.raises(ServerError) as caught:
        client.retrieve_report_type("balance.summary.1")
    assert caught.value.status == 503
    assert sleeps.slept == []
    assert sandbox.stats()["requests"]["retrieve_report_type"] == 1


def test_stripe_should_retry_true_forces_a_retry_of_any_status(sandbox: Sandbox) -> None:
    # 400 is never retried on its own; the server's explicit "true" wins.
    sandbox.add_fault(
        FaultRule(kind="server_error", path=TYPE_PATH, status=400, should_retry=True, count=1)
    )
    sleeps = Sleeps()
    client = v1_client(sandbox, sleeps, RetryConfig(budget_seconds=1000))
    assert client.retrieve_report_type("balance.summary.1").id == "balance.summary.1"
    assert len(sleeps.slept) == 1
    assert sandbox.stats()["requests"]["retrieve_report_type"] == 2


def test_attempt_budget_bounds_the_retries(sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="server_error", path=TYPE_PATH, status=502))
    sleeps = Sleeps()
    client = v1_client(sandbox, sleeps, RetryConfig(total=3, budget_seconds=1000))
    with pytest.raises(ServerError) as caught:
        client.retrieve_report_type("balance.summary.1")
    assert caught.value.status == 502
    assert sandbox.stats()["requests"]["retrieve_report_type"] == 4  # 1 + 3 retries
    assert len(sleeps.slept) == 3


def test_time_budget_stops_a_retry_that_would_end_past_it(sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="rate_limit", path=TYPE_PATH, retry_after=8))
    sleeps = Sleeps()
    client = v1_client(sandbox, sleeps, RetryConfig(total=10, budget_seconds=20))
    with pytest.raises(RateLimitError) as caught:
        client.retrieve_report_type("balance.summary.1")
    # Two waits of 8 s fit in 20 s; a third would end at 24 s, so it is not started.
    assert sleeps.slept == [8.0, 8.0]
    assert sandbox.stats()["requests"]["retrieve_report_type"] == 3
    assert caught.value.retry_after == 8.0


# -- outcomes through the Gateway ----------------------------------------------------------


@pytest.mark.parametrize("provider", ["stripe", "stripe-v2", "zuora"])
@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(kind="server_error", status=503, count=2),
        FaultRule(kind="server_error", status=500, count=1),
        FaultRule(kind="rate_limit", retry_after=0.05, count=2),
        FaultRule(kind="drop_connection", after_bytes=0, count=2),
    ],
    ids=["503", "500", "429", "connection-reset"],
)
def test_reads_survive_transient_faults(
    provider: str, fault: FaultRule, sandbox: Sandbox, gateway: Gateway, kit: Any
) -> None:
    report_id, params = kit.REPORTS[provider]
    run = gateway.start(provider, report_id, params)
    fault.path = kit.GET_RUN_PATH[provider]
    fault.method = "GET"
    sandbox.add_fault(fault)
    again = gateway.get(provider, run.id)
    assert again.id == run.id
    assert sandbox.stats()["faults_injected"]
    assert sandbox.stats()["runs_created"][provider] == 1


def test_exhausted_retries_raise_a_provider_error_with_status_and_request_id(
    sandbox: Sandbox, gateway: Gateway, kit: Any
) -> None:
    report_id, params = kit.REPORTS["zuora"]
    run = gateway.start("zuora", report_id, params)
    sandbox.add_fault(FaultRule(kind="server_error", path=kit.GET_RUN_PATH["zuora"], status=503))
    with pytest.raises(ProviderError) as caught:
        gateway.get("zuora", run.id)
    assert caught.value.status == 503
    assert caught.value.request_id
    assert "503" in str(caught.value)
    # FAST_RETRY allows 4 retries after the first attempt.
    assert sandbox.stats()["requests"]["get_report_run"] == 5


@pytest.mark.parametrize("provider", ["stripe", "stripe-v2"])
def test_stripe_create_with_lost_response_creates_exactly_one_run(
    provider: str, sandbox: Sandbox, gateway: Gateway, kit: Any
) -> None:
    """The server creates the run, then the connection drops before the answer arrives."""
    sandbox.add_fault(
        FaultRule(
            kind="drop_connection",
            path=kit.CREATE_PATH[provider],
            method="POST",
            after_bytes=0,
            count=2,
        )
    )
    report_id, params = kit.REPORTS[provider]
    run = gateway.start(provider, report_id, params)
    creates = kit.requests_to(sandbox, "create_report_run", provider)
    assert len(creates) == 3
    keys = {kit.header(entry, "Idempotency-Key") for entry in creates}
    assert len(keys) == 1
    assert None not in keys
    assert sandbox.stats()["runs_created"][provider] == 1
    assert gateway.get(provider, run.id).id == run.id


@pytest.mark.parametrize("provider", ["stripe", "stripe-v2"])
def test_stripe_create_that_timed_out_creates_exactly_one_run(
    provider: str, sandbox: Sandbox, make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    """The answer is late (the run exists): the read times out and the retry is replayed."""
    transport = RuntimeTransport(timeout=Timeout(connect=5, read=0.3))
    gateway = make_gateway(transport=transport)
    sandbox.add_fault(
        FaultRule(
            kind="latency",
            path=kit.CREATE_PATH[provider],
            method="POST",
            latency=0.8,
            phase="response",
            count=1,
        )
    )
    report_id, params = kit.REPORTS[provider]
    try:
        gateway.start(provider, report_id, params)
    finally:
        transport.close()
    creates = kit.requests_to(sandbox, "create_report_run", provider)
    assert len({kit.header(entry, "Idempotency-Key") for entry in creates}) == 1
    assert sandbox.stats()["runs_created"][provider] == 1


def test_idempotency_key_given_by_the_caller_reuses_the_run(
    sandbox: Sandbox, gateway: Gateway, kit: Any
) -> None:
    """A job restarted after a crash passes its own key again and gets the same run."""
    report_id, params = kit.REPORTS["stripe"]
    first = gateway.start("stripe", report_id, params, idempotency_key="nightly-2024-01-01")
    second = gateway.start("stripe", report_id, params, idempotency_key="nightly-2024-01-01")
    assert first.id == second.id
    assert sandbox.stats()["runs_created"]["stripe"] == 1


def test_zuora_run_post_is_never_resent_and_the_run_is_found(
    sandbox: Sandbox, gateway: Gateway, kit: Any
) -> None:
    """No idempotency key at Zuora: after a lost answer the plugin looks for the run."""
    sandbox.add_fault(
        FaultRule(
            kind="drop_connection",
            path=kit.CREATE_PATH["zuora"],
            method="POST",
            after_bytes=0,
            count=1,
        )
    )
    report_id, params = kit.REPORTS["zuora"]
    run = gateway.start("zuora", report_id, params)
    assert sandbox.stats()["requests"]["run_report"] == 1
    assert sandbox.stats()["runs_created"]["zuora"] == 1
    assert run.report_id == report_id
    assert run.id  # the run the lost POST created, found by report and start time


@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(kind="drop_connection", after_bytes=0, count=1),
        FaultRule(kind="server_error", status=503, count=1),
    ],
    ids=["lost-answer", "503"],
)
def test_zuora_ambiguous_create_raises_run_may_exist_never_two_runs(
    fault: FaultRule, sandbox: Sandbox, make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    """The run (if any) is still going when the lookup gives up: say a run may exist."""
    sandbox.configure(run_seconds=600)
    gateway = make_gateway({"zuora": {"create_lookup_seconds": 0.3}})
    fault.path = kit.CREATE_PATH["zuora"]
    fault.method = "POST"
    sandbox.add_fault(fault)
    report_id, params = kit.REPORTS["zuora"]
    with pytest.raises(RunMayExistError) as caught:
        gateway.start("zuora", report_id, params)
    assert isinstance(caught.value, GatewayError)
    assert report_id in str(caught.value)
    assert "may exist" in str(caught.value)
    assert sandbox.stats()["requests"]["run_report"] == 1
    assert sandbox.stats()["runs_created"]["zuora"] <= 1
