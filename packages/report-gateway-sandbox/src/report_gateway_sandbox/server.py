"""Serving the app: a threading wsgiref server speaking HTTP/1.1 with keep-alive (one thread
per connection, bodies streamed straight to the socket) and the `Sandbox` context manager
used by tests and the demo.

The real services keep connections alive, so per-call overhead measured here must not
include a new TCP connection per request. A connection is reused only when the response
went out whole and framed (Content-Length matched, or chunked and terminated) and the
request body was read to its end; anything else (a truncation or drop fault, an error
mid-stream, an unread large body) ends the connection, as a real server would.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any, BinaryIO
from wsgiref.headers import Headers
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from report_gateway_sandbox.app import RAW_HEADERS_KEY, SOCKET_KEY, ConnectionDropped, SandboxApp
from report_gateway_sandbox.config import FaultRule, SandboxConfig
from report_gateway_sandbox.zuora import PREFIX as ZUORA_PREFIX

logger = logging.getLogger("report_gateway_sandbox")

#: How long a kept-alive connection may sit idle between requests before the server
#: closes it; long enough that no test or bench pause ever meets it.
KEEPALIVE_IDLE_SECONDS = 300.0
#: An unread request body up to this size is drained so the connection can be reused;
#: past it, closing is cheaper.
_DRAIN_LIMIT = 1 << 20
_NO_BODY_STATUSES = frozenset({204, 304})
#: A head and a body piece up to this size leave in one send().
_COALESCE_LIMIT = 64 * 1024


class _RequestBody:
    """``wsgi.input`` limited to the request's Content-Length, so the app can never read
    into the next request on the connection, and the server knows what is left unread."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        if size < 0 or size > self.remaining:
            size = self.remaining
        data = self._stream.read(size)
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return data

    def readline(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        if size < 0 or size > self.remaining:
            size = self.remaining
        data = self._stream.readline(size)
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> _RequestBody:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def drain(self) -> bool:
        """Read what the app left unread; False when too much is left to be worth it."""
        if self.remaining > _DRAIN_LIMIT:
            return False
        while self.remaining > 0:
            if not self.read(min(self.remaining, 64 * 1024)):
                return False
        return True


class _ServerHandler(ServerHandler):
    """One response. Speaks HTTP/1.1: a body without a Content-Length goes out chunked
    (to a client that may keep the connection), and ``complete`` tells the connection
    loop whether the response was framed and sent in full."""

    server_software = "report-gateway-sandbox"
    http_version = "1.1"
    # Set by BaseHandler while it runs; typeshed does not declare them.
    status: str | None
    headers: Headers | None
    headers_sent: bool
    bytes_sent: int

    def __init__(self, *args: Any, keep_alive: bool, head: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_alive = keep_alive
        self.head = head
        self.chunked = False
        self.failed = False
        self.complete = False
        self._held: list[bytes] | None = None

    def log_exception(self, exc_info: Any) -> None:
        self.failed = True
        if isinstance(exc_info[1], (ConnectionDropped, OSError)):
            return
        logger.error("sandbox response failed", exc_info=exc_info)

    def _no_body(self) -> bool:
        code = int(str(self.status).split(" ", 1)[0])
        return self.head or code in _NO_BODY_STATUSES or 100 <= code < 200

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        headers = self.headers
        assert headers is not None
        if "Content-Length" not in headers and not self._no_body():
            if self.keep_alive:
                headers["Transfer-Encoding"] = "chunked"
                self.chunked = True
            else:
                self.keep_alive = False
        if not self.keep_alive:
            headers["Connection"] = "close"

    def _write(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
        else:
            super()._write(data)

    def _head(self) -> bytes:
        """The status line and headers as one piece (wsgiref writes them in several)."""
        self._held = []
        try:
            self.send_headers()
        finally:
            held, self._held = self._held, None
        return b"".join(held)

    def write(self, data: bytes) -> None:
        # BaseHandler.write, plus chunk framing when the length was not known up front, and
        # the head sent with a small body in one send: separate small writes on a kept-alive
        # connection meet the client's delayed ACK.
        if not self.status:
            raise AssertionError("write() before start_response()")
        pieces = []
        if self.headers_sent:
            self.bytes_sent += len(data)
        else:
            self.bytes_sent = len(data)
            pieces.append(self._head())
        if not self.chunked:
            pieces.append(data)
        elif data:
            pieces += [b"%X\r\n" % len(data), data, b"\r\n"]
        if sum(map(len, pieces)) <= _COALESCE_LIMIT:
            self._write(b"".join(pieces))
        else:
            for piece in pieces:
                self._write(piece)
        self._flush()

    def finish_content(self) -> None:
        if not self.headers_sent:
            assert self.headers is not None
            self.headers.setdefault("Content-Length", "0")
            self._write(self._head())
        elif self.chunked:
            self._write(b"0\r\n\r\n")
        self._flush()

    def close(self) -> None:
        # BaseHandler.close forgets status, headers and the byte count: judge first.
        self.complete = self.keep_alive and not self.failed and self._framed_in_full()
        super().close()

    def _framed_in_full(self) -> bool:
        if not self.status or not self.headers_sent or self.headers is None:
            return False
        if self.chunked or self._no_body():
            return True
        length = self.headers.get("Content-Length")
        return length is not None and length.isdigit() and int(length) == self.bytes_sent


class _RequestHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingWSGIServer

    def setup(self) -> None:
        super().setup()
        # Responses are written whole or in large pieces; never hold a small tail back.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, add=True)
        self._served = 0

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def get_environ(self) -> dict[str, Any]:
        env = super().get_environ()
        env[SOCKET_KEY] = self.connection
        env[RAW_HEADERS_KEY] = list(self.headers.items())
        return env

    def handle(self) -> None:
        # WSGIRequestHandler.handle serves one request; the base class loops instead.
        BaseHTTPRequestHandler.handle(self)

    def handle_one_request(self) -> None:
        # Called by BaseHTTPRequestHandler.handle until close_connection is set.
        if self._served:
            self.connection.settimeout(KEEPALIVE_IDLE_SECONDS)
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        finally:
            if self._served:
                self.connection.settimeout(None)
        self._served += 1
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():  # sets close_connection from version and Connection
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if "Transfer-Encoding" in self.headers or length < 0:
            # The app reads Content-Length bodies only; whatever else was sent is unread.
            self.close_connection = True
            length = 0
        body = _RequestBody(self.rfile, length)  # type: ignore[arg-type]
        handler = _ServerHandler(
            body,
            self.wfile,
            sys.stderr,
            self.get_environ(),
            multithread=True,
            keep_alive=not self.close_connection,
            head=self.command == "HEAD",
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        app = self.server.get_app()
        assert app is not None
        handler.run(app)
        if not handler.complete or not body.drain():
            self.close_connection = True


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._live_lock:
            if add:
                self._live.add(connection)
            else:
                self._live.discard(connection)

    def server_close(self) -> None:
        """Stop listening and end every kept-alive connection, so a stopped sandbox is
        stopped for pooled clients too (their next request is refused, not served)."""
        super().server_close()
        with self._live_lock:
            live = list(self._live)
        for connection in live:
            with contextlib.suppress(OSError):  # already closed by its peer
                connection.shutdown(socket.SHUT_RDWR)


def make_server(host: str, port: int, app: SandboxApp) -> ThreadingWSGIServer:
    server = ThreadingWSGIServer((host, port), _RequestHandler)
    server.set_app(app)
    return server


class Sandbox:
    """The sandbox on a loopback port, served from a daemon thread.

    >>> with Sandbox(SandboxConfig(run_seconds=0.2)) as sb:
    ...     sb.stripe_base_url  # doctest: +SKIP
    """

    def __init__(
        self, config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = SandboxApp(config)
        self._host = host
        self._port = port
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        self._server = make_server(self._host, self._port, self.app)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"report-gateway-sandbox:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        self.app.close()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def stripe_base_url(self) -> str:
        return self.url

    @property
    def files_base_url(self) -> str:
        return self.url

    @property
    def zuora_base_url(self) -> str:
        return self.url + ZUORA_PREFIX

    # -- control ---------------------------------------------------------------------------
    @property
    def config(self) -> SandboxConfig:
        return self.app.config

    def configure(self, **changes: Any) -> SandboxConfig:
        return self.app.configure(changes)

    def add_fault(self, rule: FaultRule) -> None:
        self.app.add_fault(rule)

    def clear_faults(self) -> None:
        self.app.clear_faults()

    def stats(self) -> dict[str, Any]:
        return self.app.stats()

    def advance_clock(self, seconds: float) -> None:
        """Let ``seconds`` pass for the emulated APIs (see ``SandboxApp.advance_clock``)."""
        self.app.advance_clock(seconds)

    def reset(self) -> None:
        self.app.reset()
