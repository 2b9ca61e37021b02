"""Scenario 2: concurrency limits. Stripe v2's 429 ``report_run_rate_limit_exceeded`` makes
``start`` wait for a slot (bounded, logged) instead of failing; ``Gateway(max_active_runs=)``
keeps this process's own active runs under a cap per provider and key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from report_gateway import Gateway, RunLimitError, RunStatus
from report_gateway.errors import ProviderError
from report_gateway_sandbox import Sandbox


def test_v2_start_waits_for_a_slot_instead_of_failing(
    sandbox: Sandbox,
    make_gateway: Callable[..., Gateway],
    kit: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox.configure(v2_concurrency_limit=1, run_seconds=1.0)
    gateway = make_gateway({"stripe-v2": {"rate_limit_wait": 30}})
    report_id, params = kit.REPORTS["stripe-v2"]
    first = gateway.start("stripe-v2", report_id, params)
    with caplog.at_level(logging.INFO):
        second = gateway.start("stripe-v2", report_id, params)
    assert second.id != first.id
    creates = kit.requests_to(sandbox, "create_report_run", "stripe-v2")
    assert 429 in [entry["status"] for entry in creates]
    assert sandbox.stats()["runs_created"]["stripe-v2"] == 2
    # Every attempt of the second start carried the same idempotency key.
    assert len({kit.header(e, "Idempotency-Key") for e in creates[1:]}) == 1
    assert "slot" in caplog.text


def test_v2_slot_wait_is_bounded(
    sandbox: Sandbox, make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    sandbox.configure(v2_concurrency_limit=1, run_seconds=600)
    gateway = make_gateway({"stripe-v2": {"rate_limit_wait": 0.5}})
    report_id, params = kit.REPORTS["stripe-v2"]
    gateway.start("stripe-v2", report_id, params)
    with pytest.raises(ProviderError) as caught:
        gateway.start("stripe-v2", report_id, params)
    assert caught.value.status == 429
    assert caught.value.code == "report_run_rate_limit_exceeded"
    assert sandbox.stats()["runs_created"]["stripe-v2"] == 1


@pytest.mark.parametrize("provider", ["stripe", "stripe-v2", "zuora"])
def test_gateway_caps_its_own_active_runs(
    provider: str, sandbox: Sandbox, make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    sandbox.configure(run_seconds=0.6)
    gateway = make_gateway(max_active_runs={provider: 1}, slot_timeout=60)
    report_id, params = kit.REPORTS[provider]
    first = gateway.start(provider, report_id, params)
    # The second start holds back until the first run is seen finished.
    second = gateway.start(provider, report_id, params)
    assert gateway.get(provider, first.id).status is RunStatus.SUCCEEDED
    assert second.id != first.id
    assert sandbox.stats()["runs_created"][provider] == 2
    creates = [
        e for e in sandbox.stats()["request_log"] if e["method"] == "POST" and e["status"] == 200
    ]
    assert len(creates) == 2


def test_cap_is_shared_by_gateways_using_the_same_key_and_bounded(
    sandbox: Sandbox, make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    sandbox.configure(run_seconds=600)
    report_id, params = kit.REPORTS["zuora"]
    one = make_gateway(max_active_runs=1, slot_timeout=0.3)
    two = make_gateway(max_active_runs=1, slot_timeout=0.3)
    held = one.start("zuora", report_id, params)
    with pytest.raises(RunLimitError) as caught:
        two.start("zuora", report_id, params)
    assert held.id in str(caught.value)
    assert caught.value.active == (held.id,)
    assert sandbox.stats()["runs_created"]["zuora"] == 1
    # Another key is another budget.
    sandbox.configure(zuora_access_key_id="other-user@example.com")
    other = make_gateway(
        {"zuora": {"api_access_key_id": "other-user@example.com"}},
        max_active_runs=1,
        slot_timeout=0.3,
    )
    assert other.start("zuora", report_id, params).id != held.id


def test_a_failed_create_gives_its_slot_back(
    sandbox: Sandbox, make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    from report_gateway_sandbox import FaultRule

    gateway = make_gateway(max_active_runs={"stripe": 1}, slot_timeout=0.3)
    sandbox.add_fault(
        FaultRule(kind="server_error", path=kit.CREATE_PATH["stripe"], status=400, count=1)
    )
    report_id, params = kit.REPORTS["stripe"]
    with pytest.raises(ProviderError):
        gateway.start("stripe", report_id, params)
    assert gateway.start("stripe", report_id, params).id
