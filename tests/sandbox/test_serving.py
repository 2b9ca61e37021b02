"""How the sandbox is started and listed: the command, the operation list, concurrency, and
Stripe's own Python SDK working against it."""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
from typing import Any

import pytest
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox, operations
from report_gateway_sandbox.server import make_server

from .conftest import STRIPE_AUTH, Http, wait_until


def test_operations_lists_every_served_route(client: Http) -> None:
    ops = operations()
    by_provider: dict[str, set[str]] = {}
    for op in ops:
        if op["in_spec"]:
            by_provider.setdefault(str(op["provider"]), set()).add(f"{op['method']} {op['path']}")
    assert by_provider["stripe"] == {
        "GET /v1/reporting/report_types",
        "GET /v1/reporting/report_types/{report_type}",
        "POST /v1/reporting/report_runs",
        "GET /v1/reporting/report_runs",
        "GET /v1/reporting/report_runs/{report_run}",
        "GET /v1/files/{file}/contents",
    }
    assert by_provider["stripe-v2"] == {
        "GET /v2/reporting/reports/{id}",
        "POST /v2/reporting/report_runs",
        "GET /v2/reporting/report_runs/{id}",
    }
    zuora = [op for op in ops if op["provider"] == "zuora"]
    zconnect = {f"{op['method']} {op['path']}" for op in zuora if op["family"] == "zconnect"}
    rest = {f"{op['method']} {op['path']}" for op in zuora if op["family"] == "rest"}
    assert len(zconnect) == 7
    assert all(p.split(" ")[1].startswith("/api/rest/v1/") for p in zconnect)
    # The REST hosts serve the same operations under /reporting, plus the OAuth token.
    assert rest == {p.replace(" /api/", " /reporting/api/") for p in zconnect} | {
        "POST /oauth/token"
    }
    assert {op["family"] for op in ops if op["provider"] != "zuora"} == {None}
    assert client.get("/_sandbox/operations").json() == ops


def test_many_concurrent_connections(client: Http) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def fetch() -> None:
        status = client.get("/v1/reporting/report_types", headers=STRIPE_AUTH).status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=fetch) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 64


def test_command_line_serves_until_stopped() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "report_gateway_sandbox", "--port", "0", "--run-seconds", "0.1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("report-gateway-sandbox serving on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1].strip()
        assert Http(url).get("/v1/reporting/report_types", headers=STRIPE_AUTH).status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_context_manager_stops_cleanly() -> None:
    with Sandbox() as sb:
        url = sb.url
        assert sb.zuora_base_url == url + "/api/rest/v1"
        assert sb.files_base_url == url
    with pytest.raises(OSError):  # noqa: PT011 - refused, whatever the platform's subclass
        Http(url).get("/_sandbox/health")


def test_stripe_python_sdk_works_against_the_sandbox(sandbox: Sandbox) -> None:
    stripe = pytest.importorskip("stripe")
    client = stripe.StripeClient(
        STRIPE_TEST_KEY,
        base_addresses={"api": sandbox.stripe_base_url, "files": sandbox.files_base_url},
    )
    params: dict[str, Any] = {
        "report_type": "balance.summary.1",
        "parameters": {"interval_start": 1735689600, "interval_end": 1738368000},
    }
    created = client.v1.reporting.report_runs.create(params=params)
    assert created.status == "pending"
    done = wait_until(
        lambda: (r := client.v1.reporting.report_runs.retrieve(created.id)).status == "succeeded"
        and r
    )
    assert done.result.size > 0
    listed = client.v1.reporting.report_runs.list(params={"limit": 3})
    assert [r.id for r in listed.data] == [created.id]
    stripe.api_key = STRIPE_TEST_KEY
    stripe.api_base = sandbox.stripe_base_url
    try:
        legacy = stripe.reporting.ReportRun.create(**params)
        assert stripe.reporting.ReportRun.retrieve(legacy.id).id == legacy.id
        assert len(stripe.reporting.ReportRun.list(limit=10).data) == 2
    finally:
        stripe.api_base = "https://api.stripe.com"
        stripe.api_key = None


def test_one_connection_serves_many_requests(sandbox: Sandbox) -> None:
    """HTTP/1.1 keep-alive, as the real services: per-call costs measured against the
    sandbox must not include a new connection per request."""
    conn = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=10)
    try:
        replies = []
        for method, path, body in (
            ("GET", "/v1/reporting/report_types", None),
            ("POST", "/v1/reporting/report_runs", b"report_type=balance.summary.1"),
            ("HEAD", "/v1/reporting/report_types", None),
            ("GET", "/v1/reporting/report_types/balance.summary.1", None),
        ):
            headers = dict(STRIPE_AUTH)
            if body is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            replies.append((resp.version, resp.status, resp.getheader("Connection")))
            sock = conn.sock
            assert sock is not None, f"{method} {path} closed the connection"
        assert [r[0] for r in replies] == [11] * 4
        assert all(r[2] is None for r in replies)
        assert replies[1][1] == 400  # parameters missing: an error answer keeps it too
    finally:
        conn.close()


def test_a_body_of_unknown_length_is_sent_chunked() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"first ", b"", b"second"])

    server = make_server("127.0.0.1", 0, app)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        for _ in range(2):
            conn.request("GET", "/")
            resp = conn.getresponse()
            assert resp.getheader("Transfer-Encoding") == "chunked"
            assert resp.read() == b"first second"
        conn.request("GET", "/", headers={"Connection": "close"})
        resp = conn.getresponse()
        assert resp.getheader("Transfer-Encoding") is None
        assert resp.getheader("Connection") == "close"
        assert resp.read() == b"first second"
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_stopping_ends_kept_alive_connections() -> None:
    with Sandbox() as sb:
        conn = http.client.HTTPConnection("127.0.0.1", sb.port, timeout=10)
        conn.request("GET", "/_sandbox/health")
        assert conn.getresponse().read()

    def again() -> bytes:
        conn.request("GET", "/_sandbox/health")
        return conn.getresponse().read()

    with pytest.raises((OSError, http.client.HTTPException)):
        again()
    conn.close()
