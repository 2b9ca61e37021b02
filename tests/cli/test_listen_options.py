"""``report-gateway listen --base-url``: a v2 thin event names only its run, which the
listener fetches from the API the user points it at (a sandbox, here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from .conftest import needs_stripe

SECRET = "whsec_cli_listen_test_secret"


@needs_stripe
def test_listen_takes_base_url_and_fetches_a_v2_run_from_it(sandbox: Any, tmp_path: Path) -> None:
    from report_gateway import Gateway
    from report_gateway.journal import Journal
    from report_gateway_sandbox import STRIPE_TEST_KEY
    from report_gateway_stripe.webhooks import sign

    journal = tmp_path / "journal.sqlite3"
    settings = {"stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sandbox.stripe_base_url}}
    with Gateway(settings, journal=str(journal)) as gw:
        run = gw.start(
            "stripe-v2",
            "report_balance_summary",
            {"interval_start": "2025-01-01", "interval_end": "2025-02-01"},
        )
    with Gateway(settings, journal=None) as unjournaled:
        unjournaled.wait(run)  # finished at the provider; the journal still says it started
    env = {
        "PATH": os.environ.get("PATH", ""),
        "XDG_CONFIG_HOME": str(tmp_path),
        "STRIPE_API_KEY": STRIPE_TEST_KEY,
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "REPORT_GATEWAY_JOURNAL": str(journal),
        "REPORT_GATEWAY_LOAD_PLUGINS": "stripe",
    }
    argv = ["listen", "--port", "0", "--base-url", sandbox.stripe_base_url]
    process = subprocess.Popen(
        [sys.executable, "-m", "report_gateway.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line + process.stderr.read()
        url = line.split()[2]
        event = {
            "id": "evt_cli_listen_v2",
            "object": "v2.core.event",
            "type": "v2.reporting.report_run.succeeded",
            "related_object": {
                "id": run.id,
                "type": "v2.reporting.report_run",
                "url": f"/v2/reporting/report_runs/{run.id}",
            },
            "context": None,
        }
        body = json.dumps(event).encode()
        request = urllib.request.Request(
            url, data=body, headers={"Stripe-Signature": sign(body, SECRET, int(time.time()))}
        )
        with urllib.request.urlopen(request) as response:  # 502 if fetched from elsewhere
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    written = Journal(journal)
    try:
        (entry,) = written.entries()
        assert (entry.run_id, entry.state) == (run.id, "succeeded")  # written by the listener
    finally:
        written.close()


@needs_stripe
def test_listen_on_a_busy_port_says_which_port(
    provider_cli: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    import socket

    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(tmp_path / "j.sqlite3"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = provider_cli("listen", "--port", port)
    assert result.code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.err
    assert "choose another --port" in result.err
    assert "unexpected" not in result.err


@needs_stripe
def test_listen_refuses_a_provider_that_sends_no_webhooks(
    provider_cli: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    import report_gateway.webhooks

    def no_server(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("listen served instead of refusing --provider zuora")

    monkeypatch.setattr(report_gateway.webhooks, "make_server", no_server)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(tmp_path / "j.sqlite3"))
    result = provider_cli("listen", "--port", "0", "--provider", "zuora")
    assert result.code == 2
    assert "--provider zuora: no webhooks for it" in result.err
    assert "stripe, stripe-v2" in result.err
