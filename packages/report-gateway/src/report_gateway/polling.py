"""Waiting for a run: backoff polling under a deadline, progress and change notifications.

The schedule (``Backoff``, the project's one backoff type, defined in the runtime and
re-exported here as ``report_gateway.polling.Backoff``) starts fast (most small reports
finish in seconds) and backs off geometrically to a cap (long reports should not cost
thousands of requests). Jitter only shortens an
interval, so the cap holds and many waiting jobs do not poll in lockstep. The deadline is
checked before every sleep and no sleep runs past it, so a timeout fires within one poll of
the deadline. Clock, sleep and randomness are injectable so tests never really wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
from reporting_runtime.backoff import Backoff

from .errors import RunCanceledError, RunFailedError, WaitTimeoutError, deadline_passed
from .models import ReportRun, RunStatus

if TYPE_CHECKING:
    from .provider import ProviderSpec

__all__ = [
    "Backoff",
    "Polling",
    "ProgressCallback",
    "deadline_after",
    "finish",
    "poll_schedule",
    "wait_for",
]

#: ``on_progress(run, elapsed_seconds)``: called once before the first poll and after each.
ProgressCallback = Callable[[ReportRun, float], None]


def poll_schedule(
    spec: ProviderSpec, first: float | None = None, maximum: float | None = None
) -> Backoff:
    """The provider's poll hints, each overridden when given (``Gateway.wait``)."""
    start = first or spec.first_poll_interval
    return Backoff(first=start, maximum=max(start, maximum or spec.max_poll_interval))


def deadline_after(timeout: float | None) -> float | None:
    """``time.monotonic()`` ``timeout`` seconds from now (None: no deadline)."""
    return None if timeout is None else time.monotonic() + max(0.0, timeout)


def finish(run: ReportRun) -> ReportRun:
    """Return a SUCCEEDED run; raise the error that matches any other terminal status."""
    if run.status is RunStatus.FAILED:
        raise RunFailedError(run, run.error)
    if run.status is RunStatus.CANCELED:
        raise RunCanceledError(run)
    return run


class Polling:
    """One wait between its polls: the schedule, the deadline and the newest snapshot.

    ``wait_for`` loops over it in one thread (``delay``, sleep, ``poll``); the fan-out's
    shared waiter (``waiter``) keeps one per waiting run and calls it from whichever thread
    polls, so both wait by the same rules. ``on_progress(run, 0.0)`` is heard on creation.
    """

    def __init__(
        self,
        run: ReportRun,
        *,
        timeout: float | None,
        backoff: Backoff | None = None,
        on_progress: ProgressCallback | None = None,
        on_change: Callable[[ReportRun, ReportRun], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        due: float | None = None,
    ) -> None:
        self.current = run
        self._backoff = backoff or Backoff()
        self._rand = rand
        self._schedule = self._backoff.intervals(rand)
        #: ``due``: seconds after the start when the run is expected to have ended (the
        #: fan-out's waiter learns it from the same report's runs): the first poll comes
        #: then instead of on the schedule; a miss starts the schedule over from a tenth of
        #: that (``_planned``).
        self._due = self.due = due
        #: Polls sent; seconds after the start of the last one that saw the run going, and
        #: of the one that saw it end (None: not yet): the bounds of its duration.
        self.polls = 0
        self.running_at = 0.0
        self.ended_by: float | None = None
        self._clock = clock
        self._on_progress = on_progress
        self._on_change = on_change
        self.started = clock()
        self.deadline = None if timeout is None else self.started + max(0.0, timeout)
        #: A poll failed because the deadline passed: the wait ends at the deadline.
        self._cause: BaseException | None = None
        self._last = False
        if on_progress is not None:
            on_progress(run, 0.0)

    @property
    def ended(self) -> bool:
        """The newest snapshot is terminal (``finish(current)`` gives the outcome)."""
        return self.current.status.is_terminal

    def delay(self) -> float:
        """Seconds to sleep before the next poll; ``WaitTimeoutError`` once the deadline is
        reached (no delay runs past it)."""
        now = self._clock()
        if self._last or (self.deadline is not None and now >= self.deadline):
            error = WaitTimeoutError(
                self.current.provider,
                self.current.id,
                self.current.status,
                run=self.current,
                elapsed=now - self.started,
            )
            if self._cause is not None:
                raise error from self._cause
            raise error
        if self._cause is not None:
            # The poll could not be answered in the time left (a Retry-After beyond the
            # deadline, a server that stalls): the wait still ends at its deadline, not
            # earlier, so a caller looping on wait does not hammer a server asking for calm.
            assert self.deadline is not None
            self._last = True
            return self.deadline - now
        delay = next(self._schedule) if self._due is None else self._planned(now)
        if self.deadline is not None:
            delay = min(delay, self.deadline - now)
        return delay

    def _planned(self, now: float) -> float:
        """The next delay when ``due`` is known: the due time, then the schedule over again
        from a tenth of it (same factor, cap and jitter).

        Why not the schedule from where it would be by then: that next interval is about
        as long as the whole due time, and a run seen going at its due time is most often
        about to end (the due time is its report's median, a little early). A run of a 1 s
        report missed at 0.98 s and again a tenth later, at 1.08 s, was next polled at about
        2.1 s; the fan-out's slots then waited a third of a second per run, and the learnt
        due time, taught by those late ends, drifted up to 1.25 s. From a tenth, the same
        run is next polled by 1.23 s; a run much longer than its report's others costs a
        few polls more, as many as the schedule would from its start (``Backoff``'s
        geometric growth), not one per tenth.

        The restart stays under the schedule's cap (the provider's, or ``max_interval``):
        a tenth of a 1000 s due time kept as the interval would see a run 100 s late all
        its life, past the 30 s the README promises. And it starts no lower than a tenth of
        the schedule's first interval: ``due`` is what is left of the report's usual time
        when the wait began, almost nothing for a run nearly that old (resumed, or slow to
        reach its wait), and a schedule restarted from a tenth of a microsecond sent about
        40 requests in its first second.
        """
        assert self._due is not None
        due, elapsed = self._due, now - self.started
        if self.polls == 0:
            return max(0.0, due - elapsed)
        if self.polls == 1 and due > 0:
            again = self._backoff
            first = min(max(due * 0.1, again.first * 0.1), again.maximum)
            self._schedule = attrs.evolve(again, first=first).intervals(self._rand)
        return next(self._schedule)

    def poll(self, fetch: Callable[[], ReportRun]) -> bool:
        """Take one fresh snapshot (none once the deadline ended the wait); True when the
        run is terminal. A fetch failing for the deadline is kept for ``delay`` to raise."""
        if self._last:
            return False
        self.polls += 1
        polled_at = self._clock() - self.started
        try:
            latest = fetch()
        except Exception as exc:
            if self.deadline is None or not deadline_passed(exc):
                raise
            self._cause = exc
            return False
        if latest.status is not self.current.status and self._on_change is not None:
            self._on_change(latest, self.current)
        self.current = latest
        if self._on_progress is not None:
            self._on_progress(latest, self._clock() - self.started)
        if not self.ended:
            self.running_at = polled_at
        else:
            self.ended_by = polled_at
        return self.ended


def wait_for(
    run: ReportRun,
    fetch: Callable[[], ReportRun],
    *,
    timeout: float | None,
    backoff: Backoff | None = None,
    on_progress: ProgressCallback | None = None,
    on_change: Callable[[ReportRun, ReportRun], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    due: float | None = None,
    on_end: Callable[[Polling], None] | None = None,
) -> ReportRun:
    """Poll ``fetch`` until the run is terminal; return it if SUCCEEDED, raise otherwise.

    ``on_change(new, previous)`` fires whenever the status differs from the last snapshot.
    ``timeout`` None waits forever; a timeout raises ``WaitTimeoutError`` (the run itself
    goes on at the provider, and ``Gateway.wait`` can resume it from its id). ``fetch`` is
    expected to end by the deadline too (``Gateway.wait`` passes it to the driver): a fetch
    that fails because the deadline passed (a ``DeadlineExceededError`` in its causes) ends
    the wait at the deadline with ``WaitTimeoutError``. ``due``: see ``Polling``;
    ``on_end(polling)`` hears a poll that saw the run end (``waiter._Pace`` learns from it).
    """
    state = Polling(
        run,
        timeout=timeout,
        backoff=backoff,
        on_progress=on_progress,
        on_change=on_change,
        clock=clock,
        rand=rand,
        due=due,
    )
    while not state.ended:
        sleep(state.delay())
        if state.poll(fetch) and on_end is not None:
            on_end(state)
    return finish(state.current)
