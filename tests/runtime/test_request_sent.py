"""Whether a failed request may have reached the server (`TransportError.request_sent`).

A caller with a POST that has no idempotency key (Zuora's run) fails at once when nothing
was sent and looks for the effect only when the answer was lost after sending. Each case
below is a real socket on 127.0.0.1 misbehaving at one moment of the exchange.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from reporting_runtime import (
    ConnectError,
    ConnectTimeout,
    ReadTimeoutError,
    Request,
    Timeout,
    Transport,
    TransportError,
)
from reporting_runtime.transport import transport_error
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError

SHORT = Timeout(connect=0.5, read=0.5)

Behaviour = Callable[[socket.socket], object]


def post(url: str) -> Request:
    return Request(
        method="POST", url=url, headers={}, body=b"{}", operation="run_report", provider="zuora"
    )


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, bytes]:
    """A server context with a certificate for 127.0.0.1, and the PEM of the CA behind it."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context, ca.cert_pem.bytes()


@pytest.fixture
def ca_file(tls: tuple[ssl.SSLContext, bytes], tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_bytes(tls[1])
    return str(path)


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], int]]:
    """``serve(behaviour)``: a port whose every accepted connection is handed to behaviour."""
    listeners: list[socket.socket] = []

    def start(behaviour: Behaviour) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def accept() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=_guarded, args=(behaviour, conn), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        port: int = listener.getsockname()[1]
        return port

    yield start
    for listener in listeners:
        listener.close()


def _guarded(behaviour: Behaviour, conn: socket.socket) -> None:
    try:
        behaviour(conn)
    except OSError:
        pass  # the client gave up first, or the TLS handshake was refused
    finally:
        conn.close()


def _reset(conn: socket.socket) -> None:
    """Close with RST: the abrupt drop of a proxy or a crashed server."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _failure(request: Request, **transport: object) -> TransportError:
    with pytest.raises(TransportError) as caught:
        Transport(**transport).send(request)  # type: ignore[arg-type]
    return caught.value


# -- nothing sent ---------------------------------------------------------------------------


def test_refused_connection_sent_nothing() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    error = _failure(post(f"http://127.0.0.1:{port}/runs"))
    assert isinstance(error, ConnectError)
    assert error.request_sent is False
    assert "Connection refused" in str(error)


def test_dns_failure_and_connect_timeout_sent_nothing() -> None:
    # Built directly: the test network resolves no names and routes nowhere.
    request = post("https://rest.zuora.example/v1/runs")
    dns = transport_error(
        request,
        NameResolutionError("rest.zuora.example", None, socket.gaierror(-2, "unknown")),  # type: ignore[arg-type]
    )
    assert isinstance(dns, ConnectError)
    assert dns.request_sent is False
    slow = transport_error(request, ConnectTimeoutError(None, "timed out"))
    assert isinstance(slow, ConnectTimeout)
    assert slow.request_sent is False


def test_refused_certificate_sent_nothing(
    serve: Callable[[Behaviour], int], tls: tuple[ssl.SSLContext, bytes]
) -> None:
    context = tls[0]
    port = serve(lambda conn: context.wrap_socket(conn, server_side=True).recv(1024))
    error = _failure(post(f"https://127.0.0.1:{port}/runs"))  # CA not trusted
    assert isinstance(error, ConnectError)
    assert error.request_sent is False
    assert "TLS handshake failed" in str(error)


def test_failed_tls_handshake_sent_nothing(serve: Callable[[Behaviour], int]) -> None:
    def plain_http(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    error = _failure(post(f"https://127.0.0.1:{serve(plain_http)}/runs"))
    assert isinstance(error, ConnectError)
    assert error.request_sent is False


def test_tls_handshake_timeout_sent_nothing(serve: Callable[[Behaviour], int]) -> None:
    # urllib3 calls this a read timeout; it happened before the request could be written.
    port = serve(lambda conn: time.sleep(3))
    error = _failure(post(f"https://127.0.0.1:{port}/runs"), timeout=SHORT)
    assert isinstance(error, ConnectTimeout)
    assert error.request_sent is False


# -- maybe received -------------------------------------------------------------------------


def test_read_timeout_after_sending_may_have_arrived(serve: Callable[[Behaviour], int]) -> None:
    def read_then_wait(conn: socket.socket) -> None:
        conn.recv(65536)
        time.sleep(3)

    error = _failure(post(f"http://127.0.0.1:{serve(read_then_wait)}/runs"), timeout=SHORT)
    assert isinstance(error, ReadTimeoutError)
    assert not isinstance(error, ConnectError)
    assert error.request_sent is True


def test_connection_dropped_after_sending_may_have_arrived(
    serve: Callable[[Behaviour], int],
) -> None:
    def read_then_reset(conn: socket.socket) -> None:
        conn.recv(65536)
        _reset(conn)

    error = _failure(post(f"http://127.0.0.1:{serve(read_then_reset)}/runs"))
    assert not isinstance(error, ConnectError)
    assert error.request_sent is True


def test_tls_connection_dropped_after_sending_may_have_arrived(
    serve: Callable[[Behaviour], int], tls: tuple[ssl.SSLContext, bytes], ca_file: str
) -> None:
    # Over TLS the drop surfaces as an SSL error (unexpected EOF), the same urllib3 type as a
    # refused handshake: it must not pass for "nothing sent".
    context = tls[0]

    def read_then_reset(conn: socket.socket) -> None:
        secure = context.wrap_socket(conn, server_side=True)
        secure.recv(65536)
        _reset(secure)

    error = _failure(post(f"https://127.0.0.1:{serve(read_then_reset)}/runs"), ca_certs=ca_file)
    assert not isinstance(error, ConnectError)
    assert error.request_sent is True


def test_unknown_failures_count_as_maybe_sent() -> None:
    error = transport_error(post("https://rest.zuora.example/v1/runs"), RuntimeError("odd"))
    assert error.request_sent is True
