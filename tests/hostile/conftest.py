"""Raw-socket servers that impersonate the three APIs and lie (issue 10).

Not the sandbox: each test scripts its own server on 127.0.0.1 from plain sockets, so it
can send what no well-behaved HTTP library would (bodies longer than announced, cuts
mid-row, a different file on resume, names that escape a folder). Every server stops by
itself: it serves at most ``max_requests`` connections and lives at most ``lifetime``
seconds, whatever the client does; a test never waits on a server that misbehaves.

The library is driven only through its public API (``Gateway``, ``report_gateway.cli.main``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from report_gateway import Gateway
from reporting_runtime import RetryConfig

STRIPE_KEY = "sk_test_hostile_4eC39HqLyjWDarjtT1zdp7dc"
ZUORA_USER = "hostile-user@example.com"
ZUORA_SECRET = "zuora-secret-Hx7Qp2Lm9Vb4"  # not key-shaped: scrubbing must use the real value
RUN_ID = {"stripe": "frr_hostile", "stripe-v2": "reprun_hostile", "zuora": "zrun-hostile"}
CSV = b"id,amount\n" + b"".join(b"row_%d,%d\n" % (i, i * 7) for i in range(200))
QUICK_RETRY = RetryConfig(total=2, backoff_base=0.05, backoff_max=0.2, budget_seconds=2.0)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


Handler = Callable[[Request, socket.socket, "Hostile"], None]


@dataclass
class Hostile:
    """A bounded server: ``handler(request, connection, server)`` writes whatever it likes."""

    handler: Handler
    max_requests: int = 40
    lifetime: float = 8.0
    requests: list[Request] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._deadline = time.monotonic() + self.lifetime
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        served = 0
        try:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                if served >= self.max_requests:
                    break
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    continue
                served += 1
                threading.Thread(target=self._one, args=(conn,), daemon=True).start()
        finally:
            self._sock.close()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(max(0.1, self._deadline - time.monotonic()))
        try:
            request = _read_request(conn)
            if request is None:
                return
            self.requests.append(request)
            self.handler(request, conn, self)
        except OSError:
            pass
        finally:
            conn.close()

    @property
    def alive(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def __enter__(self) -> Hostile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Request(method, path, headers, rest)


def respond(
    conn: socket.socket,
    status: int = 200,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    length: int | None | str = "auto",
    reason: str = "X",
) -> None:
    """Send a response; ``length=None`` sends no Content-Length (close-delimited body)."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    all_headers = {"Connection": "close", **(headers or {})}
    if length == "auto":
        all_headers["Content-Length"] = str(len(body))
    elif length is not None:
        all_headers["Content-Length"] = str(length)
    lines += [f"{k}: {v}" for k, v in all_headers.items()]
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def respond_json(conn: socket.socket, payload: Any, status: int = 200) -> None:
    respond(conn, status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


# -- what each provider says about a finished run ------------------------------------------


def stripe_v1_run(base: str, *, size: int, filename: Any = "frr_hostile.csv", **extra: Any) -> Any:
    return {
        "id": extra.pop("id", RUN_ID["stripe"]),
        "object": "reporting.report_run",
        "created": 1735689600,
        "error": None,
        "livemode": False,
        "parameters": {"interval_start": 1735689600, "interval_end": 1738368000},
        "report_type": "balance.summary.1",
        "result": {
            "id": "file_hostile",
            "object": "file",
            "created": 1735689700,
            "expires_at": 1767225600,
            "filename": filename,
            "purpose": "finance_report_run",
            "size": size,
            "title": "FinanceReportRun",
            "type": "csv",
            "url": f"{base}/v1/files/file_hostile/contents",
        },
        "status": "succeeded",
        "succeeded_at": 1735689700,
        **extra,
    }


def stripe_v2_run(base: str, *, size: int, zipped: bool = False, run_id: str | None = None) -> Any:
    return {
        "created": "2025-01-01T00:00:00.000Z",
        "id": run_id or RUN_ID["stripe-v2"],
        "livemode": False,
        "object": "v2.reporting.report_run",
        "report": "report_balance_summary",
        "report_name": "Balance summary",
        "report_parameters": {},
        "result": {
            "type": "file",
            "file": {
                "content_type": "zip" if zipped else "csv",
                "download_url": {
                    "expires_at": "2099-01-01T00:00:00.000Z",
                    "url": f"{base}/presigned/result?sig=abc",
                },
                "size": str(size),
            },
        },
        "result_options": {"compress_file": zipped},
        "status": "succeeded",
        "status_details": {},
    }


def zuora_run(run_id: str | None = None, status: str = "COMPLETED") -> Any:
    return {
        "success": True,
        "response": {
            "reportType": "DETAIL",
            "id": run_id or RUN_ID["zuora"],
            "reportId": "rep-1",
            "startedOn": "2025-01-01T00:00:00.000Z",
            "status": status,
            "updatedOn": "2025-01-01T00:00:05.000Z",
        },
    }


Body = Callable[[Request, socket.socket, Hostile], None]


def provider_server(
    provider: str,
    result: Body,
    *,
    size: int | None = None,
    zipped: bool = False,
    filename: Any = "frr_hostile.csv",
    run_id: str | None = None,
    **options: Any,
) -> Hostile:
    """A server answering the run lookup truthfully and the result with ``result``."""

    def handler(request: Request, conn: socket.socket, server: Hostile) -> None:
        path = request.path.split("?", 1)[0]
        if provider == "stripe" and path.startswith("/v1/reporting/report_runs/"):
            payload = stripe_v1_run(server.base, size=size or 0, filename=filename)
            if run_id is not None:
                payload["id"] = run_id
            respond_json(conn, payload)
        elif provider == "stripe-v2" and path.startswith("/v2/reporting/report_runs/"):
            respond_json(
                conn, stripe_v2_run(server.base, size=size or 0, zipped=zipped, run_id=run_id)
            )
        elif provider == "zuora" and path.startswith("/api/rest/v1/reportruns/export/"):
            result(request, conn, server)
        elif provider == "zuora" and path.startswith("/api/rest/v1/reportruns/"):
            respond_json(conn, zuora_run(run_id))
        elif path.startswith(("/v1/files/", "/presigned/")):
            result(request, conn, server)
        else:
            respond_json(conn, {"error": {"message": f"no route {path}"}}, status=404)

    return Hostile(handler, **options)


def settings_for(provider: str, base: str) -> dict[str, dict[str, Any]]:
    if provider == "stripe":
        return {"stripe": {"api_key": STRIPE_KEY, "base_url": base, "files_base_url": base}}
    if provider == "stripe-v2":
        return {"stripe-v2": {"api_key": STRIPE_KEY, "base_url": base}}
    return {
        "zuora": {
            "api_access_key_id": ZUORA_USER,
            "api_secret_access_key": ZUORA_SECRET,
            "base_url": f"{base}/api/rest/v1",
        }
    }


def gateway_for(provider: str, server: Hostile, **kwargs: Any) -> Gateway:
    kwargs.setdefault("retry", QUICK_RETRY)
    return Gateway(settings=settings_for(provider, server.base), environ={}, **kwargs)


def fixed(
    body: bytes, *, length: int | None | str = "auto", headers: dict[str, str] | None = None
) -> Body:
    """A result answer that is always the same bytes."""

    def send(request: Request, conn: socket.socket, server: Hostile) -> None:
        respond(conn, 200, body, headers, length=length)

    return send


def endless(block: bytes = b"x" * 65536, *, chunked: bool = False) -> Body:
    """A body that never ends (until the client hangs up or the server's life ends)."""

    def send(request: Request, conn: socket.socket, server: Hostile) -> None:
        head = "Transfer-Encoding: chunked\r\n" if chunked else ""
        conn.sendall(f"HTTP/1.1 200 OK\r\nConnection: close\r\n{head}\r\n".encode())
        sent = 0
        while server.alive and sent < 64 << 20:
            piece = f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block
            conn.sendall(piece)
            sent += len(block)
        server.state["sent"] = sent

    return send


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def everything_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def finishes_within(seconds: float, call: Callable[[], Any]) -> tuple[bool, Any]:
    """Run ``call`` in a daemon thread; whether it ended (returned or raised) in time.

    A library that ignores its deadline would hold the test as long as the server lies;
    the thread is left behind instead (the server stops by itself soon after).
    """
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(("ok", call()))
        except BaseException as exc:
            outcome.append(("error", exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return (not thread.is_alive(), outcome[0] if outcome else None)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A target folder with a sibling, so an escape is seen."""
    folder = tmp_path / "target"
    folder.mkdir()
    return folder


@pytest.fixture
def kit() -> Any:
    """This module: the servers and helpers (``--import-mode=importlib`` has no sibling imports)."""
    import sys

    return sys.modules[__name__]
