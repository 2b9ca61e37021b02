"""A scripted HTTP server on 127.0.0.1 (real sockets, no network) and a sleep recorder."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs
import pytest


@attrs.define
class Scripted:
    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    body: bytes = b"{}"
    chunked: bool = False
    close: bool = False  # drop the connection without answering


@attrs.define
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """Answers each request with the next scripted response (200 {} when none is left)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.queue: deque[Scripted] = deque()
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server.lock:
                    server.seen.append(
                        Seen(self.command, self.path, dict(self.headers.items()), body)
                    )
                    reply = server.queue.popleft() if server.queue else Scripted()
                if reply.close:
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(reply.body), 7):
                        piece = reply.body[start : start + 7]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    if "Content-Length" not in reply.headers:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(reply.body)

            do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = host
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def reply(self, status: int = 200, body: bytes | str = b"{}", **options: object) -> None:
        data = body.encode() if isinstance(body, str) else body
        headers = dict(options.pop("headers", {}) or {})  # type: ignore[call-overload]
        self.queue.append(Scripted(status=status, headers=headers, body=data, **options))  # type: ignore[arg-type]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.stop()


@pytest.fixture
def other_server() -> Iterator[ScriptedServer]:
    """A second origin: reached as "localhost", so host and port both differ."""
    srv = ScriptedServer(host="localhost")
    yield srv
    srv.stop()


class SleepRecorder:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()
