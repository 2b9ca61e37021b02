"""``report-gateway listen`` as a user runs it: a process that prints where it listens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from report_gateway_stripe.webhooks import sign

from .conftest import SECRET


def test_listen_serves_the_app_on_loopback_until_ctrl_c(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "XDG_CONFIG_HOME": str(tmp_path),
        "STRIPE_API_KEY": "sk_test_listen_example",
        "STRIPE_WEBHOOK_SECRET": f"whsec_retired_0001,{SECRET}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "report_gateway.cli", "listen", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        url = line.split()[2]
        assert url.endswith("/webhooks/stripe")

        body = json.dumps({"id": "evt_cli", "type": "reporting.report_type.updated"}).encode()
        good = urllib.request.Request(
            url, data=body, headers={"Stripe-Signature": sign(body, SECRET, int(time.time()))}
        )
        with urllib.request.urlopen(good) as response:
            assert response.status == 200
        forged = urllib.request.Request(
            url, data=body, headers={"Stripe-Signature": f"t={int(time.time())},v1=00"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged)
        assert refused.value.code == 400
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "no signature matches" in err
    assert "whsec_" not in err
