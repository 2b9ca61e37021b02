"""The sandbox in its own process (`python -m report_gateway_sandbox`), so the server never
shares a GIL with the client being measured, plus its control endpoints and run setup."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from report_gateway_sandbox import STRIPE_TEST_KEY, ZUORA_ACCESS_KEY_ID, ZUORA_SECRET_ACCESS_KEY

ZUORA_PREFIX = "/api/rest/v1"
#: Inside the sandbox's default data window for every provider.
INTERVAL = (1_700_000_000, 1_700_086_400)
V1_REPORT = "balance_change_from_activity.itemized.3"
V2_REPORT = "report_itemized_balance_change"
ZUORA_REPORT = "ff8080816293d35b0162bcb3e7780a76"  # Invoice detail


class SandboxProcess:
    """``with SandboxProcess(log) as sb:`` a sandbox on a free loopback port."""

    def __init__(self, log: Path, **options: Any) -> None:
        self._log_path = log
        self._options = options
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self.url = ""

    def __enter__(self) -> SandboxProcess:
        args = [sys.executable, "-m", "report_gateway_sandbox", "--port", "0"]
        for name, value in self._options.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        self._log = self._log_path.open("w")
        self._proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1
        )
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if "serving on" in line:
                self.url = line.split("serving on", 1)[1].strip()
                break
        else:
            raise RuntimeError(f"sandbox did not start; see {self._log_path}")
        # The remaining banner lines fit the pipe buffer; nothing else goes to stdout.
        return self

    def __exit__(self, *exc_info: object) -> None:
        proc = self._proc
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()

    # -- control ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def configure(self, **changes: Any) -> None:
        self._call("POST", "/_sandbox/config", changes)

    def reset(self) -> None:
        self._call("POST", "/_sandbox/reset", {})

    def stats(self, *, log: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "GET", "/_sandbox/stats" + ("" if log else "?log=false")
        )
        return result

    # -- what the clients need -------------------------------------------------------------

    def settings(self) -> dict[str, dict[str, Any]]:
        return {
            "stripe": {
                "api_key": STRIPE_TEST_KEY,
                "base_url": self.url,
                "files_base_url": self.url,
            },
            "stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": self.url},
            "zuora": {
                "api_access_key_id": ZUORA_ACCESS_KEY_ID,
                "api_secret_access_key": ZUORA_SECRET_ACCESS_KEY,
                "base_url": self.url + ZUORA_PREFIX,
            },
        }


def finished_run(sb: SandboxProcess, gateway: Any, provider: str, size: int) -> Any:
    """A succeeded run whose result is about ``size`` bytes (set before it is created)."""
    sb.configure(result_bytes=size)
    if provider == "stripe":
        run = gateway.start(
            "stripe", V1_REPORT, {"interval_start": INTERVAL[0], "interval_end": INTERVAL[1]}
        )
    elif provider == "zuora":
        run = gateway.start("zuora", ZUORA_REPORT, {"viewType": "Detail"})
    else:
        raise ValueError(provider)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = gateway.get(provider, run.id)
        if run.status.is_terminal:
            break
        time.sleep(0.05)
    if run.result is None:
        raise RuntimeError(f"{provider} run {run.id} did not succeed: {run.raw_status}")
    return run
