"""Fixtures for webhooks: a gateway aimed at the sandbox, the listener app, signed bodies.

Runs take long in the sandbox here and waits poll rarely, so a wait that ends quickly can
only have been ended by an event; each test counts the sandbox's requests to prove it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import report_gateway_stripe.plugin as stripe_plugin
from report_gateway import Gateway
from report_gateway.webhooks import WebhookApp, make_server
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox, SandboxConfig
from report_gateway_stripe.webhooks import sign

SECRET = "whsec_test_primary_5b1c0e"
OLD_SECRET = "whsec_test_rotated_out_77d2"
WEEK = {"interval_start": "2025-01-01", "interval_end": "2025-01-08T00:00:00Z"}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(run_seconds=0.3, result_rows=10, seed=3)) as sb:
        yield sb


def settings_for(sb: Sandbox, **stripe: Any) -> dict[str, dict[str, Any]]:
    return {
        "stripe": {
            "api_key": STRIPE_TEST_KEY,
            "base_url": sb.stripe_base_url,
            "files_base_url": sb.files_base_url,
            "webhook_secret": SECRET,
            **stripe,
        },
        "stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sb.stripe_base_url},
    }


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """No STRIPE_* variables, no config file: only what a test passes counts."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config-home")}


@pytest.fixture
def gw(sandbox: Sandbox, environ: dict[str, str]) -> Iterator[Gateway]:
    with Gateway(
        settings_for(sandbox), plugins=[stripe_plugin], load_entrypoints=False, environ=environ
    ) as gateway:
        yield gateway


@pytest.fixture
def app(gw: Gateway) -> WebhookApp:
    return WebhookApp(gw)


@pytest.fixture
def listener(app: WebhookApp) -> Iterator[str]:
    """The app served on a free loopback port; yields its webhook URL."""
    server = make_server(app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/stripe"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def signed(
    event: dict[str, Any], secret: str = SECRET, at: float | None = None
) -> tuple[bytes, str]:
    """The body and Stripe-Signature header Stripe would send for ``event``."""
    body = json.dumps(event).encode()
    return body, sign(body, secret, int(time.time() if at is None else at))


def run_gets(sb: Sandbox, run_id: str) -> int:
    """How many times the sandbox was asked for this run (v1 or v2 retrieve)."""
    return sum(
        1
        for entry in sb.stats()["request_log"]
        if entry["method"] == "GET" and entry["path"].endswith(f"/report_runs/{run_id}")
    )


class Waiter:
    """``gw.wait`` in a thread, polling rarely: it can end fast only through an event."""

    def __init__(self, gw: Gateway, run: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def target() -> None:
            try:
                self.result = gw.wait(run, timeout=120, poll_interval=60)
            except BaseException as exc:  # handed to the test
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def join(self) -> Any:
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the wait did not end after the event"
        if self.error is not None:
            raise self.error
        return self.result


MakeWaiter = Callable[[Gateway, Any], Waiter]
