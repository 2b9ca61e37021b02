"""Starts waiting for a run slot are served first come, first served (``admission``).

Once a provider has refused a create over its limit (Stripe v2's 429
``report_run_rate_limit_exceeded``), or the ``max_active_runs`` cap is full, later starts
line up behind the first one instead of racing it for the next free slot, only the head of
the line tries again, and the line drains as creates succeed. No test here measures time:
order and counts come from the admission's events and the sandbox's log.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import report_gateway_stripe.plugin as stripe_plugin
from report_gateway import Gateway, ReportRun, RunLimitError, RunStatus, Scope, StartProgress
from report_gateway.admission import Admission, ProviderLimit
from report_gateway.errors import ProviderError
from report_gateway.polling import Backoff
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox, SandboxConfig
from reporting_runtime import RetryConfig

MakeGateway = Callable[..., Gateway]

REPORT = "report_balance_summary"
WEEK = {"interval_start": "2025-01-01", "interval_end": "2025-01-08T00:00:00Z"}
#: Bound on joins and event waits so a broken queue fails instead of hanging the suite.
HANG = 20.0


class Refused(Exception):
    """The fake provider's 429."""


class FakeLimit:
    """A provider limit: an attempt takes a free slot or is refused; every attempt counted.

    ``failing[name]`` makes that start's next attempt fail with another error.
    """

    def __init__(self, free: int = 0) -> None:
        self._changed = threading.Condition()
        self.free = free
        self.attempts: Counter[str] = Counter()
        self.refusals = 0
        self.failing: dict[str, Exception] = {}

    def attempt(self, name: str) -> Callable[[], ReportRun]:
        def create() -> ReportRun:
            with self._changed:
                self.attempts[name] += 1
                error = self.failing.pop(name, None)
                if error is not None:
                    raise error
                if self.free == 0:
                    self.refusals += 1
                    self._changed.notify_all()
                    raise Refused(name)
                self.free -= 1
                return _run(name)

        return create

    def release(self, count: int) -> None:
        with self._changed:
            self.free += count

    def await_refusals(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.refusals >= count, HANG)


def _run(name: str, status: RunStatus = RunStatus.RUNNING) -> ReportRun:
    return ReportRun(
        provider="fake", id=name, report_id="r", status=status, raw_status=status.value
    )


def _refusal(exc: Exception) -> float | None:
    return 0.0 if isinstance(exc, Refused) else None


def _limit(wait: float, interval: float) -> ProviderLimit:
    return ProviderLimit(refused=_refusal, wait=wait, retry=Backoff.constant(interval))


class Line:
    """Starts in their own threads against one queue, recording its events in order."""

    def __init__(self, limit: FakeLimit, *, wait: float = 60.0, interval: float = 60.0) -> None:
        self.queue = Admission("fake")
        self.limit = limit
        self.wait = wait
        self.interval = interval
        self.events: list[tuple[str, str]] = []
        self.outcomes: dict[str, object] = {}
        self._joined = threading.Semaphore(0)
        self.threads: dict[str, threading.Thread] = {}

    def start(self, name: str) -> None:
        """Start ``name`` and return once it stands in line."""

        def on_event(event: str, ahead: int) -> None:
            self.events.append((event, name))
            if event == "queued":
                self._joined.release()

        def run() -> None:
            try:
                self.outcomes[name] = self.queue.admit(
                    self.limit.attempt(name),
                    limit=_limit(self.wait, self.interval),
                    on_event=on_event,
                ).id
            except Exception as exc:
                self.outcomes[name] = exc

        thread = threading.Thread(target=run, name=f"start-{name}")
        self.threads[name] = thread
        thread.start()
        assert self._joined.acquire(timeout=HANG), f"{name} never joined the line"

    def finish(self, *names: str) -> None:
        for name in names:
            self.threads[name].join(HANG)
            assert not self.threads[name].is_alive(), f"{name} is still waiting"

    def of(self, event: str) -> list[str]:
        return [name for what, name in self.events if what == event]


def test_refused_starts_are_admitted_in_the_order_they_lined_up() -> None:
    limit = FakeLimit(free=0)
    line = Line(limit)
    for name in "ABCD":
        line.start(name)
    # A was refused, then B, C and D arrived while A waited: they queue behind it without
    # sending a create of their own.
    assert line.of("queued") == ["A", "B", "C", "D"]
    assert limit.attempts == {"A": 1}

    limit.release(3)
    line.queue.wake()  # as when the driver sees one of its runs end
    line.finish("A", "B", "C")
    assert line.of("admitted") == ["A", "B", "C"]
    limit.await_refusals(2)  # D heads the line now; its try at once found no slot
    assert line.queue.waiting == 1

    limit.release(1)
    line.queue.wake()
    line.finish("D")
    assert line.of("admitted") == ["A", "B", "C", "D"]
    assert line.outcomes == {"A": "A", "B": "B", "C": "C", "D": "D"}
    # Only the head retries: the refused A twice, D once too early, B and C once each.
    assert limit.attempts == {"A": 2, "B": 1, "C": 1, "D": 2}
    assert line.queue.waiting == 0


def test_an_empty_line_lets_a_start_straight_through() -> None:
    limit = FakeLimit(free=1)
    queue = Admission("fake")
    events: list[str] = []
    admitted = queue.admit(
        limit.attempt("A"),
        limit=_limit(60, 60),
        on_event=lambda event, ahead: events.append(event),
    )
    assert admitted.id == "A"
    assert events == []  # never queued
    assert limit.attempts == {"A": 1}


def test_an_error_at_the_head_is_raised_and_the_next_start_gets_its_turn() -> None:
    limit = FakeLimit(free=0)
    line = Line(limit)
    for name in "ABC":
        line.start(name)
    limit.failing["A"] = ValueError("bad parameters")
    limit.release(2)
    line.queue.wake()
    line.finish("A", "B", "C")
    assert isinstance(line.outcomes["A"], ValueError)
    assert line.of("admitted") == ["B", "C"]
    assert line.queue.waiting == 0


def test_a_start_out_of_time_raises_the_refusal() -> None:
    limit = FakeLimit(free=0)
    line = Line(limit, wait=0.2, interval=0.05)
    line.start("A")
    line.start("B")
    line.finish("A", "B")
    assert isinstance(line.outcomes["A"], Refused)
    assert isinstance(line.outcomes["B"], Refused)
    assert line.of("admitted") == []
    assert line.queue.waiting == 0


def test_starts_over_the_cap_wait_in_line_and_only_the_head_rereads_the_holders() -> None:
    admission = Admission("fake")
    reads: Counter[str] = Counter()
    read = threading.Condition()
    runs = {"A": _run("A")}
    events: list[tuple[str, str]] = []
    outcomes: dict[str, object] = {}
    joined = threading.Semaphore(0)

    def start(name: str) -> threading.Thread:
        def get(run_id: str, scope: Scope) -> ReportRun:
            with read:
                reads[name] += 1
                read.notify_all()
            return runs[run_id]

        def create() -> ReportRun:
            runs[name] = _run(name)
            return runs[name]

        def on_event(event: str, ahead: int) -> None:
            events.append((event, name))
            if event == "queued":
                joined.release()

        def run() -> None:
            try:
                outcomes[name] = admission.admit(
                    create,
                    cap=1,
                    cap_wait=HANG,
                    recheck=Backoff.constant(60),
                    get=get,
                    on_event=on_event,
                ).id
            except Exception as exc:
                outcomes[name] = exc

        thread = threading.Thread(target=run, name=f"start-{name}")
        thread.start()
        return thread

    first = admission.admit(lambda: runs["A"], cap=1, cap_wait=0)
    assert first.id == "A"
    assert events == []  # a free slot and nobody waiting: straight in
    threads = {}
    for name in "BC":
        threads[name] = start(name)
        assert joined.acquire(timeout=HANG), f"{name} never joined the line"
    # B found the cap full, re-read the holder and queued; C queued behind it untried.
    assert reads == {"B": 1}
    assert [run.id for run in admission.holders()] == ["A"]

    admission.seen(_run("A", RunStatus.SUCCEEDED))  # as Gateway.get / wait see it end
    threads["B"].join(HANG)
    assert outcomes["B"] == "B"
    # C heads the line now and tried at once: B holds the slot.
    with read:
        assert read.wait_for(lambda: reads["C"] >= 1, HANG)
    assert reads == {"B": 1, "C": 1}
    assert admission.waiting == 1

    admission.seen(_run("B", RunStatus.SUCCEEDED))
    threads["C"].join(HANG)
    assert outcomes == {"B": "B", "C": "C"}
    assert [what for what, _ in events] == ["queued", "queued", "admitted", "admitted"]
    assert [name for what, name in events if what == "admitted"] == ["B", "C"]
    assert reads == {"B": 1, "C": 1}  # nobody but the head read the holders


def test_a_capped_start_out_of_time_names_the_runs_holding_the_slots() -> None:
    admission = Admission("fake")
    admission.admit(lambda: _run("held"), cap=1, cap_wait=0)
    with pytest.raises(RunLimitError) as caught:
        admission.admit(
            lambda: pytest.fail("created over the cap"),
            cap=1,
            cap_wait=0,
            get=lambda run_id, scope: _run(run_id),
        )
    assert caught.value.active == ("held",)
    assert admission.waiting == 0


# -- through the Gateway, against the sandbox ------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(run_seconds=0.3, result_rows=5, seed=11)) as sb:
        yield sb


def _settings(sb: Sandbox, **v2: Any) -> dict[str, dict[str, Any]]:
    return {"stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sb.stripe_base_url, **v2}}


@pytest.fixture
def stripe_gateway(make_gateway: MakeGateway) -> MakeGateway:
    """Gateways with the Stripe plugin (and the runtime's default retries, 429 among them:
    creates must leave 429 to admission)."""

    def build(settings: Mapping[str, Any], **kwargs: Any) -> Gateway:
        return make_gateway(settings, plugins=[stripe_plugin], retry=RetryConfig(), **kwargs)

    return build


def _creates(sb: Sandbox) -> list[dict[str, Any]]:
    return [e for e in sb.stats()["request_log"] if e["operation"] == "create_report_run"]


def test_more_threads_than_slots_all_finish_first_come_first_served(
    stripe_gateway: MakeGateway, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.configure(v2_concurrency_limit=3)
    gw = stripe_gateway(_settings(sandbox))
    contexts = [f"acct_line{index:04d}" for index in range(24)]

    def one(context: str) -> ReportRun:
        run = gw.start("stripe-v2", REPORT, WEEK, scope=Scope(context=context))
        return gw.wait(run, timeout=120, poll_interval=0.05, max_interval=0.2)

    with (
        caplog.at_level(logging.DEBUG, logger="report_gateway"),
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        finished = list(pool.map(one, contexts))

    assert [run.status for run in finished] == [RunStatus.SUCCEEDED] * len(contexts)
    assert sandbox.stats()["runs_created"]["stripe-v2"] == len(contexts)
    creates = _creates(sandbox)
    assert any(e["status"] == 429 for e in creates)  # the limit was reached...
    assert len(creates) < 3 * len(contexts)  # ...and waited out without hammering it
    events = [
        (
            getattr(record, "admission", None),
            getattr(getattr(record, "scope", None), "context", None),
        )
        for record in caplog.records
    ]
    queued = [context for event, context in events if event == "queued"]
    admitted = [context for event, context in events if event == "admitted"]
    assert queued
    assert admitted == queued  # first refused (or first to arrive behind), first admitted


def test_a_refused_create_is_not_retried_by_the_runtime(
    stripe_gateway: MakeGateway, sandbox: Sandbox
) -> None:
    sandbox.configure(v2_concurrency_limit=1, run_seconds=600)
    gw = stripe_gateway(_settings(sandbox, rate_limit_wait=0))
    gw.start("stripe-v2", REPORT, WEEK)
    with pytest.raises(ProviderError) as caught:
        gw.start("stripe-v2", REPORT, WEEK)
    assert caught.value.status == 429
    assert caught.value.code == "report_run_rate_limit_exceeded"
    assert [e["status"] for e in _creates(sandbox)] == [200, 429]


def test_a_start_waiting_for_a_slot_reports_progress_then_gets_its_run(
    stripe_gateway: MakeGateway, sandbox: Sandbox
) -> None:
    sandbox.configure(v2_concurrency_limit=1, run_seconds=1.0)
    gw = stripe_gateway(_settings(sandbox))
    holder = gw.start("stripe-v2", REPORT, WEEK)  # takes the only slot for a while
    events: list[StartProgress] = []

    second = gw.start("stripe-v2", REPORT, WEEK, on_progress=events.append)

    assert second.id != holder.id
    assert events, "a start that waited for a slot said so"
    first = events[0]
    assert (first.provider, first.report_id, first.state) == (
        "stripe-v2",
        REPORT,
        "waiting_for_slot",
    )
    assert first.position == 1  # nobody else in line
    assert "limit" in first.reason
    assert [e.waited_seconds for e in events] == sorted(e.waited_seconds for e in events)
    assert 429 in [e["status"] for e in _creates(sandbox)]
    assert gw.wait(second, timeout=60, poll_interval=0.05).status is RunStatus.SUCCEEDED
