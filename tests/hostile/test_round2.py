"""Round 2 of issue 10: what the independent reviewer's own servers broke, each attack
re-staged here with a raw-socket server and the safe behaviour it must end in.

Deadline tests run the call in a daemon thread and give it the timeout plus one second
(``finishes_within``): a library that ignores its deadline leaves the thread behind.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from report_gateway import GatewayError, ProviderError, ReportRun, RunStatus, WaitTimeoutError
from report_gateway.cli import main


def test_content_length_of_5000_digits_is_a_gateway_error(kit: Any, workdir: Path) -> None:
    """content-length-huge-digits: the result's Content-Length has 5000 digits (int()
    refuses it). Safe: the framing is refused, a GatewayError, no file."""

    def answer(request: Any, conn: Any, server: Any) -> None:
        kit.respond(conn, 200, kit.CSV, length="1" * 5000)

    with kit.provider_server("stripe", answer, size=len(kit.CSV)) as s:
        gw = kit.gateway_for("stripe", s)
        with pytest.raises(GatewayError, match="Content-Length"):
            gw.download(gw.get("stripe", kit.RUN_ID["stripe"]), workdir / "o.csv")
    assert kit.files_in(workdir) == []


def _pending_with_filler(kit: Any, base: str, megabytes: float) -> bytes:
    run = json.dumps(
        {**kit.stripe_v1_run(base, size=1), "status": "pending", "result": None}
    ).encode()
    count = int(megabytes * (1 << 20)) // 3
    return run[:-1] + b', "junk": [' + b",".join([b"[]"] * count) + b"]}"


def test_a_json_poll_of_a_million_empty_lists_is_refused_unparsed(kit: Any) -> None:
    """json-many-small-lists-wait: each poll answers 3.5 MiB of ``[[],[],...]`` (under the
    byte cap, a million lists once parsed). Safe: refused before parsing (a GatewayError
    saying so), well within the wait's deadline."""
    holder: dict[str, bytes] = {}

    def answer(request: Any, conn: Any, server: Any) -> None:
        if "body" not in holder:
            holder["body"] = _pending_with_filler(kit, server.base, 3.5)
        kit.respond(conn, 200, holder["body"], {"Content-Type": "application/json"})

    with kit.Hostile(answer, lifetime=10.0) as s:
        gw = kit.gateway_for("stripe", s, retry=None)
        run = ReportRun(
            provider="stripe",
            id=kit.RUN_ID["stripe"],
            report_id="balance.summary.1",
            status=RunStatus.RUNNING,
            raw_status="pending",
        )
        ended, outcome = kit.finishes_within(5.0 + 1.0, lambda: gw.wait(run, timeout=5.0))
    assert ended
    assert outcome[0] == "error"
    assert isinstance(outcome[1], ProviderError)
    assert "values" in str(outcome[1])


def test_a_json_answer_beyond_4_mib_is_refused_before_reading(kit: Any) -> None:
    """json-15-mib-answer: 15 MiB answer to get (reporting answers are kilobytes). Safe:
    refused from its Content-Length, a GatewayError."""
    holder: dict[str, bytes] = {}

    def answer(request: Any, conn: Any, server: Any) -> None:
        if "body" not in holder:
            holder["body"] = _pending_with_filler(kit, server.base, 15)
        kit.respond(conn, 200, holder["body"], {"Content-Type": "application/json"})

    with kit.Hostile(answer) as s:
        gw = kit.gateway_for("stripe", s)
        with pytest.raises(ProviderError, match="4194304-byte limit"):
            gw.get("stripe", kit.RUN_ID["stripe"])


@pytest.mark.parametrize("provider", ["stripe", "stripe-v2", "zuora"])
def test_a_lookup_answered_with_another_run_is_refused(provider: str, kit: Any) -> None:
    """json-id-mismatch: ``get(provider, id)`` and ``wait`` answered with another run's id.
    Safe: a ProviderError naming both ids; the other run is never taken for the one asked."""

    def never(request: Any, conn: Any, server: Any) -> None:
        kit.respond(conn, 500)

    with kit.provider_server(provider, never, size=10, run_id="run_OTHER") as s:
        gw = kit.gateway_for(provider, s)
        with pytest.raises(ProviderError) as caught:
            gw.get(provider, kit.RUN_ID[provider])
        assert kit.RUN_ID[provider] in str(caught.value)
        assert "run_OTHER" in str(caught.value)
        run = ReportRun(
            provider=provider,
            id=kit.RUN_ID[provider],
            report_id="r",
            status=RunStatus.RUNNING,
            raw_status="running",
        )
        with pytest.raises(ProviderError, match="run_OTHER"):
            gw.wait(run, timeout=5.0, poll_interval=0.01)


def test_urllib3_debug_records_never_show_the_held_secret(
    kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """secret-in-url-logs: the run id echoes the Zuora secret (so the polled URL holds it)
    and the API redirects (same host) with the secret in the query. Safe: no log record,
    urllib3's DEBUG ones included, shows the secret or the query's values."""
    run_id = f"zrun-{kit.ZUORA_SECRET}"

    def answer(request: Any, conn: Any, server: Any) -> None:
        if "moved" not in request.path:
            kit.respond(
                conn, 302, b"", {"Location": f"{request.path}?moved=1&k={kit.ZUORA_SECRET}"}
            )
        else:
            kit.respond_json(conn, kit.zuora_run(run_id))

    caplog.set_level(logging.DEBUG)
    with kit.Hostile(answer) as s:
        gw = kit.gateway_for("zuora", s)
        run = gw.get("zuora", run_id)
    assert run.id == run_id  # the URL really held the secret, twice
    messages = [r.getMessage() for r in caplog.records]
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    assert not [m for m in messages if kit.ZUORA_SECRET in m]


def test_a_redirect_of_the_result_to_another_host_is_not_followed(kit: Any, workdir: Path) -> None:
    """files-redirect-other-host: the files host answers 307 to another origin holding a
    CSV. Safe: a GatewayError, nothing asked of the other host, no file."""
    with kit.Hostile(kit.fixed(kit.CSV)) as elsewhere:

        def redirect(request: Any, conn: Any, server: Any) -> None:
            kit.respond(conn, 307, b"", {"Location": f"{elsewhere.base}/v1/files/f/contents"})

        with kit.provider_server("stripe", redirect, size=len(kit.CSV)) as s:
            gw = kit.gateway_for("stripe", s)
            with pytest.raises(GatewayError, match="another host"):
                gw.download(gw.get("stripe", kit.RUN_ID["stripe"]), workdir / "o.csv")
        assert elsewhere.requests == []
    assert kit.files_in(workdir) == []


def test_an_api_redirect_to_another_host_is_not_followed(kit: Any) -> None:
    """api-redirect-other-host: the run lookup answers 302 elsewhere. Safe: a
    ProviderError, the other host never asked (with or without the key)."""
    with kit.Hostile(lambda r, c, s: kit.respond_json(c, kit.zuora_run())) as elsewhere:

        def redirect(request: Any, conn: Any, server: Any) -> None:
            kit.respond(conn, 302, b"", {"Location": f"{elsewhere.base}{request.path}"})

        with kit.Hostile(redirect) as s:
            gw = kit.gateway_for("zuora", s)
            with pytest.raises(ProviderError, match="another host"):
                gw.get("zuora", kit.RUN_ID["zuora"])
        assert elsewhere.requests == []


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_cli_output_never_prints_an_echoed_secret(
    as_json: bool, kit: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """secret-in-cli-output: the run id Zuora answers with echoes the (not key-shaped)
    secret, and ``status`` prints the run. Safe: the printed run, JSON or text, shows the
    secret as redacted."""
    run_id = f"zrun-{kit.ZUORA_SECRET}"
    with kit.Hostile(lambda r, c, s: kit.respond_json(c, kit.zuora_run(run_id))) as s:
        code = main(
            [
                *(["--json"] if as_json else []),
                "--set",
                f"api_access_key_id={kit.ZUORA_USER}",
                "--set",
                f"api_secret_access_key={kit.ZUORA_SECRET}",
                "--base-url",
                f"{s.base}/api/rest/v1",
                "status",
                "zuora",
                run_id,
            ]
        )
    out = capsys.readouterr()
    assert code == 0
    assert "zrun-" in out.out  # the run was printed
    assert kit.ZUORA_SECRET not in out.out + out.err


def test_cli_templates_never_print_an_echoed_key(
    kit: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """secret-in-template-name-cli: a report type's name echoes the API key. Safe: the
    ``--json templates`` listing shows it redacted."""
    report_type = {
        "id": "balance.summary.1",
        "object": "reporting.report_type",
        "data_available_end": 1796083200,
        "data_available_start": 1577836800,
        "default_columns": None,
        "livemode": False,
        "name": f"Balance {kit.STRIPE_KEY}",
        "updated": 1704067200,
        "version": 1,
    }
    listing = {"object": "list", "has_more": False, "url": "/x", "data": [report_type]}
    monkeypatch.setenv("STRIPE_API_KEY", kit.STRIPE_KEY)
    with kit.Hostile(lambda r, c, s: kit.respond_json(c, listing)) as s:
        code = main(["--json", "templates", "stripe", "--base-url", s.base])
    out = capsys.readouterr()
    assert code == 0
    assert "Balance" in out.out
    assert kit.STRIPE_KEY not in out.out + out.err


def test_headers_trickled_until_the_deadline_end_the_wait_in_a_timeout(kit: Any) -> None:
    """wait-header-trickle: a poll's headers come one line every 0.2 s, so no read ever
    times out; the deadline's watchdog shuts the socket. Safe: the half-received headers
    are never taken for an answer: WaitTimeoutError naming the run, at the deadline."""

    def trickle(request: Any, conn: Any, server: Any) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for i in range(100):
            if not server.alive:
                return
            conn.sendall(f"X-H{i}: v\r\n".encode())
            time.sleep(0.2)

    with kit.Hostile(trickle, lifetime=8.0) as s:
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


@pytest.mark.parametrize("size", [12.7, True, "12"], ids=["fraction", "boolean", "string"])
def test_a_size_that_is_not_an_integer_is_a_format_error(
    size: Any, kit: Any, workdir: Path
) -> None:
    """json-size-float-v1 / json-size-bool-v1: the v1 result's ``size`` is 12.7, true or
    "12". Safe: the run cannot be read (a ProviderError naming the field), no file."""

    def answer(request: Any, conn: Any, server: Any) -> None:
        path = request.path.split("?", 1)[0]
        if path.startswith("/v1/reporting/report_runs/"):
            kit.respond_json(conn, kit.stripe_v1_run(server.base, size=size))
        else:
            kit.respond(conn, 200, kit.CSV[:12])

    with kit.Hostile(answer) as s:
        gw = kit.gateway_for("stripe", s)
        with pytest.raises(ProviderError, match="result"):
            gw.download(gw.get("stripe", kit.RUN_ID["stripe"]), workdir / "o.csv")
    assert kit.files_in(workdir) == []
