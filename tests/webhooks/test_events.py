"""RunEvents: the in-process hand-over from a webhook to a waiting ``Gateway.wait``."""

from __future__ import annotations

import threading

import pytest
from report_gateway import Gateway, ReportRun, RunStatus
from report_gateway.events import RunEvents
from report_gateway_sandbox import Sandbox

from .conftest import WEEK, run_gets


def snapshot(run_id: str, status: RunStatus, provider: str = "stripe") -> ReportRun:
    return ReportRun(
        provider=provider, id=run_id, report_id="r", status=status, raw_status=status.value
    )


def test_a_snapshot_published_before_the_wait_is_found_at_once() -> None:
    events = RunEvents()
    done = snapshot("frr_1", RunStatus.SUCCEEDED)
    assert events.publish(done)
    assert events.wait("stripe", "frr_1", None) == done  # None: no deadline, yet no block
    assert events.latest("stripe", "frr_1") == done


def test_a_non_terminal_snapshot_wakes_nobody() -> None:
    events = RunEvents()
    assert not events.publish(snapshot("frr_1", RunStatus.PENDING))
    assert events.wait("stripe", "frr_1", 0) is None
    assert events.latest("stripe", "frr_1") is None


def test_runs_are_told_apart_by_provider_and_id() -> None:
    events = RunEvents()
    events.publish(snapshot("same", RunStatus.SUCCEEDED, provider="stripe"))
    assert events.wait("stripe-v2", "same", 0) is None
    assert events.wait("stripe", "other", 0) is None


def test_a_publish_wakes_a_blocked_wait() -> None:
    events = RunEvents()
    got: list[ReportRun | None] = []
    waiting = threading.Thread(target=lambda: got.append(events.wait("stripe", "frr_2", None)))
    waiting.start()
    done = snapshot("frr_2", RunStatus.FAILED)
    events.publish(done)
    waiting.join(timeout=10)
    assert got == [done]


def test_only_the_newest_snapshots_are_kept() -> None:
    events = RunEvents(keep=2)
    for n in range(3):
        events.publish(snapshot(f"frr_{n}", RunStatus.SUCCEEDED))
    assert events.latest("stripe", "frr_0") is None
    assert events.latest("stripe", "frr_2") is not None
    with pytest.raises(ValueError, match="keep"):
        RunEvents(keep=0)


def test_wait_takes_a_published_run_even_with_an_injected_sleep(
    gw: Gateway, sandbox: Sandbox
) -> None:
    """A test's own ``sleep`` is still called, and the published run still replaces the poll."""
    run = gw.start("stripe", "balance.summary.1", WEEK)
    gw.events.publish(snapshot(run.id, RunStatus.SUCCEEDED))
    slept: list[float] = []

    finished = gw.wait(run, sleep=slept.append)

    assert finished.status is RunStatus.SUCCEEDED
    assert len(slept) == 1
    assert run_gets(sandbox, run.id) == 0
    assert finished.scope == run.scope
