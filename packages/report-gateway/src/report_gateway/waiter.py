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
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
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

__all__ = ["POLLERS", "Stopped", "Waiter", "watch"]

#: Threads a ``Waiter`` polls with (each busy for one request at a time).
POLLERS = 8
#: The longest the scheduler sleeps without looking whether it was stopped.
_TICK = 0.5
#: How far back the journal is read each time (ends committed a little out of order).
_JOURNAL_OVERLAP = 2.0

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
    ) -> None:
        self._gw = gw
        self._stop = stop or threading.Event()
        self._check_every = check_every
        self._journal = gw.journal
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Record]] = []
        self._records: dict[RunKey, _Record] = {}
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
    ) -> None:
        """Wait on ``run`` as ``Gateway.wait`` would (same arguments), then call ``done``."""
        if self._stop.is_set():
            done(None, Stopped("interrupted before waiting"))
            return
        gw = self._gw
        try:
            fetch, _ = watch(gw, run, timeout)
            with provider_errors(run.provider, scrub=gw.scrub):
                polling = Polling(
                    run,
                    timeout=timeout,
                    backoff=poll_schedule(gw.spec(run.provider), poll_interval, max_interval),
                    on_progress=on_progress,
                    on_change=gw._changed,
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
        record = _Record(run=run, polling=polling, fetch=fetch, done=done)
        if gw.events.latest(run.provider, run.id) is not None:
            delay = 0.0  # published before the wait began: taken at once, as wait does
        with self._cond:
            self._records[(run.provider, run.id)] = record
            self._push(record, delay)

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
        next_check = time.monotonic() + self._check_every
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
            if self._journal is not None and time.monotonic() >= next_check:
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

    def _poll(self, record: _Record) -> None:
        run, polling = record.run, record.polling
        try:
            if self._stop.is_set():
                raise Stopped("interrupted while waiting")
            with provider_errors(run.provider, scrub=self._gw.scrub):
                if polling.poll(record.fetch):
                    self._end(record, finish(polling.current), None)
                    return
                delay = polling.delay()
            if self._stop.is_set():
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


def _ended(run: ReportRun | None, error: BaseException | None) -> None:
    """A finished record's ``done``."""


def _ended_fetch() -> ReportRun:
    raise RuntimeError("this wait has ended")
