"""Stripe's own Python SDK works against the sandbox, unchanged, pointed at its address.

Both ways people use the SDK: the module-level API (``stripe.api_base``) and a
``StripeClient`` with base addresses. The network is blocked except loopback, so a request
the SDK sent anywhere but the sandbox would fail the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import stripe
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox, SandboxConfig

INTERVAL = {"interval_start": 1735689600, "interval_end": 1738368000}


@pytest.fixture(scope="module")
def stripe_sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(run_seconds=0.3, result_rows=4)) as sb:
        yield sb


@pytest.fixture
def module_api(stripe_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's global settings, pointed at the sandbox for one test and restored after."""
    monkeypatch.setattr(stripe, "api_key", STRIPE_TEST_KEY)
    monkeypatch.setattr(stripe, "api_base", stripe_sandbox.url)
    monkeypatch.setattr(stripe, "upload_api_base", stripe_sandbox.url)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    monkeypatch.setattr(stripe, "enable_telemetry", False)


def _until_settled(fetch: object, run_id: str) -> stripe.reporting.ReportRun:
    deadline = time.monotonic() + 10
    while True:
        run = fetch(run_id)  # type: ignore[operator]
        assert isinstance(run, stripe.reporting.ReportRun)
        if run.status != "pending" or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


@pytest.mark.usefixtures("module_api")
def test_module_api_runs_a_report() -> None:
    types = stripe.reporting.ReportType.list()
    assert "balance.summary.1" in {t.id for t in types.data}

    created = stripe.reporting.ReportRun.create(
        report_type="balance.summary.1", parameters=INTERVAL
    )
    assert created.object == "reporting.report_run"
    assert created.status == "pending"
    assert created.parameters.interval_start == INTERVAL["interval_start"]

    done = _until_settled(stripe.reporting.ReportRun.retrieve, created.id)
    assert done.status == "succeeded"
    assert done.result is not None
    assert done.result.object == "file"
    assert done.result.size > 0

    listed = stripe.reporting.ReportRun.list(limit=3)
    assert created.id in {r.id for r in listed.data}
    assert len(listed.data) <= 3


@pytest.mark.usefixtures("module_api")
def test_module_api_errors_are_the_sdks_own() -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe.reporting.ReportRun.retrieve("frr_doesnotexist")
    assert missing.value.http_status == 404
    assert missing.value.request_id
    with pytest.raises(stripe.InvalidRequestError) as invalid:
        stripe.reporting.ReportRun.create(report_type="balance.summary.1", parameters={})
    assert invalid.value.http_status == 400
    with pytest.raises(stripe.AuthenticationError):
        stripe.reporting.ReportType.list(api_key="sk_live_not_accepted_here")


def test_stripe_client_runs_a_report(stripe_sandbox: Sandbox) -> None:
    client = stripe.StripeClient(
        STRIPE_TEST_KEY,
        base_addresses={"api": stripe_sandbox.url, "files": stripe_sandbox.url},
        max_network_retries=0,
    )
    # `client.v1` since stripe 12; the unprefixed services before it (now deprecated).
    reporting = getattr(client, "v1", client).reporting
    report_type = reporting.report_types.retrieve("balance.summary.1")
    assert report_type.data_available_end >= report_type.data_available_start
    created = reporting.report_runs.create(
        params={"report_type": "balance.summary.1", "parameters": INTERVAL}
    )
    done = _until_settled(reporting.report_runs.retrieve, created.id)
    assert done.status == "succeeded"
    assert created.id in {r.id for r in reporting.report_runs.list(params={"limit": 5})}
