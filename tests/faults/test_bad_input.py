"""Scenario 5: bad input. Broken bodies, odd statuses, unexpected fields, oversized headers
and silent servers give a clear gateway error or the documented tolerant result, in bounded
time, never a hang or a library traceback.

A scripted server stands in for Zuora where the sandbox cannot misbehave the needed way.
"""

from __future__ import annotations

import codecs
import json
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from report_gateway import Gateway, GatewayError, RunStatus
from report_gateway.errors import ProviderError, WaitTimeoutError
from report_gateway.provider import UnknownStatusWarning
from report_gateway_sandbox import FaultRule, Sandbox
from reporting_runtime import Timeout, Transport

RUN_ID = "2c92c0f8-bad-input-run"
PREFIX = "/api/rest/v1"


def zuora_run(status: str = "COMPLETED", **extra: Any) -> bytes:
    run = {
        "id": RUN_ID,
        "reportId": "ff8080816293d35b0162bcb3e7780a75",
        "reportType": "Summary",
        "status": status,
        "startedOn": "2024-04-13T02:11:38.464+0000",
        "updatedOn": "2024-04-13T02:12:38.464+0000",
        "reportDefinition": "{}",
        **extra,
    }
    return json.dumps({"success": True, "response": run}).encode()


Reply = tuple[int, list[tuple[str, str]], bytes]


class Scripted:
    """Answers GETs from a path -> reply table; "stall" keeps the socket silent."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply | str] = {}
        self.hits: dict[str, int] = {}
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                scripted.hits[path] = scripted.hits.get(path, 0) + 1
                reply = scripted.replies.get(path, (404, [], b'{"message": "nope"}'))
                if reply == "stall":
                    time.sleep(3)
                    self.close_connection = True
                    return
                assert not isinstance(reply, str)
                status, headers, body = reply
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                if not any(n.lower() == "content-length" for n, _ in headers):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # a stalled handler must not hold up teardown
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}{PREFIX}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def reply(self, path: str, status: int, body: bytes, *headers: tuple[str, str]) -> None:
        content = [("Content-Type", "application/json")] if body[:1] in (b"{", b"[") else []
        self.replies[PREFIX + path] = (status, [*content, *headers], body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.close()


@pytest.fixture
def transport() -> Iterator[Transport]:
    with Transport(timeout=Timeout(connect=2, read=0.5)) as shared:
        yield shared


@pytest.fixture
def zuora(
    scripted: Scripted, make_gateway: Callable[..., Gateway], transport: Transport
) -> Gateway:
    return make_gateway({"zuora": {"base_url": scripted.base_url}}, transport=transport)


def assert_clear(error: BaseException, *words: str) -> None:
    """A gateway error whose message names the provider and says what went wrong."""
    assert isinstance(error, GatewayError)
    text = str(error)
    assert "zuora" in text or "stripe" in text
    assert "Traceback" not in text
    for word in words:
        assert word.lower() in text.lower(), text


def test_malformed_json_is_a_clear_error(scripted: Scripted, zuora: Gateway) -> None:
    scripted.reply(f"/reportruns/{RUN_ID}", 200, b'{"success": true, "response": {"id": ')
    with pytest.raises(ProviderError) as caught:
        zuora.get("zuora", RUN_ID)
    assert_clear(caught.value, "get_report_run")


@pytest.mark.parametrize("provider", ["stripe", "stripe-v2", "zuora"])
def test_malformed_json_from_the_sandbox_is_a_clear_error(
    provider: str, sandbox: Sandbox, gateway: Gateway, kit: Any
) -> None:
    report_id, params = kit.REPORTS[provider]
    run = gateway.start(provider, report_id, params)
    sandbox.add_fault(FaultRule(kind="malformed_json", path=kit.GET_RUN_PATH[provider]))
    with pytest.raises(ProviderError) as caught:
        gateway.get(provider, run.id)
    assert_clear(caught.value)


def test_html_error_page_is_a_clear_error(scripted: Scripted, zuora: Gateway) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    scripted.reply(f"/reportruns/{RUN_ID}", 502, page, ("Content-Type", "text/html"))
    with pytest.raises(ProviderError) as caught:
        zuora.get("zuora", RUN_ID)
    assert caught.value.status == 502
    assert_clear(caught.value, "502", "Bad Gateway")
    assert "<html" not in str(caught.value).lower()


def test_html_page_with_200_is_a_clear_error(scripted: Scripted, zuora: Gateway) -> None:
    page = b"<!DOCTYPE html><html><title>Sign in</title><body>login</body></html>"
    scripted.reply(f"/reportruns/{RUN_ID}", 200, page, ("Content-Type", "text/html"))
    with pytest.raises(GatewayError) as caught:
        zuora.get("zuora", RUN_ID)
    assert_clear(caught.value)


def test_xml_error_body_gives_its_message(sandbox: Sandbox, gateway: Gateway, kit: Any) -> None:
    report_id, params = kit.REPORTS["zuora"]
    run = gateway.start("zuora", report_id, params)
    sandbox.add_fault(
        FaultRule(kind="server_error", path=kit.GET_RUN_PATH["zuora"], status=400, count=1)
    )
    with pytest.raises(ProviderError) as caught:
        gateway.get("zuora", run.id)
    assert caught.value.status == 400
    assert_clear(caught.value, "Internal server error")
    assert "<zanResponse" not in str(caught.value)


def test_unknown_status_is_kept_and_waited_on_not_a_crash(
    scripted: Scripted, zuora: Gateway
) -> None:
    scripted.reply(f"/reportruns/{RUN_ID}", 200, zuora_run("REHYDRATING"))
    with pytest.warns(UnknownStatusWarning, match="REHYDRATING"):
        run = zuora.get("zuora", RUN_ID)
    assert run.raw_status == "REHYDRATING"
    assert run.status is RunStatus.RUNNING
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStatusWarning)
        with pytest.raises(WaitTimeoutError):
            zuora.wait(run, timeout=30, clock=lambda: now[0], sleep=sleep)


def test_unexpected_fields_are_ignored_and_kept(scripted: Scripted, zuora: Gateway) -> None:
    scripted.reply(
        f"/reportruns/{RUN_ID}",
        200,
        zuora_run("COMPLETED", futureField={"nested": [1, 2]}, priority=7),
    )
    run = zuora.get("zuora", RUN_ID)
    assert run.status is RunStatus.SUCCEEDED
    assert run.raw is not None
    assert run.raw["futureField"] == {"nested": [1, 2]}


def test_huge_header_is_a_clear_error_not_a_hang(scripted: Scripted, zuora: Gateway) -> None:
    scripted.reply(f"/reportruns/{RUN_ID}", 200, zuora_run(), ("X-Padding", "a" * 70_000))
    with pytest.raises(GatewayError) as caught:
        zuora.get("zuora", RUN_ID)
    assert_clear(caught.value)


def test_too_many_headers_is_a_clear_error(scripted: Scripted, zuora: Gateway) -> None:
    many = [(f"X-Extra-{i}", "x") for i in range(150)]
    scripted.reply(f"/reportruns/{RUN_ID}", 200, zuora_run(), *many)
    with pytest.raises(GatewayError) as caught:
        zuora.get("zuora", RUN_ID)
    assert_clear(caught.value)


def test_silent_server_times_out_with_a_clear_error(scripted: Scripted, zuora: Gateway) -> None:
    scripted.replies[f"{PREFIX}/reportruns/{RUN_ID}"] = "stall"
    with pytest.raises(ProviderError) as caught:
        zuora.get("zuora", RUN_ID)
    assert_clear(caught.value, "timed out")


def test_nul_bytes_and_ragged_rows_give_the_documented_tolerant_rows(
    scripted: Scripted, zuora: Gateway, tmp_path: Path
) -> None:
    text = (
        "Account: Currency\tAccount: Number\tBalance\r\n"
        "EUR\tA-1\t10.00\r\n"
        "USD\x00\tA-2\r\n"  # a NUL, and a short row
        "JPY\tA-3\t30\tsurplus\r\n"  # one cell too many
        "\r\n"
        "GBP\tA-\x004\t40.00\r\n"
    )
    body = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    scripted.reply(f"/reportruns/{RUN_ID}", 200, zuora_run("COMPLETED"))
    scripted.reply(
        f"/reportruns/export/{RUN_ID}", 200, body, ("Content-Type", "text/csv;charset=utf-16")
    )
    run = zuora.get("zuora", RUN_ID)
    rows = list(zuora.rows(run))
    assert rows == [
        {"Account: Currency": "EUR", "Account: Number": "A-1", "Balance": "10.00"},
        {"Account: Currency": "USD", "Account: Number": "A-2", "Balance": ""},
        {
            "Account: Currency": "JPY",
            "Account: Number": "A-3",
            "Balance": "30",
            "_extra_1": "surplus",
        },
        {"Account: Currency": "GBP", "Account: Number": "A-4", "Balance": "40.00"},
    ]
    saved = zuora.download(run, tmp_path / "out.csv").read_text(encoding="utf-8")
    assert saved.splitlines()[0] == "Account: Currency,Account: Number,Balance"
    # A download is the provider's file, converted to UTF-8 CSV cell for cell, NULs dropped
    # as rows() drops them (padding, never data); the other tolerant rules are rows()'s.
    assert saved == text.replace("\x00", "").replace("\t", ",").replace("\r\n", "\n")


def test_connection_refused_is_a_clear_error(
    make_gateway: Callable[..., Gateway],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = make_gateway({"zuora": {"base_url": f"http://127.0.0.1:{port}{PREFIX}"}})
    with pytest.raises(ProviderError) as caught:
        gateway.get("zuora", RUN_ID)
    assert_clear(caught.value, "could not connect")


def test_zuora_start_that_never_connected_is_not_ambiguous(
    make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    """Nothing was sent, so there is no run to look for: a plain error, at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = make_gateway({"zuora": {"base_url": f"http://127.0.0.1:{port}{PREFIX}"}})
    report_id, params = kit.REPORTS["zuora"]
    with pytest.raises(ProviderError) as caught:
        gateway.start("zuora", report_id, params)
    assert_clear(caught.value, "could not connect")
