"""A listener and waiters in different processes, sharing the run journal.

The listener writes each run it learns to the journal; a ``wait`` on the same journal reads
it every second or so while it sleeps, and a run written down as ended is polled once, at
once. The waits here poll every 60 s, so one that ends quickly was ended through the
journal; the sandbox's request counts show it cost exactly one request.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import report_gateway_stripe.plugin as stripe_plugin
from report_gateway import Gateway, RunStatus
from report_gateway.events import RunEvents
from report_gateway.journal import Journal
from report_gateway.models import ReportRun
from report_gateway.webhooks import WebhookApp
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox

from .conftest import SECRET, WEEK, Waiter, run_gets, settings_for, signed

REPORTS = {"stripe": "balance.summary.1", "stripe-v2": "report_balance_summary"}


def journaled_gateway(sb: Sandbox, journal: Path, environ: dict[str, str]) -> Gateway:
    return Gateway(
        settings_for(sb),
        plugins=[stripe_plugin],
        load_entrypoints=False,
        environ=environ,
        journal=journal,
    )


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture
def listen_process(sandbox: Sandbox, journal_path: Path, tmp_path: Path) -> Iterator[str]:
    """``report-gateway listen`` in a process of its own, on the same journal; yields its
    URL."""
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[profiles.default.gateway]
journal = "{journal_path}"

[profiles.default.stripe]
api_key = "{STRIPE_TEST_KEY}"
base_url = "{sandbox.stripe_base_url}"
webhook_secret = "{SECRET}"

[profiles.default.stripe-v2]
api_key = "{STRIPE_TEST_KEY}"
base_url = "{sandbox.stripe_base_url}"
""",
        encoding="utf-8",
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "XDG_CONFIG_HOME": str(tmp_path / "config-home"),
        "XDG_DATA_HOME": str(tmp_path / "data-home"),
        "REPORT_GATEWAY_CONFIG": str(config),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "report_gateway.cli", "listen", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("listening on http://127.0.0.1:"), first
        second = process.stdout.readline()
        assert second.strip() == f"runs learned are written to the run journal {journal_path}"
        yield first.split()[2]
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
        assert "whsec_" not in err


@pytest.mark.parametrize("provider", sorted(REPORTS))
def test_a_listener_in_another_process_ends_a_wait_with_one_poll(
    sandbox: Sandbox,
    listen_process: str,
    journal_path: Path,
    environ: dict[str, str],
    provider: str,
) -> None:
    sandbox.configure(webhook_url=listen_process, webhook_secret=SECRET, run_seconds=0.5)
    with journaled_gateway(sandbox, journal_path, environ) as gw:
        run = gw.start(provider, REPORTS[provider], WEEK)

        finished = Waiter(gw, run).join()  # polls every 60 s: only the journal ends it soon

        assert finished.status is RunStatus.SUCCEEDED
        assert finished.result is not None  # the one poll brought the whole run
        assert gw.events.latest(provider, run.id) is None  # nothing was published here
        assert gw.journal is not None
        entry = gw.journal.status_of(provider, run.id)
    assert entry is not None
    assert entry.state == "succeeded"
    # v1: the event carried the run, so only the waiter's poll; v2: the listener's
    # retrieve of the thin event's run, then the waiter's poll.
    assert run_gets(sandbox, run.id) == (2 if provider == "stripe-v2" else 1)


def test_a_status_written_by_another_connection_wakes_the_wait(
    sandbox: Sandbox, journal_path: Path, environ: dict[str, str]
) -> None:
    """The same hand-over without a subprocess: a second connection to the file, as the
    listener's process has, writes the run's end."""
    sandbox.configure(run_seconds=0.2)
    with journaled_gateway(sandbox, journal_path, environ) as gw:
        run = gw.start("stripe-v2", REPORTS["stripe-v2"], WEEK)
        waiter = Waiter(gw, run)
        elsewhere = Journal(journal_path)
        try:
            while gw.get("stripe-v2", run.id).status is not RunStatus.SUCCEEDED:
                time.sleep(0.05)
            polls = run_gets(sandbox, run.id)
            assert elsewhere.record_status("stripe-v2", run.id, "succeeded", "succeeded") == 1
            finished = waiter.join()
        finally:
            elsewhere.close()
    assert finished.status is RunStatus.SUCCEEDED
    assert run_gets(sandbox, run.id) == polls + 1


def test_the_listener_writes_each_run_it_learns_to_the_journal(
    sandbox: Sandbox, journal_path: Path, environ: dict[str, str]
) -> None:
    from .test_webhooks import raw_run, v1_event

    with journaled_gateway(sandbox, journal_path, environ) as gw:
        run = gw.start("stripe", REPORTS["stripe"], WEEK)
        payload = raw_run(sandbox, f"/v1/reporting/report_runs/{run.id}")
        heard: list[ReportRun] = []
        app = WebhookApp(gw, on_run=heard.append)

        result = app.handle(*signed(v1_event(payload)))

        assert result.status == 200
        assert gw.journal is not None
        entry = gw.journal.status_of("stripe", run.id)
        assert entry is not None
        assert (entry.state, entry.raw_status) == ("succeeded", "succeeded")
        assert [r.id for r in heard] == [run.id]
        # A run the journal does not know is acknowledged all the same.
        other = v1_event({**payload, "id": "frr_unknown"}, event_id="evt_unknown")
        assert app.handle(*signed(other)).status == 200
        assert gw.journal.status_of("stripe", "frr_unknown") is None


def test_a_journal_that_cannot_be_written_makes_stripe_deliver_again(
    sandbox: Sandbox, journal_path: Path, environ: dict[str, str]
) -> None:
    from .test_webhooks import raw_run, v1_event

    with journaled_gateway(sandbox, journal_path, environ) as gw:
        run = gw.start("stripe", REPORTS["stripe"], WEEK)
        payload = raw_run(sandbox, f"/v1/reporting/report_runs/{run.id}")
        app = WebhookApp(gw)
        assert gw.journal is not None
        gw.journal.close()
        event = signed(v1_event(payload, event_id="evt_journal_down"))

        assert app.handle(*event).status == 503
        assert app.handle(*event).status == 503  # not "already received": Stripe's retry counts


class _Polls:
    def __init__(self, run: ReportRun) -> None:
        self.run = run
        self.count = 0

    def __call__(self) -> ReportRun:
        self.count += 1
        return self.run


def _running(run_id: str) -> ReportRun:
    return ReportRun(
        provider="stripe-v2",
        id=run_id,
        report_id="r",
        status=RunStatus.RUNNING,
        raw_status="running",
    )


def _journaled(journal: Journal, run: ReportRun) -> None:
    entry = journal.begin(run.provider, run.report_id, run.scope, {}, key="k")
    journal.record_run(entry.id, run)


def test_an_ended_entry_wakes_a_wait_once_not_in_a_loop(tmp_path: Path) -> None:
    """Should the provider disagree with the journal (it is the truth), the next pause sleeps
    its whole delay instead of waking, and polling, again and again."""
    journal = Journal(tmp_path / "j.sqlite3")
    run = _running("reprun_disputed")
    _journaled(journal, run)
    poll = _Polls(run)
    fetch, pause = RunEvents().watch(run, poll, journal=journal, check_every=0.01)

    pause(0.3)  # running in the journal too: the whole delay
    journal.record_status("stripe-v2", run.id, RunStatus.SUCCEEDED)
    pause(600)  # woken by the journal (or this test would hang for ten minutes)
    assert fetch() is run
    assert poll.count == 1
    began = time.monotonic()
    pause(0.3)
    assert time.monotonic() - began >= 0.3  # the same entry does not wake it twice
    journal.close()


def test_a_tests_own_sleep_is_called_as_it_is(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    run = _running("reprun_done")
    _journaled(journal, run)
    journal.record_status("stripe-v2", run.id, RunStatus.SUCCEEDED)
    slept: list[float] = []
    _, pause = RunEvents().watch(run, _Polls(run), slept.append, journal=journal)
    pause(5.0)
    assert slept == [5.0]  # a test's sleep is called as it is, journal or not
    with pytest.raises(ValueError, match="check_every"):
        RunEvents().watch(run, _Polls(run), journal=journal, check_every=0)
    journal.close()
