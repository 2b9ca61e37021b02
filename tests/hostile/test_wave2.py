"""Classes 2, 3 (JSON), 7 (JSON types) and 8: attacks whose fixes live in the retry layer,
the JSON reader and secret scrubbing (reporting_runtime, polling). Each states the safe
behaviour.

Deadline tests run the call in a daemon thread and give it the timeout plus one second:
a library that ignores its deadline leaves the thread behind instead of holding the suite.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from report_gateway import DownloadError, GatewayError, WaitTimeoutError
from report_gateway.cli import main


def _pending_stripe(kit: Any) -> Any:
    def handler(request: Any, conn: Any, server: Any) -> None:
        payload = kit.stripe_v1_run(server.base, size=10)
        payload.update(status="pending", result=None, succeeded_at=None)
        kit.respond_json(conn, payload)

    return handler


def _drip(request: Any, conn: Any, server: Any) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    while server.alive:
        conn.sendall(b"X")
        time.sleep(1.0)


def _silent(request: Any, conn: Any, server: Any) -> None:
    while server.alive:
        time.sleep(0.1)


def _retry_after(request: Any, conn: Any, server: Any) -> None:
    kit_body = b'{"error": {"message": "busy"}}'
    conn.sendall(
        b"HTTP/1.1 503 Busy\r\nRetry-After: 100\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(kit_body), kit_body)
    )


WAITS = {
    "wait-one-byte-per-second": _drip,
    "wait-accept-never-answer": _silent,
    "wait-503-retry-after-100": _retry_after,
}


@pytest.mark.parametrize("handler", list(WAITS.values()), ids=list(WAITS))
def test_wait_deadline_holds(handler: Any, kit: Any) -> None:
    from report_gateway import ReportRun, RunStatus

    with kit.Hostile(handler, lifetime=6.0) as s:
        gw = kit.gateway_for("stripe", s, retry=None)
        run = ReportRun(
            provider="stripe",
            id=kit.RUN_ID["stripe"],
            report_id="balance.summary.1",
            status=RunStatus.RUNNING,
            raw_status="pending",
        )
        ended, outcome = kit.finishes_within(2.0 + 1.0, lambda: gw.wait(run, timeout=2.0))
    assert ended
    assert outcome[0] == "error"
    assert isinstance(outcome[1], WaitTimeoutError)
    assert kit.RUN_ID["stripe"] in str(outcome[1])


def test_download_one_byte_per_second_has_a_stall_limit(kit: Any, workdir: Path) -> None:
    """download-stall-limit: a body at one byte a second; timeout=2 ends the download."""

    def drip(request: Any, conn: Any, server: Any) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        while server.alive:
            conn.sendall(b"x")
            time.sleep(1.0)

    with kit.provider_server("stripe", drip, size=100, lifetime=6.0) as s:
        gw = kit.gateway_for("stripe", s)
        run = gw.get("stripe", kit.RUN_ID["stripe"])
        ended, outcome = kit.finishes_within(
            3.0,
            lambda: gw.download(run, workdir / "o.csv", timeout=2.0),
        )
    assert ended
    assert outcome[0] == "error"
    assert isinstance(outcome[1], DownloadError)
    assert kit.RUN_ID["stripe"] in str(outcome[1])
    assert kit.files_in(workdir) == []


# -- JSON answers ---------------------------------------------------------------------------


def _json_answer(raw: bytes) -> Any:
    def handler(request: Any, conn: Any, server: Any) -> None:
        kit_headers = {"Content-Type": "application/json"}
        header = b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
        header += b"".join(f"{k}: {v}\r\n".encode() for k, v in kit_headers.items())
        conn.sendall(header + b"Content-Length: %d\r\n\r\n" % len(raw) + raw)

    return handler


def test_deeply_nested_json_is_a_gateway_error(kit: Any) -> None:
    """json-deep-nesting: 100 000 nested arrays."""
    raw = b'{"id": "frr_hostile", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with kit.Hostile(_json_answer(raw)) as s:
        gw = kit.gateway_for("stripe", s)
        with pytest.raises(GatewayError):
            gw.get("stripe", kit.RUN_ID["stripe"])


ID_LIES = {"json-id-null": None, "json-id-object": {}}


@pytest.mark.parametrize("value", list(ID_LIES.values()), ids=list(ID_LIES))
def test_ids_of_the_wrong_type_are_refused(value: Any, kit: Any) -> None:
    def handler(request: Any, conn: Any, server: Any) -> None:
        payload = kit.stripe_v1_run(server.base, size=10)
        payload["id"] = value
        kit.respond_json(conn, payload)

    with kit.Hostile(handler) as s:
        gw = kit.gateway_for("stripe", s)
        try:
            run = gw.get("stripe", kit.RUN_ID["stripe"])
        except GatewayError:
            return
    assert run.id not in ("None", "{}")


# -- secrets echoed by the server -----------------------------------------------------------


def _echo_401(request: Any, conn: Any, server: Any) -> None:
    secret = request.header("apiSecretAccessKey") or request.header("Authorization") or ""
    body = json.dumps(
        {"success": False, "reasons": [{"code": "90000011", "message": f"bad key {secret}"}]}
    ).encode()
    conn.sendall(
        b"HTTP/1.1 401 No\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def test_zuora_secret_echoed_in_401_never_surfaces(
    kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """secret-echo-zuora-401: str, repr, message, excerpt and logs stay clean."""
    caplog.set_level(logging.DEBUG)
    with kit.Hostile(_echo_401) as s:
        gw = kit.gateway_for("zuora", s)
        with pytest.raises(GatewayError) as caught:
            gw.get("zuora", kit.RUN_ID["zuora"])
    exc = caught.value
    seen = [str(exc), repr(exc), str(getattr(exc, "message", "")), caplog.text]
    seen.append(str(getattr(exc, "raw_body_excerpt", "")))
    cause = exc.__cause__
    seen += [str(cause), repr(cause), str(getattr(cause, "raw_body_excerpt", ""))]
    assert not [text for text in seen if kit.ZUORA_SECRET in text]


def test_zuora_secret_echoed_stays_out_of_cli_debug(
    kit: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """secret-echo-cli-debug: the --debug traceback does not show the echoed secret."""
    with kit.Hostile(_echo_401) as s:
        main(
            [
                "--debug",
                "--set",
                f"api_access_key_id={kit.ZUORA_USER}",
                "--set",
                f"api_secret_access_key={kit.ZUORA_SECRET}",
                "--base-url",
                f"{s.base}/api/rest/v1",
                "status",
                "zuora",
                kit.RUN_ID["zuora"],
            ]
        )
    out = capsys.readouterr()
    assert kit.ZUORA_SECRET not in out.out + out.err


def test_stripe_key_echoed_in_401_never_surfaces(kit: Any) -> None:
    """secret-echo-stripe-401: a key-shaped secret echoed back is scrubbed."""
    with kit.Hostile(_echo_401) as s:
        gw = kit.gateway_for("stripe", s)
        with pytest.raises(GatewayError) as caught:
            gw.get("stripe", kit.RUN_ID["stripe"])
    text = str(caught.value) + repr(caught.value) + str(caught.value.__cause__)
    assert kit.STRIPE_KEY not in text


def test_presigned_url_never_gets_the_key(kit: Any, workdir: Path) -> None:
    """presigned-no-key: Stripe v2's download URL receives no Authorization header."""
    with kit.provider_server("stripe-v2", kit.fixed(kit.CSV), size=len(kit.CSV)) as s:
        gw = kit.gateway_for("stripe-v2", s)
        gw.download(gw.get("stripe-v2", kit.RUN_ID["stripe-v2"]), workdir / "o.csv")
        fetches = [r for r in s.requests if r.path.startswith("/presigned/")]
    assert fetches
    assert all(r.header("Authorization") is None for r in fetches)


def test_redirect_to_another_host_is_not_followed(kit: Any, workdir: Path) -> None:
    """files-redirect-elsewhere: a 302 from the files host is an error, key not forwarded."""

    def redirect(request: Any, conn: Any, server: Any) -> None:
        kit.respond(conn, 302, b"", {"Location": "http://localhost:9/steal"})

    with kit.provider_server("stripe", redirect, size=10) as s:
        gw = kit.gateway_for("stripe", s)
        with pytest.raises(GatewayError):
            gw.download(gw.get("stripe", kit.RUN_ID["stripe"]), workdir / "o.csv")
    assert kit.files_in(workdir) == []


def test_download_stall_limit_ends_a_silent_body(kit: Any, workdir: Path) -> None:
    """download-stall: ten bytes, then silence; stall_timeout bounds each wait for a byte."""

    def stall(request: Any, conn: Any, server: Any) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        while server.alive:
            time.sleep(0.1)

    with kit.provider_server("stripe", stall, size=100, lifetime=8.0) as s:
        gw = kit.gateway_for("stripe", s)
        run = gw.get("stripe", kit.RUN_ID["stripe"])
        # Five attempts (a stalled connection is resumed), each ending after 0.3 s of silence.
        ended, outcome = kit.finishes_within(
            5 * 0.3 + 1.0, lambda: gw.download(run, workdir / "o.csv", stall_timeout=0.3)
        )
    assert ended
    assert outcome[0] == "error"
    assert isinstance(outcome[1], DownloadError)
    assert kit.files_in(workdir) == []


def test_rows_deadline_holds_against_a_trickle(kit: Any) -> None:
    """rows-one-byte-per-second: rows(timeout=2) ends within a second of its deadline."""

    def drip(request: Any, conn: Any, server: Any) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nid,amount\n")
        while server.alive:
            conn.sendall(b"1")
            time.sleep(1.0)

    with kit.provider_server("stripe", drip, size=100, lifetime=6.0) as s:
        gw = kit.gateway_for("stripe", s)
        run = gw.get("stripe", kit.RUN_ID["stripe"])
        ended, outcome = kit.finishes_within(3.0, lambda: list(gw.rows(run, timeout=2.0)))
    assert ended
    assert outcome[0] == "error"
    assert isinstance(outcome[1], DownloadError)


def test_download_deadline_holds_against_a_silent_server(kit: Any, workdir: Path) -> None:
    """download-accept-never-answer: no status line ever; timeout=2 still ends the call."""
    with kit.provider_server("stripe", _silent, size=100, lifetime=6.0) as s:
        gw = kit.gateway_for("stripe", s)
        run = gw.get("stripe", kit.RUN_ID["stripe"])
        ended, outcome = kit.finishes_within(
            3.0, lambda: gw.download(run, workdir / "o.csv", timeout=2.0)
        )
    assert ended
    assert outcome[0] == "error"
    assert isinstance(outcome[1], DownloadError)
    assert kit.files_in(workdir) == []
