"""Ctrl-C on a fan-out: it stops at once, says what it started, and a re-run finishes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from report_gateway import Scope
from report_gateway.fanout import FanOutInterrupted
from report_gateway_sandbox import Sandbox

from .test_run_many import V2_PARAMS, V2_REPORT, contexts_argv, gateway


def ctrl_c_once_a_run_exists(sb: Sandbox) -> threading.Thread:
    """Ctrl-C as a terminal sends it, once the sandbox has created the first run."""

    def watch() -> None:
        while not sb.stats()["runs_created"].get("stripe-v2"):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_stops_a_fan_out_and_a_rerun_finishes_it(make_sandbox, tmp_path: Path) -> None:
    sb = make_sandbox(run_seconds=3600, result_rows=2)  # the runs outlast the test
    scopes = [Scope(context=f"ctx_{i}") for i in range(4)]
    with gateway(sb, tmp_path) as gw:
        ctrl_c_once_a_run_exists(sb)
        with pytest.raises(FanOutInterrupted) as caught:
            gw.run_many(
                "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, max_concurrency=1,
                output_dir=tmp_path / "o",
                poll_interval=60, max_interval=60,
            )  # fmt: skip
        result = caught.value.result
        assert [o.state for o in result.outcomes] == ["interrupted"] * 4
        assert result.outcomes[0].run_id is not None
        assert [o.run_id for o in result.outcomes[1:]] == [None] * 3
        assert gw.journal is not None
        left = gw.journal.entries(unfinished=True)
        assert len(left) == 4, "the scopes not started are journaled, not forgotten"
        assert sb.stats()["runs_created"]["stripe-v2"] == 1
        sb.configure(run_seconds=0.05)
        for run in sb.app.stripe_v2.runs.values():
            run.duration = 0.0  # the provider finishes them now
        again = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o",
            poll_interval=0.05, max_interval=0.2,
        )  # fmt: skip
    assert again.ok
    assert again.outcomes[0].run_id == result.outcomes[0].run_id
    assert sb.stats()["runs_created"]["stripe-v2"] == 4


def test_cli_ctrl_c_prints_the_table_and_how_to_finish(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=3600, result_rows=2)
    ctrl_c_once_a_run_exists(sb)
    argv = contexts_argv(sb, tmp_path, monkeypatch, "ctx_a\nctx_b\n", tmp_path / "out")
    argv += ["--max-concurrency", "1"]
    assert main(argv) == 130
    captured = capsys.readouterr()
    assert "ctx_a  interrupted  reprun_" in captured.out
    assert "1 interrupted" not in captured.out  # both scopes are
    assert "2 interrupted of 2" in captured.out
    assert "re-run the same command (or `report-gateway resume`) to finish" in captured.err
    assert "runs stripe" not in captured.err


@pytest.mark.parametrize("raised", [KeyboardInterrupt, SystemExit])
def test_a_progress_callback_that_raises_ctrl_c_stops_the_fan_out(
    make_sandbox, tmp_path: Path, raised: type[BaseException]
) -> None:
    """Raised on one of the fan-out's own threads, it used to end that scope's task with
    no outcome: run_many then waited forever, its threads kept. It stops the fan-out as
    Ctrl-C does, and the fan-out's threads end with it."""
    sb = make_sandbox(run_seconds=3600, result_rows=2)
    scopes = [Scope(context=f"ctx_{i}") for i in range(6)]
    heard: list[str] = []

    def progress(update: object) -> None:
        heard.append(getattr(update, "state", "?"))
        if len(heard) == 2:  # the second scope's start
            raise raised()

    before = {t.name for t in threading.enumerate()}
    with gateway(sb, tmp_path) as gw:
        with pytest.raises(FanOutInterrupted) as caught:
            gw.run_many(
                "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, max_concurrency=2,
                output_dir=tmp_path / "o", on_progress=progress,
                poll_interval=60, max_interval=60,
            )  # fmt: skip
        outcomes = caught.value.result.outcomes
        assert len(outcomes) == 6, "every scope has an outcome"
        assert {o.state for o in outcomes} == {"interrupted"}
        assert gw.journal is not None
        assert len(gw.journal.entries(unfinished=True)) == 6
    left = {t.name for t in threading.enumerate()} - before
    assert not [n for n in left if n.startswith(("fan-out", "waiter"))], left
