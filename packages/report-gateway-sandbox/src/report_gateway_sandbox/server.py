"""Serving the app: a threading wsgiref server (one thread per connection, bodies streamed
straight to the socket) and the `Sandbox` context manager used by tests and the demo."""

from __future__ import annotations

import logging
import sys
import threading
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from report_gateway_sandbox.app import RAW_HEADERS_KEY, SOCKET_KEY, ConnectionDropped, SandboxApp
from report_gateway_sandbox.config import FaultRule, SandboxConfig
from report_gateway_sandbox.zuora import PREFIX as ZUORA_PREFIX

logger = logging.getLogger("report_gateway_sandbox")


class _ServerHandler(ServerHandler):
    server_software = "report-gateway-sandbox"

    def log_exception(self, exc_info: Any) -> None:
        if isinstance(exc_info[1], (ConnectionDropped, OSError)):
            return
        logger.error("sandbox response failed", exc_info=exc_info)


class _RequestHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def get_environ(self) -> dict[str, Any]:
        env = super().get_environ()
        env[SOCKET_KEY] = self.connection
        env[RAW_HEADERS_KEY] = list(self.headers.items())
        return env

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _ServerHandler(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]
            sys.stderr,
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


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

    def reset(self) -> None:
        self.app.reset()
