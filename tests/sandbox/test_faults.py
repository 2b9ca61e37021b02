"""Every fault kind, its provider-shaped body, and the ways a rule is limited."""

from __future__ import annotations

import email.utils
import http.client
import json
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from report_gateway_sandbox import FaultRule, Sandbox

from .conftest import (
    STRIPE_AUTH,
    V2_HEADERS,
    ZUORA,
    ZUORA_AUTH,
    Http,
    create_v1,
    create_v2,
    finished_v1,
    finished_v2,
)

TYPE_PATH = "/v1/reporting/report_types/balance.summary.1"


def test_server_error_bodies_follow_each_provider(client: Http, sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="server_error", status=502, should_retry=True))
    v1 = client.get(TYPE_PATH, headers=STRIPE_AUTH)
    assert v1.status == 502
    assert v1.json()["error"]["type"] == "api_error"
    assert v1.header("Stripe-Should-Retry") == "true"
    v2 = client.get("/v2/reporting/reports/report_balance_summary", headers=V2_HEADERS)
    assert v2.status == 502
    assert v2.json()["error"]["type"] == "api_error"
    zuora = client.get(f"{ZUORA}/reports/search?query=x", headers=ZUORA_AUTH)
    assert zuora.status == 502
    assert zuora.body.startswith(b"<?xml")
    assert b'<zanResponse success="false">' in zuora.body
    assert zuora.header("Zuora-Request-Id")


def test_rate_limit_with_retry_after_seconds_and_date(client: Http, sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="rate_limit", path=TYPE_PATH, retry_after=7, count=1))
    reply = client.get(TYPE_PATH, headers=STRIPE_AUTH)
    assert reply.status == 429
    assert reply.header("Retry-After") == "7"
    assert reply.json()["error"]["code"] == "rate_limit"
    assert client.get(TYPE_PATH, headers=STRIPE_AUTH).status == 200
    sandbox.configure(
        faults=[
            FaultRule(
                kind="rate_limit", path=f"{ZUORA}/*", retry_after=30, retry_after_http_date=True
            )
        ]
    )
    zuora = client.get(f"{ZUORA}/reports/search?query=x", headers=ZUORA_AUTH)
    assert zuora.status == 429
    when = email.utils.parsedate_to_datetime(zuora.header("Retry-After") or "")
    assert 20 < when.timestamp() - time.time() <= 31
    assert zuora.header("ratelimit-remaining") == "0"


def test_latency_before_and_after_the_handler(client: Http, sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="latency", path=TYPE_PATH, latency=0.3, count=1))
    started = time.monotonic()
    assert client.get(TYPE_PATH, headers=STRIPE_AUTH).status == 200
    assert time.monotonic() - started >= 0.3
    # A late answer to a create: the run exists before the client hears about it.
    sandbox.add_fault(
        FaultRule(kind="latency", path="/v1/reporting/report_runs", latency=0.5, phase="response")
    )
    host = urlsplit(sandbox.url)
    conn = http.client.HTTPConnection(host.hostname or "", host.port, timeout=0.2)
    body = (
        "report_type=balance.summary.1"
        "&parameters[interval_start]=1735689600&parameters[interval_end]=1738368000"
    )
    conn.request(
        "POST",
        "/v1/reporting/report_runs",
        body=body,
        headers={**STRIPE_AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(TimeoutError):
        conn.getresponse()
    conn.close()
    assert sandbox.stats()["runs_created"]["stripe"] == 1


def _raw_get(sandbox: Sandbox, path: str, headers: dict[str, str]) -> tuple[int, int, bytes]:
    """(announced length, bytes received, body) without http.client's length checks."""
    host = urlsplit(sandbox.url)
    with socket.create_connection((host.hostname or "", host.port or 80), timeout=10) as sock:
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode())
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            return -1, len(data), data
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return length, len(body), body


def test_truncated_body_announces_more_than_it_sends(client: Http, sandbox: Sandbox) -> None:
    done = finished_v1(client, create_v1(client).json()["id"])
    path = urlsplit(done["result"]["url"]).path
    sandbox.add_fault(FaultRule(kind="truncate_body", path="/v1/files/*", after_bytes=100, count=1))
    announced, received, _ = _raw_get(sandbox, path, STRIPE_AUTH)
    assert announced == done["result"]["size"]
    assert received == 100
    sandbox.add_fault(FaultRule(kind="truncate_body", path="/v1/files/*", count=1))
    with pytest.raises(http.client.IncompleteRead):
        client.get(path, headers=STRIPE_AUTH)


def test_dropped_connection_resets_mid_body(client: Http, sandbox: Sandbox) -> None:
    sandbox.configure(result_rows=50_000)
    done = finished_v1(client, create_v1(client).json()["id"])
    path = urlsplit(done["result"]["url"]).path
    sandbox.add_fault(
        FaultRule(kind="drop_connection", path="/v1/files/*", after_bytes=200_000, count=1)
    )
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        client.get(path, headers=STRIPE_AUTH)
    assert len(client.get(path, headers=STRIPE_AUTH).body) == done["result"]["size"]
    assert sandbox.stats()["faults_injected"]["drop_connection"] == 1


def test_malformed_json(client: Http, sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="malformed_json", path=TYPE_PATH, count=1))
    reply = client.get(TYPE_PATH, headers=STRIPE_AUTH)
    assert reply.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.body)
    assert client.get(TYPE_PATH, headers=STRIPE_AUTH).json()["id"] == "balance.summary.1"


def test_expired_url_fault(client: Http, sandbox: Sandbox) -> None:
    done = finished_v2(client, create_v2(client).json()["id"])
    url = done["result"]["file"]["download_url"]["url"]
    sandbox.add_fault(FaultRule(kind="expired_url", path="/_files/v2/*", count=1))
    assert client.get(url).status == 403
    assert client.get(url).status == 200


def test_fail_run_for_each_provider(client: Http, sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="fail_run", count=3))
    v1 = finished_v1(client, create_v1(client).json()["id"])
    assert v1["status"] == "failed"
    assert v1["error"]
    v2 = finished_v2(client, create_v2(client).json()["id"])
    assert v2["status"] == "failed"
    assert v2["status_details"]["failed"]["error_code"] == "internal_error"
    reply = client.post(
        f"{ZUORA}/reports/ff8080816293d35b0162bcb3e7780a76/reportrun?viewType=Detail",
        headers=ZUORA_AUTH,
    )
    run_id = reply.json()["response"]["reportRunId"]
    sandbox.advance_clock(1)  # past run_seconds: finished, on the sandbox's clock
    status = client.get(f"{ZUORA}/reportruns/{run_id}", headers=ZUORA_AUTH).json()
    assert status["response"]["status"] == "ERROR"


def test_skip_count_and_method_limit_a_rule(client: Http, sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="server_error", path=TYPE_PATH, method="GET", skip=1, count=2))
    statuses = [client.get(TYPE_PATH, headers=STRIPE_AUTH).status for _ in range(4)]
    assert statuses == [200, 503, 503, 200]


def test_rate_rules_are_reproducible_from_the_seed(make_sandbox: Callable[..., Sandbox]) -> None:
    def pattern() -> list[int]:
        rule = FaultRule(kind="server_error", path=TYPE_PATH, rate=0.5)
        with make_sandbox(seed=7, faults=[rule]) as sb:
            http_ = Http(sb.url)
            return [http_.get(TYPE_PATH, headers=STRIPE_AUTH).status for _ in range(12)]

    first = pattern()
    assert first == pattern()
    assert {200, 503} == set(first)


def test_control_endpoints(client: Http, sandbox: Sandbox) -> None:
    rule = {"kind": "server_error", "path": TYPE_PATH, "count": 1, "status": 500}
    updated = client.post("/_sandbox/config", json_body={"add_faults": [rule], "run_seconds": 0.1})
    assert updated.status == 200
    assert updated.json()["run_seconds"] == 0.1
    assert updated.json()["zuora_secret_access_key"] == "***"
    assert sandbox.config.run_seconds == 0.1
    assert client.get(TYPE_PATH, headers=STRIPE_AUTH).status == 500
    create_v1(client)
    stats = client.get("/_sandbox/stats").json()
    assert stats["runs_created"] == {"stripe": 1, "stripe-v2": 0, "zuora": 0}
    assert stats["faults_injected"] == {"server_error": 1}
    entry = stats["request_log"][-1]
    assert entry["operation"] == "create_report_run"
    assert entry["headers"]["Authorization"] == STRIPE_AUTH["Authorization"]
    assert client.get("/_sandbox/config").json()["faults"][0]["kind"] == "server_error"
    bad = client.post("/_sandbox/config", json_body={"faults": [{"kind": "earthquake"}]})
    assert bad.status == 400
    assert client.post("/_sandbox/reset").status == 200
    assert client.get("/_sandbox/stats?log=false").json()["runs_created"]["stripe"] == 0


def test_header_log_shows_no_key_went_to_presigned_urls(client: Http, sandbox: Sandbox) -> None:
    done = finished_v2(client, create_v2(client).json()["id"])
    client.get(done["result"]["file"]["download_url"]["url"])
    downloads = [
        e for e in sandbox.stats()["request_log"] if e["operation"] == "download_presigned"
    ]
    assert len(downloads) == 1
    assert "Authorization" not in downloads[0]["headers"]
    creates = [e for e in sandbox.stats()["request_log"] if e["operation"] == "create_report_run"]
    assert creates[0]["headers"]["Stripe-Version"] == "2026-01-28.preview"
