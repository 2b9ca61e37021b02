"""This folder's sandbox configuration (the sandbox itself, reset per test, comes from the
package's pytest plugin) and a tiny HTTP client built on http.client, so these tests depend
on nothing but the sandbox itself."""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from report_gateway_sandbox import (
    STRIPE_TEST_KEY,
    ZUORA_ACCESS_KEY_ID,
    ZUORA_SECRET_ACCESS_KEY,
    SandboxConfig,
)

BASE_CONFIG: dict[str, Any] = {
    "faults": [],
    "run_seconds": 0.2,
    "result_rows": 200,
    "result_bytes": None,
    "url_ttl_seconds": 300.0,
    "v2_concurrency_limit": 100,
    "chunk_size": 1 << 20,
    "data_available_end": 1_767_225_600,  # 2026-01-01
    "v2_max_file_bytes": 5_000_000_000,
    "zuora_access_key_id": ZUORA_ACCESS_KEY_ID,
    "zuora_secret_access_key": ZUORA_SECRET_ACCESS_KEY,
}
STRIPE_AUTH = {"Authorization": f"Bearer {STRIPE_TEST_KEY}"}
V2_HEADERS = {**STRIPE_AUTH, "Stripe-Version": "2026-01-28.preview"}
ZUORA_AUTH = {"apiAccessKeyId": ZUORA_ACCESS_KEY_ID, "apiSecretAccessKey": ZUORA_SECRET_ACCESS_KEY}
JAN_2025 = {"parameters[interval_start]": "1735689600", "parameters[interval_end]": "1738368000"}
V2_INTERVAL = {
    "interval_start": "2025-01-01T00:00:00.000Z",
    "interval_end": "2025-02-01T00:00:00.000Z",
}


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class Http:
    """Requests against one base URL; a fresh connection each time."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        form: Mapping[str, str] | list[tuple[str, str]] | None = None,
        json_body: Any = None,
    ) -> Reply:
        target = url[len(self.base_url) :] if url.startswith("http") else url
        sent = dict(headers or {})
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, target, body=body, headers=sent)
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def get(self, url: str, **kw: Any) -> Reply:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Reply:
        return self.request("POST", url, **kw)


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until check() returns something truthy (runs finish on the sandbox's clock)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """What the sandbox plugin's `sandbox` and `make_sandbox` start from in this folder."""
    return SandboxConfig(**BASE_CONFIG)


@pytest.fixture
def client(sandbox_url: str) -> Http:
    return Http(sandbox_url)


def create_v1(client: Http, report_type: str = "balance.summary.1", **headers: str) -> Reply:
    form = {"report_type": report_type, **JAN_2025}
    return client.post("/v1/reporting/report_runs", headers={**STRIPE_AUTH, **headers}, form=form)


def finished_v1(client: Http, run_id: str, headers: Mapping[str, str] | None = None) -> Any:
    def done() -> Any:
        run = client.get(
            f"/v1/reporting/report_runs/{run_id}", headers={**STRIPE_AUTH, **(headers or {})}
        ).json()
        return run if run["status"] != "pending" else None

    return wait_until(done)


def create_v2(client: Http, body: Any | None = None, **headers: str) -> Reply:
    payload = body or {"report": "report_balance_summary", "report_parameters": V2_INTERVAL}
    return client.post(
        "/v2/reporting/report_runs", headers={**V2_HEADERS, **headers}, json_body=payload
    )


def finished_v2(client: Http, run_id: str, headers: Mapping[str, str] | None = None) -> Any:
    def done() -> Any:
        run = client.get(
            f"/v2/reporting/report_runs/{run_id}", headers={**V2_HEADERS, **(headers or {})}
        ).json()
        return run if run["status"] != "running" else None

    return wait_until(done)


ZUORA = "/api/rest/v1"
CUSTOMER_REPORT = "ff8080816293d35b0162bcb3e7780a75"
INVOICE_DETAIL = "ff8080816293d35b0162bcb3e7780a76"


def run_zuora(
    client: Http, report: str = INVOICE_DETAIL, view: str = "Detail", **headers: str
) -> str:
    reply = client.post(
        f"{ZUORA}/reports/{report}/reportrun?viewType={view}", headers={**ZUORA_AUTH, **headers}
    )
    assert reply.status == 200, reply.body
    run_id: str = reply.json()["response"]["reportRunId"]
    return run_id


def finished_zuora(client: Http, run_id: str, **headers: str) -> Any:
    def done() -> Any:
        run = client.get(f"{ZUORA}/reportruns/{run_id}", headers={**ZUORA_AUTH, **headers}).json()
        status = run["response"]["status"]
        return run["response"] if status in ("COMPLETED", "ERROR", "CANCELLED") else None

    return wait_until(done)
