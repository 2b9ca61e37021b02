"""A v1 result download carries the scope's headers, all of them, and Range when resuming.

The download goes through the generated ``download_file_contents`` with ``extra_headers``:
the Stripe-Account of the scope, a third-party scope hook's own headers and, on a resumed
download, the Range, all on the request that reaches the files host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import report_gateway_stripe.plugin as stripe_plugin
from report_gateway import Gateway, Scope, hookimpl
from report_gateway_sandbox import STRIPE_TEST_KEY, FaultRule, Sandbox, SandboxConfig

WEEK = {"interval_start": "2025-01-01", "interval_end": "2025-01-08T00:00:00Z"}
ACCOUNT = "acct_1Tracing"


class _TracingScope:
    @hookimpl(tryfirst=True)
    def report_gateway_scope_headers(self, provider: str, scope: Scope) -> dict[str, str] | None:
        if provider != "stripe" or not scope.account:
            return None
        return {"Stripe-Account": scope.account, "X-Trace": "t-1"}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(run_seconds=0.2, seed=7)) as sb:
        yield sb


def _header(entry: dict[str, Any], name: str) -> str | None:
    return next((str(v) for k, v in entry["headers"].items() if k.lower() == name.lower()), None)


def test_resumed_download_sends_range_beside_the_scope_headers(
    make_gateway: Callable[..., Gateway], sandbox: Sandbox, tmp_path: Path
) -> None:
    settings = {
        "stripe": {
            "api_key": STRIPE_TEST_KEY,
            "base_url": sandbox.stripe_base_url,
            "files_base_url": sandbox.files_base_url,
        }
    }
    gw = make_gateway(settings, plugins=[stripe_plugin, _TracingScope()])
    sandbox.configure(result_bytes=3_000_000)  # whole chunks arrive before the cut
    run = gw.start("stripe", "balance.summary.1", WEEK, scope=Scope(account=ACCOUNT))
    done = gw.wait(run, timeout=30, poll_interval=0.05, max_interval=0.2)
    sandbox.add_fault(
        FaultRule(kind="drop_connection", path="/v1/files/*", count=1, after_bytes=2_500_000)
    )
    gw.download(done, tmp_path / "resumed.csv")

    log: list[dict[str, Any]] = sandbox.stats()["request_log"]
    first, retry = [e for e in log if e["operation"] == "download_file_contents"][-2:]
    for entry in (first, retry):
        assert _header(entry, "Stripe-Account") == ACCOUNT
        assert _header(entry, "X-Trace") == "t-1"
    assert _header(first, "Range") is None
    assert (_header(retry, "Range") or "").startswith("bytes=")
    assert retry["status"] == 206
