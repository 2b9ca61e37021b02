"""A request's deadline: retries never sleep past it nor start after it, every attempt's
timeouts are cut to the time left, and the watchdog wakes a blocked read at it.

Clocks are injected (the retry policy's and the transport's), so nothing here waits; the
timed attacks (a trickling server, a silent one) are in tests/hostile/test_wave2.py.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

import pytest
from reporting_runtime import (
    ApiClient,
    DeadlineExceededError,
    Operation,
    RetryConfig,
    RetryPolicy,
    ServerError,
    Transport,
    TransportError,
)
from reporting_runtime.deadlines import MIN_ATTEMPT_TIMEOUT, DeadlineTimeout, Watchdog
from reporting_runtime.messages import Request
from urllib3.util import Timeout

from tests.forking import exit_code_within

GET = Operation(operation_id="get_thing", method="GET", path="/thing")


class FakeClock:
    """Monotonic clock that only moves when something sleeps."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(server: Any, clock: FakeClock, *, rng: float = 1.0) -> ApiClient:
    policy = RetryPolicy(
        RetryConfig(total=5, backoff_base=1.0, backoff_max=8.0, budget_seconds=1000),
        sleep=clock.sleep,
        clock=clock,
        wall_clock=lambda: 0.0,
        rng=lambda: rng,
    )
    return ApiClient(
        provider="stripe", base_url=server.url, retry=policy, transport=Transport(clock=clock)
    )


def test_retry_after_beyond_the_deadline_ends_at_once(server: Any) -> None:
    clock = FakeClock()
    server.reply(503, headers={"Retry-After": "100"})
    with pytest.raises(DeadlineExceededError) as caught:
        make_client(server, clock).request(GET, deadline=clock.now + 30)
    assert clock.sleeps == []
    assert len(server.seen) == 1
    assert "Retry-After" in str(caught.value)
    assert caught.value.request_sent


def test_without_a_deadline_the_same_retry_after_is_waited_out(server: Any) -> None:
    clock = FakeClock()
    server.reply(503, headers={"Retry-After": "100"})
    server.reply(200)
    assert make_client(server, clock).request(GET).status == 200
    assert clock.sleeps == [100.0]


def test_retries_stop_before_a_sleep_would_cross_the_deadline(server: Any) -> None:
    clock = FakeClock()
    for _ in range(5):
        server.reply(503)
    # Backoff ceilings 1, 2, 4: after sleeping 1 and 2, a 4 s sleep would end past +5.
    with pytest.raises(DeadlineExceededError):
        make_client(server, clock).request(GET, deadline=clock.now + 5)
    assert clock.sleeps == [1.0, 2.0]
    assert len(server.seen) == 3


def test_a_deadline_that_holds_changes_nothing(server: Any) -> None:
    clock = FakeClock()
    server.reply(503)
    server.reply(200, '{"ok": true}')
    response = make_client(server, clock).request(GET, deadline=clock.now + 60)
    assert response.json() == {"ok": True}
    assert clock.sleeps == [1.0]


def test_the_retry_budget_still_returns_the_last_answer(server: Any) -> None:
    """Only the caller's deadline is an error of its own; the budget keeps its meaning."""
    clock = FakeClock()
    server.reply(503, headers={"Retry-After": "100"})
    policy = RetryPolicy(RetryConfig(total=3, budget_seconds=10), sleep=clock.sleep, clock=clock)
    client = ApiClient(
        provider="stripe", base_url=server.url, retry=policy, transport=Transport(clock=clock)
    )
    with pytest.raises(ServerError):
        client.request(GET)
    assert clock.sleeps == []


def test_no_request_is_sent_after_the_deadline(server: Any) -> None:
    clock = FakeClock()
    with pytest.raises(DeadlineExceededError):
        make_client(server, clock).request(GET, deadline=clock.now - 1)
    assert server.seen == []


def test_a_deadline_error_is_a_transport_error() -> None:
    """Callers catching TransportError (the gateway's network handling) see it too."""
    assert issubclass(DeadlineExceededError, TransportError)


def test_the_retry_carries_the_request_deadline() -> None:
    clock = FakeClock()
    policy = RetryPolicy(RetryConfig(budget_seconds=120), clock=clock)
    request = Request(method="GET", url="http://127.0.0.1/x", deadline=clock.now + 7)
    retry = policy.build_retry(request)
    assert retry.hard_deadline == clock.now + 7
    assert retry.deadline == clock.now + 120
    assert retry.new().hard_deadline == clock.now + 7


def test_attempt_timeouts_are_cut_to_the_time_left() -> None:
    clock = FakeClock()
    timeout = DeadlineTimeout(connect=10, read=60, deadline=clock.now + 25, clock=clock)
    assert timeout.connect_timeout == 10
    assert timeout.read_timeout == 25
    clock.now += 20
    again = timeout.clone()  # urllib3 clones per attempt: the time left is read afresh
    assert again.connect_timeout == 5
    assert again.read_timeout == 5
    clock.now += 10
    assert again.read_timeout == MIN_ATTEMPT_TIMEOUT


def test_a_request_read_timeout_is_the_stall_limit() -> None:
    transport = Transport(timeout=Timeout(connect=3, read=60))
    plain = Request(method="GET", url="http://127.0.0.1/x")
    stalled = Request(method="GET", url="http://127.0.0.1/x", read_timeout=2.5)
    assert transport._timeout_for(plain).read_timeout == 60
    assert transport._timeout_for(stalled).read_timeout == 2.5
    assert transport._timeout_for(stalled).connect_timeout == 3


def test_the_watchdog_runs_a_due_action_and_not_a_cancelled_one() -> None:
    clock = FakeClock()
    watchdog = Watchdog(clock)
    due, cancelled = threading.Event(), threading.Event()
    kept = watchdog.arm(clock.now + 3600, cancelled.set)
    kept.cancel()
    alarm = watchdog.arm(clock.now - 1, due.set)
    assert due.wait(5)
    assert alarm.fired
    assert not kept.fired
    assert not cancelled.is_set()


def test_the_watchdog_runs_each_alarm_whatever_order_they_are_armed_in() -> None:
    # The thread is woken only by an alarm due before all the others: one due later than
    # the next must still fire once that one has, and one due sooner than a far one at once.
    watchdog = Watchdog()
    far = watchdog.arm(time.monotonic() + 3600, lambda: None)
    first, later, sooner = threading.Event(), threading.Event(), threading.Event()
    watchdog.arm(time.monotonic() + 0.05, first.set)
    watchdog.arm(time.monotonic() + 0.1, later.set)
    assert first.wait(5)
    assert later.wait(5)
    watchdog.arm(time.monotonic(), sooner.set)
    assert sooner.wait(5)
    assert not far.fired
    far.cancel()


def test_a_deadline_at_infinity_does_not_end_the_watchdog() -> None:
    """``timeout=math.inf`` arms an alarm no wait can represent; the deadlines armed after
    it must still fire."""
    watchdog = Watchdog()
    fired = threading.Event()
    forever = watchdog.arm(math.inf, lambda: None)
    time.sleep(0.05)  # let the thread start waiting on it
    watchdog.arm(time.monotonic() + 0.05, fired.set)
    assert fired.wait(10)
    forever.cancel()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_deadlines_of_its_own_and_none_of_its_parents() -> None:
    """A forked worker (multiprocessing, Airflow's and Celery's forking workers) must get
    its stalled downloads ended too, and must never run its parent's alarms: their
    connections' sockets are shared with the parent, which one shutdown would cut."""
    watchdog = Watchdog()
    parent = os.getpid()
    read_end, write_end = os.pipe()

    def in_whichever_process() -> None:
        if os.getpid() != parent:
            os.write(write_end, b"inherited alarm fired in the child")

    watchdog.arm(time.monotonic() + 0.3, in_whichever_process)
    pid = os.fork()
    if pid == 0:  # the child: an alarm of its own fires; the inherited one never does
        code = 1
        try:
            own = threading.Event()
            watchdog.arm(time.monotonic() + 0.05, own.set)
            code = 0 if own.wait(5) else 2
            time.sleep(0.5)  # past the inherited alarm's deadline
        finally:
            os._exit(code)
    status = exit_code_within(pid, 15)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        assert pipe.read() == b""
    assert status == 0
