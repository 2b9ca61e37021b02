"""A sandbox with quick runs and gateways aimed at it, for the data tools' tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from report_gateway import Gateway, ReportRun
from report_gateway_sandbox import (
    STRIPE_TEST_KEY,
    ZUORA_ACCESS_KEY_ID,
    ZUORA_SECRET_ACCESS_KEY,
    Sandbox,
    SandboxConfig,
)
from reporting_runtime import RetryConfig

REPORTS: dict[str, tuple[str, dict[str, Any]]] = {
    "stripe": ("balance.summary.1", {"interval_start": "2025-01-01", "interval_end": "2025-02-01"}),
    "stripe-v2": (
        "report_balance_summary",
        {"interval_start": "2025-01-01T00:00:00Z", "interval_end": "2025-02-01T00:00:00Z"},
    ),
    "zuora": ("ff8080816293d35b0162bcb3e7780a75", {"viewType": "Summary"}),
}
RESULT_PATH = {
    "stripe": "/v1/files/*/contents",
    "stripe-v2": "/_files/v2/*",
    "zuora": "/api/rest/v1/reportruns/export/*",
}


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(
        run_seconds=0.1,
        result_rows=300,
        zuora_access_key_id=ZUORA_ACCESS_KEY_ID,
        zuora_secret_access_key=ZUORA_SECRET_ACCESS_KEY,
    )


@pytest.fixture
def gateway(sandbox: Sandbox, tmp_path: Path) -> Iterator[Gateway]:
    gw = Gateway(
        {
            "stripe": {
                "api_key": STRIPE_TEST_KEY,
                "base_url": sandbox.url,
                "files_base_url": sandbox.url,
            },
            "stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sandbox.url},
            "zuora": {
                "api_access_key_id": ZUORA_ACCESS_KEY_ID,
                "api_secret_access_key": ZUORA_SECRET_ACCESS_KEY,
                "base_url": f"{sandbox.url}/api/rest/v1",
            },
        },
        retry=RetryConfig(total=2, backoff_base=0.01, backoff_max=0.05, budget_seconds=10.0),
        environ={"XDG_CONFIG_HOME": str(tmp_path / "config-home")},
        journal=None,
    )
    yield gw
    gw.close()


@pytest.fixture
def finished(gateway: Gateway) -> Callable[[str], ReportRun]:
    def finish(provider: str) -> ReportRun:
        report_id, parameters = REPORTS[provider]
        run = gateway.start(provider, report_id, parameters)
        return gateway.wait(run, timeout=60, poll_interval=0.05, max_interval=0.2)

    return finish
