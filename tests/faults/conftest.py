"""The fault suite's sandbox configuration (the sandbox, reset per test, comes from the
package's pytest plugin) and gateways aimed at it.

Retries here back off for milliseconds, not seconds: the rules under test are the same, the
suite just does not sleep through them. Nothing in this folder measures wall time.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

#: What every test starts from: quick runs, small files, no faults.
BASE_CONFIG: dict[str, Any] = {
    "faults": [],
    "run_seconds": 0.2,
    "result_rows": 300,
    "result_bytes": None,
    "url_ttl_seconds": 300.0,
    "v2_concurrency_limit": 100,
    "chunk_size": 4096,
    "zuora_access_key_id": ZUORA_ACCESS_KEY_ID,
    "zuora_secret_access_key": ZUORA_SECRET_ACCESS_KEY,
}

FAST_RETRY = RetryConfig(total=4, backoff_base=0.01, backoff_max=0.05, budget_seconds=20.0)

#: A report per provider that the sandbox knows, with valid parameters.
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

#: Sandbox paths (fnmatch) of each provider's run creation, run retrieval and result bytes.
CREATE_PATH = {
    "stripe": "/v1/reporting/report_runs",
    "stripe-v2": "/v2/reporting/report_runs",
    "zuora": "/api/rest/v1/reports/*/reportrun",
}
GET_RUN_PATH = {
    "stripe": "/v1/reporting/report_runs/*",
    "stripe-v2": "/v2/reporting/report_runs/*",
    "zuora": "/api/rest/v1/reportruns/*",
}
RESULT_PATH = {
    "stripe": "/v1/files/*/contents",
    "stripe-v2": "/_files/v2/*",
    "zuora": "/api/rest/v1/reportruns/export/*",
}
RESULT_OPERATION = {
    "stripe": "download_file_contents",
    "stripe-v2": "download_presigned",
    "zuora": "export_report_run",
}
PROVIDERS = ("stripe", "stripe-v2", "zuora")


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """What the sandbox plugin's `sandbox` (no runs, no statistics, no faults) starts from."""
    return SandboxConfig(**BASE_CONFIG)


def provider_settings(
    sandbox: Sandbox, **overrides: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    settings: dict[str, dict[str, Any]] = {
        "stripe": {
            "api_key": STRIPE_TEST_KEY,
            "base_url": sandbox.stripe_base_url,
            "files_base_url": sandbox.files_base_url,
        },
        "stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sandbox.stripe_base_url},
        "zuora": {
            "api_access_key_id": ZUORA_ACCESS_KEY_ID,
            "api_secret_access_key": ZUORA_SECRET_ACCESS_KEY,
            "base_url": sandbox.zuora_base_url,
            "create_lookup_seconds": 5,
        },
    }
    for provider, values in overrides.items():
        settings[provider] = {**settings[provider], **values}
    return settings


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """No provider variables and a private config home: only explicit settings count."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config-home")}


@pytest.fixture
def make_gateway(sandbox: Sandbox, environ: dict[str, str]) -> Iterator[Callable[..., Gateway]]:
    """Gateways with the installed provider plugins, aimed at the sandbox, fast retries."""
    built: list[Gateway] = []

    def build(settings: Mapping[str, Mapping[str, Any]] | None = None, **kwargs: Any) -> Gateway:
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("environ", environ)
        gateway = Gateway(provider_settings(sandbox, **(settings or {})), **kwargs)
        built.append(gateway)
        return gateway

    yield build
    for gateway in built:
        gateway.close()


@pytest.fixture
def gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway()


def requests_to(
    sandbox: Sandbox, operation: str, provider: str | None = None
) -> list[dict[str, Any]]:
    """The sandbox's log entries (method, path, status, headers) for one operation."""
    return [
        entry
        for entry in sandbox.stats()["request_log"]
        if entry["operation"] == operation and (provider is None or entry["provider"] == provider)
    ]


def header(entry: Mapping[str, Any], name: str) -> str | None:
    for key, value in entry["headers"].items():
        if key.lower() == name.lower():
            return str(value)
    return None


def finished_run(gateway: Gateway, provider: str, **params: Any) -> ReportRun:
    """A SUCCEEDED run of the provider's sample report (polled quickly)."""
    report_id, defaults = REPORTS[provider]
    run = gateway.start(provider, report_id, {**defaults, **params})
    return gateway.wait(run, timeout=60, poll_interval=0.05, max_interval=0.2)


class RangelessProxy:
    """A forwarding proxy in front of the sandbox that drops Range headers, like a server
    without range support: a resumed download then gets the whole body again (200).

    A body that fails upstream is cut downstream too (the connection closes early), so a
    fault injected by the sandbox reaches the client unchanged.
    """

    def __init__(self, upstream_port: int) -> None:
        proxy = self
        self.ranges_dropped = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                if any(k.lower() == "range" for k in headers):
                    proxy.ranges_dropped += 1
                    headers = {k: v for k, v in headers.items() if k.lower() != "range"}
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=10)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    reply = upstream.getresponse()
                    self.send_response(reply.status)
                    for name, value in reply.getheaders():
                        if name.lower() not in ("connection", "transfer-encoding"):
                            self.send_header(name, value)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    try:
                        while chunk := reply.read1(65536):
                            self.wfile.write(chunk)
                    except (OSError, http.client.HTTPException):
                        pass  # upstream cut the body: cut ours as well
                finally:
                    upstream.close()
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> RangelessProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Kit:
    """The helpers above, for test modules (conftest is not importable under importlib)."""

    REPORTS = REPORTS
    CREATE_PATH = CREATE_PATH
    GET_RUN_PATH = GET_RUN_PATH
    RESULT_PATH = RESULT_PATH
    RESULT_OPERATION = RESULT_OPERATION
    finished_run = staticmethod(finished_run)
    PROVIDERS = PROVIDERS
    FAST_RETRY = FAST_RETRY
    RangelessProxy = RangelessProxy
    requests_to = staticmethod(requests_to)
    header = staticmethod(header)
    provider_settings = staticmethod(provider_settings)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit
