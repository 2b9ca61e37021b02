"""The sandbox's webhook events: sent once a run finishes, signed as Stripe signs them.

The receiver here is a bare stdlib server; Stripe's own SDK checks the signatures, so the
sandbox cannot agree with the gateway on a scheme Stripe does not use.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe
from report_gateway_sandbox import STRIPE_WEBHOOK_SECRET, FaultRule, Sandbox, SandboxConfig

from .conftest import Http, create_v1, create_v2, finished_v1, wait_until

SECRET = "whsec_sandbox_test_3c9e"


class Receiver:
    """Collects deliveries; answers `status` to each."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.deliveries.append((dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stripe"

    def events(self, secret: str = SECRET) -> list[Any]:
        """Every delivery's event, each checked by Stripe's SDK (raises on a bad signature)."""
        for headers, body in self.deliveries:
            stripe.WebhookSignature.verify_header(
                body.decode(), headers["Stripe-Signature"], secret
            )
        return [json.loads(body) for _, body in self.deliveries]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    own = Receiver()
    thread = threading.Thread(target=own.server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield own
    own.server.shutdown()
    own.server.server_close()
    thread.join(timeout=5)


def test_a_finished_v1_run_sends_the_whole_event(
    client: Http, sandbox: Sandbox, receiver: Receiver
) -> None:
    sandbox.configure(webhook_url=receiver.url, webhook_secret=SECRET)
    run = create_v1(client, **{"Stripe-Account": "acct_connected_9"}).json()

    wait_until(lambda: receiver.deliveries)
    (event,) = receiver.events()

    assert event["type"] == "reporting.report_run.succeeded"
    assert event["object"] == "event"
    assert event["account"] == "acct_connected_9"
    snapshot = event["data"]["object"]
    assert snapshot["id"] == run["id"]
    assert snapshot["status"] == "succeeded"
    assert snapshot == finished_v1(client, run["id"], {"Stripe-Account": "acct_connected_9"})
    assert sandbox.stats()["webhooks"]["sent"] == {"reporting.report_run.succeeded": 1}


def test_a_finished_v2_run_sends_a_thin_event(
    client: Http, sandbox: Sandbox, receiver: Receiver
) -> None:
    sandbox.configure(webhook_url=receiver.url, webhook_secret=SECRET)
    sandbox.add_fault(FaultRule(kind="fail_run", path="/v2/reporting/report_runs", count=1))
    run = create_v2(client, **{"Stripe-Context": "acct_ctx_1"}).json()

    wait_until(lambda: receiver.deliveries)
    (event,) = receiver.events()

    assert event["type"] == "v2.reporting.report_run.failed"
    assert event["object"] == "v2.core.event"
    assert event["context"] == "acct_ctx_1"
    assert event["related_object"] == {
        "id": run["id"],
        "type": "v2.reporting.report_run",
        "url": f"/v2/reporting/report_runs/{run['id']}",
    }
    assert "data" not in event  # thin: no snapshot


def test_no_url_no_events(client: Http, sandbox: Sandbox, receiver: Receiver) -> None:
    create_v1(client)
    assert sandbox.app.state.webhooks.pending == 0
    assert SandboxConfig().webhook_secret == STRIPE_WEBHOOK_SECRET
    assert "whsec_" not in json.dumps(sandbox.config.to_dict()) + repr(sandbox.config)


def test_a_failing_receiver_is_retried_then_counted(
    client: Http, sandbox: Sandbox, receiver: Receiver
) -> None:
    receiver.status = 503
    sandbox.configure(webhook_url=receiver.url, webhook_secret=SECRET)
    create_v1(client)

    failed = wait_until(lambda: sandbox.stats()["webhooks"]["failed"])

    assert failed == {"reporting.report_run.succeeded": 1}
    assert len(receiver.deliveries) == 3
    assert len({json.loads(body)["id"] for _, body in receiver.deliveries}) == 1
    receiver.events()  # every attempt signed


def test_reset_drops_the_events_not_sent_yet(client: Http, sandbox: Sandbox) -> None:
    sandbox.configure(webhook_url="http://127.0.0.1:9/never", run_seconds=3600)
    create_v1(client)
    assert sandbox.app.state.webhooks.pending == 1
    sandbox.reset()
    assert sandbox.app.state.webhooks.pending == 0


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="webhook_url"):
        SandboxConfig(webhook_url="file:///etc/passwd")
