"""Scenario 6: keys go only where they belong. A pre-signed download URL gets no key, and a
redirect to another host is not followed at all: nothing, key or not, is sent there, and no
bytes from it are taken for the provider's (the sandbox and the "other host", a server on
127.0.0.2, record every header they receive).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from report_gateway import Gateway, RunStatus
from report_gateway.errors import GatewayError, ProviderError
from report_gateway_sandbox import Sandbox

OTHER_HOST = "127.0.0.2"
LOOPBACK = ["127.0.0.1", "127.0.0.2", "localhost", "::1"]
AUTH_HEADERS = {"authorization", "apiaccesskeyid", "apisecretaccesskey"}


class Relay:
    """A server on ``host`` that either redirects every request to ``redirect_to`` + path,
    or fetches it from the sandbox itself with ``upstream_headers`` (the other host that
    really holds the file), recording the headers it was sent."""

    def __init__(
        self,
        host: str,
        *,
        redirect_to: str | None = None,
        upstream_port: int | None = None,
        upstream_headers: dict[str, str] | None = None,
    ) -> None:
        self.seen: list[dict[str, str]] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                relay.seen.append({k.lower(): v for k, v in self.headers.items()})
                if redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                assert upstream_port is not None
                wanted = dict(upstream_headers or {})
                if self.headers.get("Range"):
                    wanted["Range"] = self.headers["Range"]
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=10)
                try:
                    upstream.request("GET", self.path, headers=wanted)
                    reply = upstream.getresponse()
                    body = reply.read()
                    self.send_response(reply.status)
                    for name, value in reply.getheaders():
                        if name.lower() not in (
                            "connection",
                            "transfer-encoding",
                            "content-length",
                        ):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    upstream.close()

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def relays() -> Iterator[list[Relay]]:
    made: list[Relay] = []
    yield made
    for relay in made:
        relay.close()


def test_presigned_download_is_sent_no_key(
    sandbox: Sandbox, make_gateway: Callable[..., Gateway], kit: Any, tmp_path: Path
) -> None:
    gateway = make_gateway()
    report_id, params = kit.REPORTS["stripe-v2"]
    run = gateway.wait(gateway.start("stripe-v2", report_id, params), poll_interval=0.05)
    gateway.download(run, tmp_path / "report.csv")
    fetches = [e for e in sandbox.stats()["request_log"] if e["operation"] == "download_presigned"]
    assert fetches
    for entry in fetches:
        assert not AUTH_HEADERS & {name.lower() for name in entry["headers"]}
        kit.assert_no_secret([json.dumps(entry)], "a pre-signed URL request")
    # The API itself did get the key (the check above is not vacuous).
    api = [e for e in sandbox.stats()["request_log"] if e["provider"] == "stripe-v2"]
    assert all("authorization" in {n.lower() for n in e["headers"]} for e in api)


@pytest.mark.block_network(allowed_hosts=LOOPBACK)
def test_redirect_to_another_host_is_not_followed(
    sandbox: Sandbox,
    make_gateway: Callable[..., Gateway],
    kit: Any,
    relays: list[Relay],
    tmp_path: Path,
) -> None:
    """files_base_url answers 302 to a storage host elsewhere: refused, no file, the other
    host asked nothing."""
    storage = Relay(
        OTHER_HOST,
        upstream_port=sandbox.port,
        upstream_headers={"Authorization": f"Bearer {kit.STRIPE_SECRET}"},
    )
    relays.append(storage)
    files = Relay("127.0.0.1", redirect_to=storage.url)
    relays.append(files)
    gateway = make_gateway({"stripe": {"files_base_url": files.url}})
    report_id, params = kit.REPORTS["stripe"]
    run = gateway.wait(gateway.start("stripe", report_id, params), poll_interval=0.05)
    assert run.status is RunStatus.SUCCEEDED
    with pytest.raises(GatewayError, match="another host"):
        gateway.download(run, tmp_path / "report.csv")
    assert list(tmp_path.iterdir()) == []
    # The files host (same as configured) got the key; the other host got nothing.
    assert files.seen
    assert all(seen.get("authorization") == f"Bearer {kit.STRIPE_SECRET}" for seen in files.seen)
    assert storage.seen == []


@pytest.mark.block_network(allowed_hosts=LOOPBACK)
def test_redirect_of_an_api_call_to_another_host_is_not_followed(
    sandbox: Sandbox,
    make_gateway: Callable[..., Gateway],
    kit: Any,
    relays: list[Relay],
) -> None:
    gateway = make_gateway()
    report_id, params = kit.REPORTS["zuora"]
    run = gateway.start("zuora", report_id, params)
    other = Relay(OTHER_HOST, upstream_port=sandbox.port)
    relays.append(other)
    moved = Relay("127.0.0.1", redirect_to=other.url)
    relays.append(moved)
    elsewhere = make_gateway({"zuora": {"base_url": moved.url + "/api/rest/v1"}})
    with pytest.raises(ProviderError, match="another host"):
        elsewhere.get("zuora", run.id)
    assert moved.seen
    assert moved.seen[0].get("apisecretaccesskey") == kit.ZUORA_SECRET
    assert other.seen == []
