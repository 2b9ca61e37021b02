"""Waiting: backoff schedule, deadline, progress, change notifications, terminal errors.

A fake clock advances only when the code sleeps, so nothing here really waits.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from report_gateway import (
    ReportRun,
    RunCanceledError,
    RunFailedError,
    RunStatus,
    WaitTimeoutError,
)
from report_gateway.polling import Backoff, wait_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def run(status: RunStatus = RunStatus.PENDING, raw: str = "pending", **kw: Any) -> ReportRun:
    return ReportRun(
        provider="fake", id="run_9", report_id="r", status=status, raw_status=raw, **kw
    )


def statuses(seq: Sequence[RunStatus]) -> Iterator[ReportRun]:
    for status in seq:
        yield run(status, status.value, error="boom" if status is RunStatus.FAILED else None)


def test_returns_succeeded_run_with_progress_and_changes() -> None:
    clock = FakeClock()
    polls = statuses([RunStatus.PENDING, RunStatus.RUNNING, RunStatus.RUNNING, RunStatus.SUCCEEDED])
    progress: list[tuple[RunStatus, float]] = []
    changes: list[tuple[RunStatus, RunStatus]] = []
    done = wait_for(
        run(),
        lambda: next(polls),
        timeout=60,
        on_progress=lambda r, elapsed: progress.append((r.status, elapsed)),
        on_change=lambda new, old: changes.append((old.status, new.status)),
        clock=clock,
        sleep=clock.sleep,
        rand=lambda: 0.0,
    )
    assert done.status is RunStatus.SUCCEEDED
    assert clock.sleeps == [0.5, 0.75, 1.125, 1.6875]
    assert [s for s, _ in progress] == [
        RunStatus.PENDING,
        RunStatus.PENDING,
        RunStatus.RUNNING,
        RunStatus.RUNNING,
        RunStatus.SUCCEEDED,
    ]
    assert progress[0][1] == 0.0
    assert progress[-1][1] == pytest.approx(sum(clock.sleeps))
    assert changes == [
        (RunStatus.PENDING, RunStatus.RUNNING),
        (RunStatus.RUNNING, RunStatus.SUCCEEDED),
    ]


def test_two_second_run_needs_few_polls() -> None:
    clock = FakeClock()
    start = clock.now
    count = itertools.count(1)

    def fetch() -> ReportRun:
        next(count)
        done = clock.now - start >= 2.0
        return run(RunStatus.SUCCEEDED if done else RunStatus.RUNNING)

    wait_for(run(), fetch, timeout=60, clock=clock, sleep=clock.sleep, rand=lambda: 0.999)
    assert next(count) - 1 <= 6


def test_already_terminal_run_is_not_polled() -> None:
    done = run(RunStatus.SUCCEEDED, "succeeded")
    assert wait_for(done, lambda: pytest.fail("polled"), timeout=1) is done


def test_failed_run_raises_with_provider_reason() -> None:
    clock = FakeClock()
    polls = statuses([RunStatus.RUNNING, RunStatus.FAILED])
    with pytest.raises(RunFailedError, match="boom") as info:
        wait_for(run(), lambda: next(polls), timeout=60, clock=clock, sleep=clock.sleep)
    assert info.value.reason == "boom"
    assert info.value.run.id == "run_9"


def test_canceled_run_raises() -> None:
    clock = FakeClock()
    polls = statuses([RunStatus.CANCELED])
    with pytest.raises(RunCanceledError, match="run_9"):
        wait_for(run(), lambda: next(polls), timeout=60, clock=clock, sleep=clock.sleep)


def test_deadline_raises_timeout_naming_the_run_and_how_to_resume() -> None:
    clock = FakeClock()
    with pytest.raises(WaitTimeoutError) as info:
        wait_for(
            run(),
            lambda: run(RunStatus.RUNNING, "running"),
            timeout=10,
            clock=clock,
            sleep=clock.sleep,
        )
    error = info.value
    assert error.run_id == "run_9"
    assert error.provider == "fake"
    assert error.last_status is RunStatus.RUNNING
    assert "report-gateway wait fake run_9" in str(error)
    assert sum(clock.sleeps) == pytest.approx(10.0)  # never slept past the deadline


def test_zero_timeout_polls_nothing() -> None:
    with pytest.raises(WaitTimeoutError):
        wait_for(run(), lambda: pytest.fail("polled"), timeout=0)


def test_backoff_validates_its_numbers() -> None:
    with pytest.raises(ValueError, match="first"):
        Backoff(first=0)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=1.0)


@given(
    first=st.floats(0.01, 5),
    factor=st.floats(1, 3),
    cap=st.floats(5, 60),
    jitter=st.floats(0, 0.9),
    draws=st.lists(st.floats(0, 0.999999), min_size=1, max_size=40),
)
def test_schedule_positive_capped_and_non_decreasing_before_jitter(
    first: float, factor: float, cap: float, jitter: float, draws: list[float]
) -> None:
    backoff = Backoff(first=first, factor=factor, maximum=cap, jitter=jitter)
    rand = iter(draws)
    plain = list(itertools.islice(backoff.intervals(lambda: 0.0), len(draws)))
    jittered = list(itertools.islice(backoff.intervals(lambda: next(rand)), len(draws)))
    assert plain == sorted(plain)
    for base, value in zip(plain, jittered, strict=True):
        assert 0 < value <= base <= cap
        assert value >= base * (1 - jitter) - 1e-12


@given(
    timeout=st.floats(0, 500),
    polls_until_done=st.integers(1, 200),
    rand=st.floats(0, 0.999),
)
def test_deadline_honoured_within_one_poll(
    timeout: float, polls_until_done: int, rand: float
) -> None:
    clock = FakeClock()
    start = clock.now
    counter = itertools.count(1)

    def fetch() -> ReportRun:
        n = next(counter)
        return run(RunStatus.SUCCEEDED if n >= polls_until_done else RunStatus.RUNNING)

    try:
        wait_for(run(), fetch, timeout=timeout, clock=clock, sleep=clock.sleep, rand=lambda: rand)
    except WaitTimeoutError:
        assert clock.now - start == pytest.approx(timeout)
    assert clock.now - start <= timeout + 1e-9
    assert all(s <= 30.0 for s in clock.sleeps)


def test_unknown_status_is_not_terminal() -> None:
    # The driver maps unknown words to RUNNING (ProviderContext.map_status), so waiting goes on.
    clock = FakeClock()
    snapshots = iter(
        [attrs.evolve(run(RunStatus.RUNNING), raw_status="REINDEXING"), run(RunStatus.SUCCEEDED)]
    )
    done = wait_for(run(), lambda: next(snapshots), timeout=60, clock=clock, sleep=clock.sleep)
    assert done.status is RunStatus.SUCCEEDED


def test_backoff_sleeps_never_past_the_deadline() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    backoff = Backoff(first=0.25, factor=2.0, maximum=5.0, jitter=0.0)
    left = list(backoff.sleeps(3.0, clock=lambda: now[0], sleep=sleep))
    assert slept == [0.25, 0.5, 1.0, 1.25]  # the last one cut to the deadline
    assert left == [2.75, 2.25, 1.25, 0.0]
    assert [backoff.ceiling(n) for n in (1, 2, 5, 6, 100)] == [0.25, 0.5, 4.0, 5.0, 5.0]
    assert Backoff.constant(0.25).ceiling(50) == 0.25


def _deadline_failure() -> Exception:
    """What a poll raises when its request ran out of time: the gateway's ProviderError
    wrapping the runtime's DeadlineExceededError."""
    from report_gateway import ProviderError
    from reporting_runtime import DeadlineExceededError

    cause = DeadlineExceededError("stripe retrieve_report_run: no answer before the deadline")
    try:
        raise ProviderError(cause, provider="fake") from cause
    except ProviderError as exc:
        return exc


def test_a_poll_out_of_time_ends_the_wait_at_the_deadline() -> None:
    """A Retry-After past the deadline fails the poll early; the wait still ends at the
    deadline (not before: a caller looping on wait must not hammer the server)."""
    clock = FakeClock()

    def fetch() -> ReportRun:
        raise _deadline_failure()

    with pytest.raises(WaitTimeoutError) as caught:
        wait_for(
            run(),
            fetch,
            timeout=10,
            backoff=Backoff.constant(1.0),
            clock=clock,
            sleep=clock.sleep,
        )
    assert clock.sleeps == [1.0, 9.0]
    assert caught.value.run.id == "run_9"
    assert caught.value.elapsed == 10


def test_other_poll_failures_still_raise_as_they_are() -> None:
    clock = FakeClock()

    def fetch() -> ReportRun:
        raise ValueError("not a deadline")

    with pytest.raises(ValueError, match="not a deadline"):
        wait_for(run(), fetch, timeout=10, clock=clock, sleep=clock.sleep)


def test_driver_calls_pass_only_the_keywords_a_driver_takes() -> None:
    from report_gateway.provider import DriverCalls

    class Old:
        def get(self, run_id: str, *, scope: Any) -> None: ...
        def open_result(self, run: Any, *, offset: int = 0) -> None: ...

    class New:
        def get(self, run_id: str, *, scope: Any, deadline: float | None = None) -> None: ...
        def open_result(self, run: Any, **options: Any) -> None: ...

    old, new = DriverCalls.of(Old()), DriverCalls.of(New())
    assert old.keywords("get", deadline=5.0) == {}
    assert old.keywords("open_result", if_range='"v1"', deadline=5.0) == {}
    assert old.keywords("start", progress=print) == {}
    assert new.keywords("get", deadline=5.0) == {"deadline": 5.0}
    assert new.keywords("get", deadline=None) == {}
    assert new.keywords("open_result", if_range=None, deadline=5.0, stall_timeout=2.0) == {
        "deadline": 5.0,
        "stall_timeout": 2.0,
    }


def _waited(ends: float, due: float, backoff: Backoff | None = None) -> list[float]:
    """The sleeps of a wait with due time ``due`` on a run that ends ``ends`` s in."""
    clock = FakeClock()
    start = clock.now

    def fetch() -> ReportRun:
        done = clock.now - start >= ends
        return run(RunStatus.SUCCEEDED if done else RunStatus.RUNNING)

    wait_for(run(), fetch, timeout=None, backoff=backoff, clock=clock, sleep=clock.sleep,
             rand=lambda: 0.0, due=due)  # fmt: skip
    return clock.sleeps


def test_a_known_due_time_is_polled_first_then_the_schedule_again_from_a_tenth() -> None:
    """A run whose report's runs end after about 2 s (``due``): one poll then, not the
    schedule's 0.5, 1.25, 2.375; a run still going then is most often about to end, so the
    schedule starts over from a tenth of the due time (0.2, 0.3, 0.45, ...), not from where
    it would be by then (a 1.7 s step)."""
    assert _waited(1.9, 2.0) == [2.0]
    assert _waited(2.6, 2.0) == [2.0, pytest.approx(0.2), pytest.approx(0.3), pytest.approx(0.45)]
    # The package README's example: a run of a 1 s report (due 0.98 s) still going at
    # 1.08 s is next looked at by 1.23 s.
    polled_at = list(itertools.accumulate(_waited(1.2, 0.98)))
    assert polled_at == [0.98, pytest.approx(1.078), pytest.approx(1.225)]
    # A run far longer than its report's others: geometric from there, capped as before
    # (30 s), so an hour costs about as many polls as the schedule from the start would.
    sleeps = _waited(3600.0, 2.0)
    assert max(sleeps) == 30.0
    assert len(sleeps) < 140


def test_a_due_time_of_almost_nothing_does_not_poll_in_a_burst() -> None:
    """A wait whose due time is almost nothing (the run was nearly as old as its report's
    runs last when the wait began: resumed, or slow to reach its wait) polls at once, then
    no faster than a tenth of the schedule's first interval: a 2 s run costs a few polls
    more than on the plain schedule, not one per halving of the due time (a schedule
    restarted from a tenth of 1 us sent 40 requests in its first second)."""
    plain = len(_waited(2.0, 0.0))
    for due in (1e-3, 1e-6, 1e-9):
        sleeps = _waited(2.0, due)
        assert min(sleeps[1:]) >= 0.05
        assert len(sleeps) <= plain + 6


def test_a_run_missed_at_its_due_time_is_polled_within_the_cap() -> None:
    """After a long due time is missed no interval exceeds the schedule's cap (the
    provider's 30 s, or ``max_interval``): a tenth of a 1000 s due time, or of 100 s under
    a 5 s ``max_interval``, is not kept as the interval for the rest of the run."""
    sleeps = _waited(3000.0, 1000.0)
    assert sleeps[0] == 1000.0
    assert max(sleeps[1:]) <= 30.0
    sleeps = _waited(300.0, 100.0, Backoff(first=0.5, maximum=5.0))
    assert max(sleeps[1:]) <= 5.0


def test_the_due_time_of_runs_that_all_last_one_second_stays_there() -> None:
    """Runs of one report each lasting 1 s, waited on one after another with the due time
    their predecessors taught (as the fan-out's waiter does, from their creation): the due
    time stays by 1 s and each is seen ended within a few tenths. A run missed at its due
    time and again a tenth later used to wait a whole schedule interval (about 1.1 s), and
    those late ends taught the pace a later due time, run after run (it settled near
    1.15-1.25 s, a fifth of a second or more lost per run)."""
    from report_gateway.polling import Polling
    from report_gateway.waiter import _Pace

    pace = _Pace()
    late: list[float] = []
    for number in range(200):
        clock = FakeClock()
        start = clock.now
        due = pace.due()
        polling = Polling(run(), timeout=60, clock=clock, rand=lambda: 0.5, due=due)
        while True:
            clock.sleep(polling.delay())
            ended = clock.now - start >= 1.0
            if polling.poll(lambda e=ended: run(RunStatus.SUCCEEDED if e else RunStatus.RUNNING)):
                break
        pace.ended(polling, age=0.0)
        if number >= 20:
            late.append(clock.now - start - 1.0)
    learnt = pace.due()
    assert learnt is not None
    assert 0.9 <= learnt <= 1.05
    assert sum(late) / len(late) < 0.12
    assert max(late) < 0.25


def test_the_pace_learns_when_a_reports_runs_end() -> None:
    """The due time follows the runs seen to end (from their creation), a little early,
    and a poll sent late does not push it later."""
    from report_gateway.polling import Polling
    from report_gateway.waiter import _Pace

    pace = _Pace()
    assert pace.due() is None  # nothing seen yet: the schedule
    for _ in range(10):  # seen going at 0.5 s, ended at 1.25 s: it ended about 0.875 s in
        clock = FakeClock()
        polling = Polling(run(), timeout=60, clock=clock, rand=lambda: 0.0)
        clock.now += 0.5
        polling.poll(lambda: run(RunStatus.RUNNING))
        clock.now += 0.75
        polling.poll(lambda: run(RunStatus.SUCCEEDED, "succeeded"))
        pace.ended(polling, age=0.1)
    due = pace.due()
    assert due is not None
    assert 0.9 < due <= 0.975
    for _ in range(64):  # first polls at the due time sent 3 s late: ended by the due time
        clock = FakeClock()
        polling = Polling(run(), timeout=60, clock=clock, due=0.8)
        clock.now += 3.0
        polling.poll(lambda: run(RunStatus.SUCCEEDED, "succeeded"))
        pace.ended(polling, age=0.1)
    later = pace.due()
    assert later is not None
    assert later <= 0.9
