"""Waiting on a run, alone (``Gateway.wait``) or by the thousand (the fan-out's ``Waiter``).

``watch`` is what both poll a run with: the driver's ``get`` bounded by the wait's deadline,
a terminal snapshot published on ``Gateway.events`` (a webhook) taken instead of a poll,
every snapshot passed through ``Gateway._seen`` (a finished run frees its admission slot).
``Gateway.wait`` loops over a ``polling.Polling`` in its own thread, sleeping in between.

A ``Waiter`` keeps a ``Polling`` per waiting run instead, so a waiting run costs a small
record and no thread: one scheduler thread holds the records in a heap by next-poll time
and hands each due poll to a small bounded pool; a poll that leaves the run going puts it
back at its next time. The schedule, deadline, status mapping, change and progress
callbacks are ``Polling``'s, the same as ``Gateway.wait``'s. What ends a ``Gateway.wait``'s
sleep early ends a record's too: a terminal snapshot published in this process (heard
through ``RunEvents.listen``) and an end written to the journal by another process (read
for every record at once with ``Journal.ended_since`` every ``JOURNAL_CHECK_SECONDS``).

Both learn, per Gateway and report, when its runs end (``_Pace``, ``paced``) and poll a run
first when the others of its report were done rather than on the schedule: a 1 s run
polled at 0.5 s and 1.25 s cost two polls and a quarter of a second; polled at about 1 s,
one (the schedule is kept until a run of the report was seen to end). Trade-off: a run
shorter than most of its report's is seen up to the median's time late; a longer one is
polled again a tenth of that later, the schedule starting over from there
(``Polling._planned``). A wait given its own ``poll_interval`` (or clock) keeps the
schedule.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import attrs

from .errors import provider_errors
from .events import JOURNAL_CHECK_SECONDS, RunKey
from .polling import Polling, ProgressCallback, deadline_after, finish, poll_schedule

if TYPE_CHECKING:
    from .gateway import Gateway
    from .models import ReportRun

__all__ = ["POLLERS", "Stopped", "Waiter", "paced", "watch"]

#: Threads a ``Waiter`` polls with (each busy for one request at a time).
POLLERS = 8
#: The longest the scheduler sleeps without looking whether it was stopped.
_TICK = 0.5
#: How far back the journal is read each time (ends committed a little out of order).
_JOURNAL_OVERLAP = 2.0
#: Runs of a report whose ends a ``_Pace`` remembers, the quantile of them its due time
#: follows (the median), how far before that it polls (so the estimate can come down when
#: runs get faster), and the least due time it sets.
_PACE_RUNS = 64
_PACE_QUANTILE = 0.5
_PACE_EARLY = 0.98
_PACE_MIN = 0.05

#: ``done(run, None)`` with the SUCCEEDED run, or ``done(None, error)``.
Done = Callable[["ReportRun | None", "BaseException | None"], None]

_log = logging.getLogger(__name__)


class Stopped(Exception):
    """A wait given up because its ``Waiter`` was stopped (Ctrl-C); the run goes on."""


def watch(
    gw: Gateway,
    run: ReportRun,
    timeout: float | None,
    sleep: Callable[[float], None] | None = None,
) -> tuple[Callable[[], ReportRun], Callable[[float], None]]:
    """The ``fetch`` and ``sleep`` a wait over ``run`` uses (see the module docstring);
    the driver's ``get`` is bounded by ``timeout`` from now."""
    journal = gw.journal  # opened before the deadline starts counting
    gw._seen(run)
    provider = run.provider
    extra = gw._drivers.keywords(provider, "get", deadline=deadline_after(timeout))
    fetch, pause = gw.events.watch(
        run,
        lambda: gw._drivers.run(provider, run.id, run.scope, **extra),
        sleep,
        journal=journal,
    )
    return (lambda: gw._seen(fetch())), pause


class _Pace:
    """When runs of one report end, from the last ``_PACE_RUNS`` seen to end: the first poll
    of the next one is due at their median, a little early (a run seen ended at its first
    poll only says it ended by then, so polling a little earlier each time finds the real
    end; a miss is polled again a tenth later)."""

    def __init__(self) -> None:
        self._ends: deque[float] = deque(maxlen=_PACE_RUNS)
        self._due: float | None = None
        self._lock = threading.Lock()

    def due(self) -> float | None:
        return self._due

    def ended(self, polling: Polling, age: float) -> None:
        """Learn from a wait whose poll saw its run end; ``age``: how old the run was when
        the wait began (times are kept from the run's creation, so a start slow to reach
        its wait does not blur them)."""
        seen = polling.ended_by
        if seen is None:
            return
        if polling.running_at > 0:
            # Seen going, then ended: it ended in between, the midpoint is the best guess.
            seen = (polling.running_at + seen) / 2
        elif polling.due is not None:
            # Ended at the first poll, due then: a poll sent late (a busy process) says no
            # more than that (else the lateness would feed back into the due time).
            seen = min(seen, polling.due)
        with self._lock:
            self._ends.append(age + seen)
            ordered = sorted(self._ends)
        quantile = ordered[int(len(ordered) * _PACE_QUANTILE)]
        self._due = max(_PACE_MIN, quantile * _PACE_EARLY)


#: Each Gateway's ``_Pace`` per (provider, report), kept while the Gateway lives: its waits
#: (``Gateway.wait``) and its fan-outs' waiters learn from and use the same ones.
_paces: weakref.WeakKeyDictionary[Gateway, dict[tuple[str, str], _Pace]] = (
    weakref.WeakKeyDictionary()
)
_paces_lock = threading.Lock()


def gateway_paces(gw: Gateway) -> dict[tuple[str, str], _Pace]:
    with _paces_lock:
        return _paces.setdefault(gw, {})


def paced(gw: Gateway, run: ReportRun, *, own: bool) -> tuple[_Pace | None, float | None, float]:
    """The pace a wait on ``run`` learns into (None when ``own``: the caller set its own
    interval, or its own clock), its first poll's due time from the wait's start (None: not
    known yet, the schedule's) and the run's age (``_age``)."""
    if own:
        return None, None, 0.0
    paces = gateway_paces(gw)
    with _paces_lock:
        pace = paces.setdefault((run.provider, run.report_id), _Pace())
    due, age = pace.due(), _age(run)
    return pace, None if due is None else max(0.0, due - age), age


@attrs.define(eq=False)
class _Record:
    """One waiting run: all a wait needs between its polls."""

    run: ReportRun
    polling: Polling
    fetch: Callable[[], ReportRun]
    done: Done
    #: The heap entry that counts (older ones are left in the heap and skipped).
    ticket: int = 0
    #: Being polled now (in no heap entry).
    busy: bool = False
    #: Woken while being polled: poll again at once.
    woken: bool = False
    #: The journal's end stamp that last woke it (it wakes it once).
    journal_stamp: float | None = None
    #: Its fan-out's Ctrl-C (the waiter's own ``stop`` counts too).
    stop: threading.Event | None = None
    #: Where its run's report's end times are learnt (None: the wait has its own schedule).
    pace: _Pace | None = None
    #: How old the run was when the wait began (``_age``).
    age: float = 0.0


class Waiter:
    """Many waits on one scheduler thread and ``pollers`` poll threads (module docstring).

    ``add`` returns at once; each wait ends by calling its ``done`` in a poll thread (or the
    adding one, for a run already finished). ``stop`` (an event set on Ctrl-C) ends every
    wait with ``Stopped``; ``close`` ends the threads.
    """

    def __init__(
        self,
        gw: Gateway,
        *,
        pollers: int = POLLERS,
        stop: threading.Event | None = None,
        check_every: float = JOURNAL_CHECK_SECONDS,
        paces: dict[tuple[str, str], _Pace] | None = None,
    ) -> None:
        self._gw = gw
        self._stop = stop or threading.Event()
        self._check_every = check_every
        self._journal = gw.journal
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Record]] = []
        self._records: dict[RunKey, _Record] = {}
        #: Per (provider, report): when its runs end. Given, it outlives this waiter (the
        #: next fan-out of the same Gateway starts from what this one learnt).
        self._paces = {} if paces is None else paces
        self._tickets = itertools.count(1)
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=pollers, thread_name_prefix="waiter-poll")
        self._unlisten = gw.events.listen(self._published)
        self._thread = threading.Thread(target=self._schedule, name="waiter", daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        with self._cond:
            return len(self._records)

    def add(
        self,
        run: ReportRun,
        done: Done,
        *,
        timeout: float | None = 3600.0,
        on_progress: ProgressCallback | None = None,
        poll_interval: float | None = None,
        max_interval: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Wait on ``run`` as ``Gateway.wait`` would (same arguments, but see the module
        docstring for the first poll), then call ``done``; ``stop`` (a fan-out's Ctrl-C:
        then call ``interrupt``) ends this wait with ``Stopped`` as the waiter's own does."""
        if self._stop.is_set() or (stop is not None and stop.is_set()):
            done(None, Stopped("interrupted before waiting"))
            return
        gw = self._gw
        if poll_interval is None:
            with self._cond:
                pace = self._paces.setdefault((run.provider, run.report_id), _Pace())
            due, age = pace.due(), _age(run)
            due = None if due is None else max(0.0, due - age)
        else:
            pace, due, age = None, None, 0.0
        try:
            fetch, _ = watch(gw, run, timeout)
            with provider_errors(run.provider, scrub=gw.scrub):
                polling = Polling(
                    run,
                    timeout=timeout,
                    backoff=poll_schedule(gw.spec(run.provider), poll_interval, max_interval),
                    on_progress=on_progress,
                    on_change=gw._changed,
                    due=due,
                )
                if polling.ended:
                    finished = finish(polling.current)
                else:
                    finished = None
                    delay = polling.delay()
        except Exception as exc:
            done(None, exc)
            return
        if finished is not None:
            done(finished, None)
            return
        record = _Record(
            run=run, polling=polling, fetch=fetch, done=done, stop=stop, pace=pace, age=age
        )
        if gw.events.latest(run.provider, run.id) is not None:
            delay = 0.0  # published before the wait began: taken at once, as wait does
        with self._cond:
            self._records[(run.provider, run.id)] = record
            # A stop set since the check above found no record to wake: poll it now.
            self._push(record, 0.0 if self._stopped(record) else delay)

    def interrupt(self) -> None:
        """Poll at once every wait whose ``stop`` is set: each ends with ``Stopped``."""
        with self._cond:
            for record in self._records.values():
                if record.stop is not None and record.stop.is_set() and not record.busy:
                    self._push(record, 0.0)

    def close(self) -> None:
        """End the scheduler and the poll threads (waits still going are left unanswered:
        stop them first)."""
        self._unlisten()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        self._pool.shutdown(wait=True)

    # -- inside ---------------------------------------------------------------------------

    def _push(self, record: _Record, delay: float) -> None:
        """Schedule ``record``'s next poll ``delay`` seconds from now (lock held)."""
        record.ticket = ticket = next(self._tickets)
        due = time.monotonic() + max(0.0, delay)
        if not self._heap or due < self._heap[0][0]:
            self._cond.notify()
        heapq.heappush(self._heap, (due, ticket, record))

    def _wake(self, key: RunKey, stamp: float | None = None) -> None:
        """Poll the run at once (a publish, a journal end), once per journal stamp."""
        with self._cond:
            record = self._records.get(key)
            if record is None:
                return
            if stamp is not None:
                if stamp == record.journal_stamp:
                    return
                record.journal_stamp = stamp
            if record.busy:
                record.woken = True
            else:
                self._push(record, 0.0)

    def _published(self, run: ReportRun) -> None:
        self._wake((run.provider, run.id))

    def _schedule(self) -> None:
        # Without a journal there is nothing to read: no check time bounds the sleep (one
        # that was never moved on would be past after a second, and every loop would then
        # sleep 0 s: the scheduler spun on a whole core for as long as runs were waiting).
        journaled = self._journal is not None
        next_check = time.monotonic() + self._check_every if journaled else float("inf")
        cursor = time.time() - 60.0  # ends written just before a wait began count too
        while True:
            due: list[_Record] = []
            with self._cond:
                if self._closed:
                    return
                now = time.monotonic()
                if self._stop.is_set():
                    due = [r for r in self._records.values() if not r.busy]
                    for record in due:
                        record.busy = True
                    self._heap.clear()
                while self._heap and self._heap[0][0] <= now:
                    _, ticket, record = heapq.heappop(self._heap)
                    if ticket == record.ticket and not record.busy:
                        record.busy = True
                        due.append(record)
                if not due:
                    wait = min(_TICK, next_check - now)
                    if self._heap:
                        wait = min(wait, self._heap[0][0] - now)
                    if wait > 0:
                        self._cond.wait(wait)
            for record in due:
                self._pool.submit(self._poll, record)
            if journaled and time.monotonic() >= next_check:
                next_check = time.monotonic() + self._check_every
                cursor = self._read_journal(cursor)

    def _read_journal(self, cursor: float) -> float:
        """Wake every record the journal says ended (another process's listener)."""
        assert self._journal is not None
        with self._cond:
            if not self._records:
                return cursor
        newest = cursor
        for provider, run_id, stamp in self._journal.ended_since(cursor):
            newest = max(newest, stamp)
            self._wake((provider, run_id), stamp)
        return max(cursor, newest - _JOURNAL_OVERLAP)

    def _stopped(self, record: _Record) -> bool:
        return self._stop.is_set() or (record.stop is not None and record.stop.is_set())

    def _poll(self, record: _Record) -> None:
        run, polling = record.run, record.polling
        try:
            if self._stopped(record):
                raise Stopped("interrupted while waiting")
            with provider_errors(run.provider, scrub=self._gw.scrub):
                if polling.poll(record.fetch):
                    if record.pace is not None:
                        record.pace.ended(polling, record.age)
                    self._end(record, finish(polling.current), None)
                    return
                delay = polling.delay()
            if self._stopped(record):
                raise Stopped("interrupted while waiting")
        except Exception as exc:
            self._end(record, None, exc)
            return
        with self._cond:
            record.busy = False
            if record.woken:
                record.woken, delay = False, 0.0
            self._push(record, delay)

    def _end(self, record: _Record, run: ReportRun | None, error: BaseException | None) -> None:
        with self._cond:
            key = (record.run.provider, record.run.id)
            if self._records.get(key) is record:
                del self._records[key]
        done, record.done = record.done, _ended
        record.fetch = _ended_fetch  # a record outliving its wait holds nothing of it
        try:
            done(run, error)
        except Exception:  # a caller's callback must not stop the other waits
            _log.exception("a wait's done callback failed")


def _age(run: ReportRun) -> float:
    """Seconds since the provider created ``run`` by this machine's clock (0 if unknown).
    Skewed clocks shift every run's age alike, which the learnt end times absorb."""
    if run.created_at is None:
        return 0.0
    return time.time() - run.created_at.timestamp()


def _ended(run: ReportRun | None, error: BaseException | None) -> None:
    """A finished record's ``done``."""


def _ended_fetch() -> ReportRun:
    raise RuntimeError("this wait has ended")
