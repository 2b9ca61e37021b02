"""Transport and Response: streaming, vcrpy's stub, TLS verification, header access."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
import vcr  # type: ignore[import-untyped]
from reporting_runtime import Request, Response, Transport, TransportError
from reporting_runtime.messages import Headers
from urllib3.exceptions import InsecureRequestWarning

from tests.forking import exit_code_within


def get(url: str) -> Request:
    return Request(method="GET", url=url, operation="download", provider="p")


def test_streamed_body_arrives_in_chunks_and_releases_the_connection(server: Any) -> None:
    body = b"0123456789" * 100
    server.reply(200, body, chunked=True, headers={"Request-Id": "req_s"})
    transport = Transport()
    with transport.send(get(f"{server.url}/f"), stream=True) as response:
        assert response.content_length is None
        assert response.request_id == "req_s"
        chunks = list(response.iter_bytes(64))
    assert b"".join(chunks) == body
    assert all(chunks)
    # The pooled connection is reused for the next request.
    server.reply(200, b"again")
    assert transport.send(get(f"{server.url}/g")).read() == b"again"


def test_content_length_only_when_uncompressed(server: Any) -> None:
    server.reply(200, b"abc")
    assert Transport().send(get(server.url)).content_length == 3
    headers = Headers([("Content-Length", "10"), ("Content-Encoding", "gzip")])
    response = Response(None, request=get("http://x"), status=200, headers=headers, content=b"")
    assert response.content_length is None


class FakeRaw:
    """A raw response like vcrpy's stub: ends its stream with an empty chunk."""

    status = 200
    headers = {"content-type": "text/csv", "zuora-request-id": "zr"}

    def __init__(self) -> None:
        self.released = False
        self.closed = False

    def stream(self, amt: int = 0) -> Iterator[bytes]:
        yield b"a,b\n"
        yield b""
        yield b"1,2\n"
        yield b""

    def read(self, amt: int | None = None) -> bytes:
        return b""

    def release_conn(self) -> None:
        self.released = True

    def close(self) -> None:
        self.closed = True


def test_empty_chunks_are_skipped_and_headers_are_case_insensitive() -> None:
    raw = FakeRaw()
    response = Response(raw, request=get("http://x"))
    assert response.headers["Content-Type"] == "text/csv"
    assert response.request_id == "zr"
    assert list(response.iter_bytes()) == [b"a,b\n", b"1,2\n"]
    assert raw.released
    assert not raw.closed


def test_closing_an_unread_stream_drops_the_connection() -> None:
    raw = FakeRaw()
    Response(raw, request=get("http://x")).close()
    assert raw.closed
    assert raw.released


def test_repeated_headers_are_joined() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2")])
    assert headers["SET-COOKIE"] == "a=1, b=2"
    assert "a=1" not in repr(headers)


def test_request_repr_hides_credentials_in_the_url() -> None:
    request = Request(
        method="GET",
        url="https://user:pw@files.example/f.csv?X-Amz-Signature=s3cr3t&limit=3",
        headers={"Authorization": "Bearer s3cr3t"},
    )
    text = repr(request)
    assert "s3cr3t" not in text
    assert "pw@" not in text
    assert "https://REDACTED@files.example/f.csv?X-Amz-Signature=REDACTED&limit=3" in text


def test_works_the_same_under_vcrpy_replay(server: Any, tmp_path: Path) -> None:
    body = b"x" * 5000
    server.reply(200, body, headers={"Content-Type": "text/csv", "Request-Id": "req_v"})
    cassette = tmp_path / "c.yaml"
    with vcr.use_cassette(str(cassette), record_mode="once"):
        recorded = Transport().send(get(f"{server.url}/f"), stream=True)
        assert b"".join(recorded.iter_bytes(1024)) == body
    with vcr.use_cassette(str(cassette), record_mode="none"):
        response = Transport().send(get(f"{server.url}/f"), stream=True)
        assert response.status == 200
        assert response.request_id == "req_v"
        chunks = list(response.iter_bytes(1024))
        assert b"".join(chunks) == body
        assert all(chunks)
    assert len(server.seen) == 1  # the replay never reached the socket


# TLS.


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", str(ca_path)
    httpd.shutdown()
    httpd.server_close()


def test_tls_is_verified_by_default(tls_server: tuple[str, str]) -> None:
    url, _ = tls_server
    with pytest.raises(TransportError, match="TLS handshake failed"):
        Transport().send(get(url))


def test_custom_ca_bundle_is_trusted(tls_server: tuple[str, str]) -> None:
    url, ca_path = tls_server
    assert Transport(ca_certs=ca_path).send(get(url)).read() == b"ok"


def test_verify_false_skips_verification(tls_server: tuple[str, str]) -> None:
    url, _ = tls_server
    with pytest.warns(InsecureRequestWarning):
        assert Transport(verify=False).send(get(url)).read() == b"ok"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_sends_on_its_parents_pooled_connections() -> None:
    """A pooled keep-alive connection is one socket for parent and child after a fork:
    their requests on it interleave and each can read the other's answer (seen against
    the sandbox: a ``get`` of one run answered with another run). The child must open
    connections of its own, and leave the parent's working."""
    peers: list[tuple[str, tuple[str, int]]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            peers.append((self.path, self.client_address))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    # Handler threads joined by ``server_close`` (once the transport has hung up): none
    # is left to end during a later test that counts threads.
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serving = threading.Thread(target=httpd.serve_forever, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    transport = Transport()
    try:
        assert transport.send(get(f"{url}/parent-1")).read() == b"ok"
        pid = os.fork()
        if pid == 0:  # the child: one request, then out
            code = 1
            try:
                code = 0 if transport.send(get(f"{url}/child")).read() == b"ok" else 2
            finally:
                os._exit(code)
        assert exit_code_within(pid, 30) == 0
        assert transport.send(get(f"{url}/parent-2")).read() == b"ok"
    finally:
        transport.close()
        httpd.shutdown()
        httpd.server_close()
        serving.join()
    seen = dict(peers)
    assert seen["/parent-2"] == seen["/parent-1"]  # the parent's connection, still whole
    assert seen["/child"] != seen["/parent-1"]  # the child's own


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_while_another_thread_holds_the_pools_lock_leaves_the_child_free(
    server: Any,
) -> None:
    """A thread inside urllib3's pool manager at the fork (its lock held) must not leave
    the child's first request waiting forever."""
    transport = Transport()
    server.reply(200, b"warm")
    assert transport.send(get(f"{server.url}/w")).read() == b"warm"
    lock = transport._pool.pools.lock
    lock.acquire()  # as a thread in the middle of picking a pool
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                got: list[bytes] = []
                sender = threading.Thread(
                    target=lambda: got.append(transport.send(get(f"{server.url}/c")).read())
                )
                sender.start()
                sender.join(10)
                code = 0 if got else 2
            finally:
                os._exit(code)
        code = exit_code_within(pid, 30)
    finally:
        lock.release()
        transport.close()
    assert code == 0
