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

from reporting_runtime.backoff import Backoff

from .errors import RunCanceledError, RunFailedError, WaitTimeoutError, deadline_passed
from .models import ReportRun, RunStatus

if TYPE_CHECKING:
    from .provider import ProviderSpec

__all__ = ["Backoff", "ProgressCallback", "deadline_after", "finish", "poll_schedule", "wait_for"]

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
) -> ReportRun:
    """Poll ``fetch`` until the run is terminal; return it if SUCCEEDED, raise otherwise.

    ``on_change(new, previous)`` fires whenever the status differs from the last snapshot.
    ``timeout`` None waits forever; a timeout raises ``WaitTimeoutError`` (the run itself
    goes on at the provider, and ``Gateway.wait`` can resume it from its id). ``fetch`` is
    expected to end by the deadline too (``Gateway.wait`` passes it to the driver): a fetch
    that fails because the deadline passed (a ``DeadlineExceededError`` in its causes) ends
    the wait at the deadline with ``WaitTimeoutError``.
    """
    schedule = (backoff or Backoff()).intervals(rand)
    start = clock()
    deadline = None if timeout is None else start + max(0.0, timeout)
    current = run
    if on_progress is not None:
        on_progress(current, 0.0)
    if current.status.is_terminal:
        return finish(current)
    while True:
        now = clock()
        if deadline is not None and now >= deadline:
            raise WaitTimeoutError(
                current.provider, current.id, current.status, run=current, elapsed=now - start
            )
        delay = next(schedule)
        if deadline is not None:
            delay = min(delay, deadline - now)
        sleep(delay)
        try:
            latest = fetch()
        except Exception as exc:
            if deadline is None or not deadline_passed(exc):
                raise
            # The poll could not be answered in the time left (a Retry-After beyond the
            # deadline, a server that stalls): the wait still ends at its deadline, not
            # earlier, so a caller looping on wait does not hammer a server asking for calm.
            left = deadline - clock()
            if left > 0:
                sleep(left)
            now = clock()
            raise WaitTimeoutError(
                current.provider, current.id, current.status, run=current, elapsed=now - start
            ) from exc
        if latest.status is not current.status and on_change is not None:
            on_change(latest, current)
        current = latest
        if on_progress is not None:
            on_progress(current, clock() - start)
        if current.status.is_terminal:
            return finish(current)
