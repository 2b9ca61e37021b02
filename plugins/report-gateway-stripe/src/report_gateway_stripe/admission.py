"""First-come-first-served admission to a provider's limit on concurrent report runs.

Stripe v2 refuses a create over the limit with 429 ``report_run_rate_limit_exceeded`` and
says nothing about when a slot frees. If every refused start backs off on its own timer,
the starts that happen to be awake when a slot frees take it (typically threads whose run
just ended), while the ones sleeping through a long backoff sit out whole rounds and their
share of the limit goes unused. So, once the provider has refused a start, starts queue:

- a start that arrives while others wait goes to the back of the line (no cutting in);
- only the head of the line retries, every ``interval`` seconds (or the provider's
  Retry-After), or at once when :meth:`AdmissionQueue.wake` says a run was seen ending;
- when the head is admitted the next one tries at once, so the line drains as fast as
  slots free; an empty line costs a start nothing (no lock held across the request);
- each start waits at most until its own deadline, then raises the last refusal it got
  (or, never having tried, the answer to one try of its own);
- ``on_wait`` hears where a waiting start stands when it joins the line and then at most
  every ``report_every`` seconds, outside the lock (it may be slow, a user's display).

One queue serves every driver in the process using the same host and key (the limit is
the key's, whoever sends), found with :func:`queue_for`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import TypeVar

__all__ = ["AdmissionQueue", "queue_for"]

T = TypeVar("T")

#: ``on_event(event, ahead)``: ``"queued"`` (ahead: starts in line before this one) or
#: ``"admitted"`` (ahead: 0), called in line order, under the queue's lock.
EventCallback = Callable[[str, int], None]
#: ``on_wait(ahead, waited)``: starts in line before this one, seconds since it joined.
WaitCallback = Callable[[int, float], None]


class _Ticket:
    """One start's place in line; its condition shares the queue's lock."""

    __slots__ = ("poked", "turn")

    def __init__(self, lock: threading.Lock) -> None:
        self.turn = threading.Condition(lock)
        self.poked = False


class _WaitReports:
    """Throttles a start's ``on_wait`` reports: the head retries several times a second."""

    __slots__ = ("callback", "clock", "due", "every", "joined")

    def __init__(
        self, callback: WaitCallback | None, clock: Callable[[], float], every: float
    ) -> None:
        self.callback = callback
        self.clock = clock
        self.every = every
        self.joined = self.due = clock()

    def timeout(self, limit: float) -> float:
        """How long to block before a report is due (``limit`` when none will be)."""
        if self.callback is None:
            return limit
        return max(0.0, min(limit, self.due - self.clock()))

    def report(self, ahead: int) -> None:
        """Call back if a report is due; never under the queue's lock."""
        now = self.clock()
        if self.callback is None or now < self.due:
            return
        self.due = now + self.every
        self.callback(ahead, now - self.joined)


class AdmissionQueue:
    """The line of starts waiting for a slot under one provider limit. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._line: deque[_Ticket] = deque()

    @property
    def waiting(self) -> int:
        """Starts in line now (the head included)."""
        with self._lock:
            return len(self._line)

    def wake(self) -> None:
        """A run was seen ending: let the head of the line retry now rather than later."""
        with self._lock:
            if self._line:
                head = self._line[0]
                head.poked = True
                head.turn.notify()

    def admit(
        self,
        attempt: Callable[[], T],
        *,
        refusal: Callable[[Exception], float | None],
        deadline: float,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        on_event: EventCallback | None = None,
        on_wait: WaitCallback | None = None,
        report_every: float = 1.0,
    ) -> T:
        """``attempt()`` once admitted; its result, or its exception.

        ``refusal(exc)`` tells a limit refusal from any other error: None for another error
        (raised at once), else the seconds the provider asked to wait (0: not said).
        ``deadline`` is on ``clock``'s scale.
        """
        ticket = _Ticket(self._lock)
        with self._lock:
            direct = not self._line
            if not direct:
                ahead = self._join(ticket, on_event)
        last: Exception | None = None
        if direct:
            try:
                return attempt()
            except Exception as exc:
                if refusal(exc) is None or clock() >= deadline:
                    raise
                last = exc
            with self._lock:
                ahead = self._join(ticket, on_event)
        reports = _WaitReports(on_wait, clock, report_every)
        try:
            reports.report(ahead)
            result = self._wait_in_line(
                ticket, attempt, last, refusal, deadline, interval, clock, reports
            )
        except BaseException:
            self._leave(ticket, None)
            raise
        self._leave(ticket, on_event)
        return result

    def _join(self, ticket: _Ticket, on_event: EventCallback | None) -> int:
        """Go to the back of the line; the number of starts ahead."""
        ahead = len(self._line)
        if on_event is not None:
            on_event("queued", ahead)
        self._line.append(ticket)
        return ahead

    def _leave(self, ticket: _Ticket, on_admitted: EventCallback | None) -> None:
        """Step out of line; if this was the head, the next start's turn begins now."""
        with self._lock:
            if on_admitted is not None:
                on_admitted("admitted", 0)
            was_head = self._line[0] is ticket
            self._line.remove(ticket)
            if was_head and self._line:
                self._line[0].turn.notify()

    def _wait_in_line(
        self,
        ticket: _Ticket,
        attempt: Callable[[], T],
        last: Exception | None,
        refusal: Callable[[Exception], float | None],
        deadline: float,
        interval: float,
        clock: Callable[[], float],
        reports: _WaitReports,
    ) -> T:
        # Refused just now and first in line: nothing has freed a slot yet, so pause first.
        # Given the turn by the previous head's admission: a slot may be free, try at once.
        pause = (refusal(last) or interval) if last is not None else 0.0
        with self._lock:
            while self._line[0] is not ticket:
                pause = 0.0
                left = deadline - clock()
                if left <= 0:
                    break
                wait = reports.timeout(left)
                if wait > 0:
                    ticket.turn.wait(wait)
                    continue
                # A report is due: say it without the lock (the loop re-reads the line).
                ahead = self._line.index(ticket)
                self._lock.release()
                try:
                    reports.report(ahead)
                finally:
                    self._lock.acquire()
            at_head = self._line[0] is ticket
        if not at_head:
            if last is not None:
                raise last
            return attempt()  # out of time before its turn: the provider's own answer
        pause = min(pause, max(0.0, deadline - clock()))
        while True:
            self._pause(ticket, clock() + pause, clock, reports)
            try:
                return attempt()
            except Exception as exc:
                asked = refusal(exc)
                if asked is None:
                    raise
                left = deadline - clock()
                if left <= 0:
                    raise
                pause = min(asked or interval, left)

    def _pause(
        self, ticket: _Ticket, until: float, clock: Callable[[], float], reports: _WaitReports
    ) -> None:
        """The head's pause before its next try: until ``until`` or a wake, reporting."""
        while True:
            with self._lock:
                left = until - clock()
                wait = reports.timeout(left)
                if left > 0 and not ticket.poked:
                    ticket.turn.wait_for(lambda: ticket.poked, wait)
                done = ticket.poked or wait >= left  # woken, or waited out the whole pause
                if done:
                    ticket.poked = False
            reports.report(0)
            if done:
                return


_QUEUES: dict[Hashable, AdmissionQueue] = {}
_QUEUES_LOCK = threading.Lock()


def queue_for(key: Hashable) -> AdmissionQueue:
    """The process-wide queue for ``key`` (a host and a credential id, never a secret)."""
    with _QUEUES_LOCK:
        queue = _QUEUES.get(key)
        if queue is None:
            queue = _QUEUES[key] = AdmissionQueue()
        return queue
