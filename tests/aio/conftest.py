"""AsyncGateway against the sandbox: a Gateway with the installed Stripe and Zuora plugins,
settings pointing at the session's sandbox, no environment or config file read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from report_gateway import Gateway
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox, SandboxConfig

V1_REPORT = "balance_change_from_activity.itemized.3"
V2_REPORT = "report_itemized_balance_change"
INTERVAL = {"interval_start": 1_700_000_000, "interval_end": 1_700_086_400}


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(run_seconds=0.3, result_rows=1200)


def settings_for(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    return {
        "stripe": {
            "api_key": STRIPE_TEST_KEY,
            "base_url": sandbox.stripe_base_url,
            "files_base_url": sandbox.stripe_base_url,
        },
        "stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sandbox.stripe_base_url},
    }


@pytest.fixture
def gateway(sandbox: Sandbox, tmp_path: Any) -> Iterator[Gateway]:
    gw = Gateway(settings_for(sandbox), environ={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    yield gw
    gw.close()
