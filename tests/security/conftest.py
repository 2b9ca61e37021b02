"""A sandbox that accepts planted secrets, and gateways that use them.

The secrets are distinctive strings that occur nowhere else, so finding one in any captured
output (logs, reprs, messages, command output, headers sent to the wrong place) is a leak.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from report_gateway import Gateway
from report_gateway_sandbox import ZUORA_ACCESS_KEY_ID, Sandbox, SandboxConfig
from reporting_runtime import RetryConfig

#: Accepted by the sandbox (any sk_test_ key is).
STRIPE_SECRET = "sk_test_PLANTEDstripeSecret4f9c2e7a1b"
#: A wrong key: rejected with 401, and just as secret.
STRIPE_WRONG = "sk_live_PLANTEDwrongKey8d3b6f0c2a"
ZUORA_SECRET = "PLANTED-zuora-password-5e1a9c"
ZUORA_WRONG = "PLANTED-wrong-zuora-password-77b2"
SECRETS = (STRIPE_SECRET, STRIPE_WRONG, ZUORA_SECRET, ZUORA_WRONG)

FAST_RETRY = RetryConfig(total=2, backoff_base=0.01, backoff_max=0.05, budget_seconds=10.0)

REPORTS: dict[str, tuple[str, dict[str, Any]]] = {
    "stripe": (
        "balance.summary.1",
        {"interval_start": 1_700_000_000, "interval_end": 1_700_086_400},
    ),
    "stripe-v2": (
        "report_balance_summary",
        {"interval_start": "2024-01-01T00:00:00Z", "interval_end": "2024-01-02T00:00:00Z"},
    ),
    "zuora": ("ff8080816293d35b0162bcb3e7780a75", {"viewType": "Summary"}),
}


def leaked_forms(secret: str) -> list[str]:
    """The secret as written, and as it would appear inside a Basic or base64 blob."""
    forms = [secret]
    for blob in (secret, f"{secret}:", f":{secret}"):
        forms.append(base64.b64encode(blob.encode()).decode().rstrip("="))
    return forms


def assert_no_secret(texts: Iterable[str], where: str = "output") -> None:
    for text in texts:
        for secret in SECRETS:
            for form in leaked_forms(secret):
                assert form not in text, f"a planted secret leaked into {where}: ...{form[:12]}"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    config = SandboxConfig(run_seconds=0.2, result_rows=200, zuora_secret_access_key=ZUORA_SECRET)
    with Sandbox(config) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Iterator[Sandbox]:
    sandbox_server.configure(faults=[], run_seconds=0.2, result_rows=200)
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.configure(faults=[])


def settings_for(sandbox: Sandbox, *, wrong: bool = False) -> dict[str, dict[str, Any]]:
    stripe_key = STRIPE_WRONG if wrong else STRIPE_SECRET
    return {
        "stripe": {
            "api_key": stripe_key,
            "base_url": sandbox.stripe_base_url,
            "files_base_url": sandbox.files_base_url,
        },
        "stripe-v2": {"api_key": stripe_key, "base_url": sandbox.stripe_base_url},
        "zuora": {
            "api_access_key_id": ZUORA_ACCESS_KEY_ID,
            "api_secret_access_key": ZUORA_WRONG if wrong else ZUORA_SECRET,
            "base_url": sandbox.zuora_base_url,
        },
    }


@pytest.fixture
def make_gateway(sandbox: Sandbox, tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    built: list[Gateway] = []

    def build(
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        wrong: bool = False,
        **kwargs: Any,
    ) -> Gateway:
        merged = settings_for(sandbox, wrong=wrong)
        for provider, values in (settings or {}).items():
            merged[provider] = {**merged[provider], **values}
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("environ", {"XDG_CONFIG_HOME": str(tmp_path / "config-home")})
        gateway = Gateway(merged, **kwargs)
        built.append(gateway)
        return gateway

    yield build
    for gateway in built:
        gateway.close()


class Kit:
    SECRETS = SECRETS
    STRIPE_SECRET = STRIPE_SECRET
    STRIPE_WRONG = STRIPE_WRONG
    ZUORA_SECRET = ZUORA_SECRET
    ZUORA_WRONG = ZUORA_WRONG
    REPORTS = REPORTS
    assert_no_secret = staticmethod(assert_no_secret)
    leaked_forms = staticmethod(leaked_forms)
    settings_for = staticmethod(settings_for)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit
