"""Scenario 6: TLS certificates are verified by default. The sandbox served over HTTPS with
a certificate from a private CA (trustme) is refused before any request (so before any
credential) leaves; given that CA as a custom bundle (``Transport(ca_certs=...)`` handed to
``Gateway(transport=...)``) the same flow succeeds.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from report_gateway import Gateway, RunStatus
from report_gateway.errors import ProviderError
from report_gateway_sandbox import SandboxApp, SandboxConfig, make_server
from reporting_runtime import Transport


class TlsSandbox:
    def __init__(self, ca: trustme.CA, secret: str) -> None:
        self.app = SandboxApp(
            SandboxConfig(run_seconds=0.2, result_rows=100, zuora_secret_access_key=secret)
        )
        self.server = make_server("127.0.0.1", 0, self.app)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_sandbox(ca: trustme.CA, kit: Any) -> Iterator[TlsSandbox]:
    sandbox = TlsSandbox(ca, kit.ZUORA_SECRET)
    yield sandbox
    sandbox.close()


def zuora_over_tls(tls_sandbox: TlsSandbox) -> dict[str, Any]:
    return {"zuora": {"base_url": tls_sandbox.url + "/api/rest/v1"}}


def test_self_signed_server_is_refused_by_default(
    tls_sandbox: TlsSandbox, make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    gateway = make_gateway(zuora_over_tls(tls_sandbox))
    report_id, params = kit.REPORTS["zuora"]
    with pytest.raises(ProviderError) as caught:
        gateway.start("zuora", report_id, params)
    message = str(caught.value)
    assert "certificate verify failed" in message
    assert "127.0.0.1" in message
    # Nothing got past the handshake: no request, no credential, no run.
    assert tls_sandbox.app.stats()["requests"] == {}
    assert tls_sandbox.app.stats()["runs_created"]["zuora"] == 0


def test_custom_ca_bundle_is_accepted(
    ca: trustme.CA,
    tls_sandbox: TlsSandbox,
    make_gateway: Callable[..., Gateway],
    kit: Any,
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "corporate-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with Transport(ca_certs=str(bundle)) as transport:
        gateway = make_gateway(zuora_over_tls(tls_sandbox), transport=transport)
        report_id, params = kit.REPORTS["zuora"]
        run = gateway.wait(gateway.start("zuora", report_id, params), poll_interval=0.05)
        assert run.status is RunStatus.SUCCEEDED
        assert gateway.download(run, tmp_path / "report.csv").stat().st_size > 0
    assert tls_sandbox.app.stats()["runs_created"]["zuora"] == 1


def test_a_bundle_without_the_issuer_is_still_refused(
    tls_sandbox: TlsSandbox, make_gateway: Callable[..., Gateway], kit: Any, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with Transport(ca_certs=str(other)) as transport:
        gateway = make_gateway(zuora_over_tls(tls_sandbox), transport=transport)
        with pytest.raises(ProviderError, match="certificate verify failed"):
            gateway.get("zuora", "any-run-id")
