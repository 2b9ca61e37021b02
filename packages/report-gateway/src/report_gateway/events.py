"""Run snapshots pushed to this process (a webhook, say), and the waits they end.

``Gateway.wait`` sleeps between polls on ``RunEvents.wait`` instead of ``time.sleep``: a
terminal snapshot published for the same (provider, run id) wakes it at once, and it takes
that snapshot as the fresh run, so a run announced by the provider costs no further poll.
A snapshot published before anyone waits is kept (the newest ``keep`` of them), because a
webhook may well arrive between ``start`` and ``wait``.

Only terminal snapshots end a wait: a provider never takes a finished run back, so one is
always safe to trust, while a "still running" event may be older than the last poll.

Across processes this notifier sees nothing; the run journal is the shared record there.
A listener (``report-gateway listen``, any ``WebhookApp`` whose gateway has a journal)
writes each run it learns to the journal, and a wait given the journal (``watch(...,
journal=)``) reads it every ``JOURNAL_CHECK_SECONDS`` while it sleeps: a run written down
as ended wakes it, and the next ``fetch`` polls once (the journal holds a status, not the
run's result, so that one request is still needed). A journal entry that already said
"ended" when it woke the wait does not wake it again: should the poll disagree (the
provider is the truth), the wait goes back to its schedule rather than polling in a loop.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from .models import ReportRun

if TYPE_CHECKING:
    from .journal import Journal

__all__ = ["JOURNAL_CHECK_SECONDS", "RunEvents", "RunKey"]

#: How often a sleeping wait reads the run journal: one indexed SQLite read, so a listener
#: in another process ends the wait within about this long, whatever the poll schedule.
JOURNAL_CHECK_SECONDS = 1.0

#: (provider, run id): runs of different providers may share an id.
RunKey = tuple[str, str]


@attrs.define
class _Slot:
    ready: threading.Event = attrs.field(factory=threading.Event)
    run: ReportRun | None = None
    waiters: int = 0


class RunEvents:
    """In-process publish/wait for run snapshots, keyed by (provider, run id); thread-safe."""

    def __init__(self, keep: int = 1024) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self._keep = keep
        self._lock = threading.Lock()
        self._slots: OrderedDict[RunKey, _Slot] = OrderedDict()
        #: Called with each terminal snapshot published: waits that hold no thread of their
        #: own (the fan-out's shared waiter) hear of it this way.
        self._listeners: list[Callable[[ReportRun], None]] = []

    def __repr__(self) -> str:
        with self._lock:
            held = sum(1 for slot in self._slots.values() if slot.run is not None)
            waiting = sum(slot.waiters for slot in self._slots.values())
        return f"<RunEvents published={held} waiting={waiting}>"

    def publish(self, run: ReportRun) -> bool:
        """Hand over a fresh snapshot; wake every wait on that run if it is terminal.

        Returns whether it ended or will end a wait (False for a non-terminal snapshot,
        which is dropped: see the module docstring).
        """
        if not run.status.is_terminal:
            return False
        with self._lock:
            key = (run.provider, run.id)
            slot = self._slots.pop(key, None) or _Slot()
            self._slots[key] = slot  # newest last
            slot.run = run
            slot.ready.set()
            self._trim()
            listeners = list(self._listeners)
        for listener in listeners:
            listener(run)
        return True

    def listen(self, listener: Callable[[ReportRun], None]) -> Callable[[], None]:
        """Call ``listener(run)`` with every terminal snapshot published from now on (in
        the publishing thread: it must be quick); returns what stops it."""
        with self._lock:
            self._listeners.append(listener)

        def stop() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return stop

    def latest(self, provider: str, run_id: str) -> ReportRun | None:
        """The terminal snapshot published for a run, if any is still kept."""
        with self._lock:
            slot = self._slots.get((provider, run_id))
            return None if slot is None else slot.run

    def wait(self, provider: str, run_id: str, timeout: float | None) -> ReportRun | None:
        """Block up to ``timeout`` seconds (None: forever) for a terminal snapshot of the run.

        Returns it (at once when one was already published), or None when the time is up.
        """
        key = (provider, run_id)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
            slot.waiters += 1
        try:
            slot.ready.wait(None if timeout is None else max(0.0, timeout))
            return slot.run
        finally:
            with self._lock:
                slot.waiters -= 1
                if slot.run is None and slot.waiters == 0 and self._slots.get(key) is slot:
                    del self._slots[key]

    def watch(
        self,
        run: ReportRun,
        poll: Callable[[], ReportRun],
        sleep: Callable[[float], None] | None = None,
        *,
        journal: Journal | None = None,
        check_every: float = JOURNAL_CHECK_SECONDS,
    ) -> tuple[Callable[[], ReportRun], Callable[[float], None]]:
        """The ``fetch`` and ``sleep`` a polling loop over ``run`` uses (``Gateway.wait``).

        ``fetch`` returns the terminal snapshot published for the run when there is one (in
        the waiting run's scope: the one its downloads must use), else ``poll()``. ``sleep``
        waits on this notifier, so a publish ends it early; with a ``journal`` it also reads
        it every ``check_every`` seconds and ends early when the run was written down as
        ended there (by another process: see the module docstring). A ``sleep`` given here
        (a test's) is called instead, and ``fetch`` still prefers a published snapshot.
        """
        if check_every <= 0:
            raise ValueError("check_every must be positive")
        provider, run_id = run.provider, run.id
        woken_by: list[float] = []  # the journal entry's time that last woke this wait

        def ended_in_journal() -> bool:
            assert journal is not None
            stamp = journal.ended_at(provider, run_id)
            if stamp is None or stamp in woken_by:
                return False
            woken_by[:] = [stamp]
            return True

        def fetch() -> ReportRun:
            pushed = self.latest(provider, run_id)
            if pushed is None:
                return poll()
            return pushed if run.scope.is_empty else attrs.evolve(pushed, scope=run.scope)

        def pause(delay: float) -> None:
            if sleep is not None:
                sleep(delay)
                return
            if journal is None:
                self.wait(provider, run_id, delay)
                return
            end = time.monotonic() + delay
            while not ended_in_journal():
                left = end - time.monotonic()
                if left <= 0 or self.wait(provider, run_id, min(left, check_every)) is not None:
                    return

        return fetch, pause

    def _trim(self) -> None:
        """Forget the oldest published snapshots nobody waits on beyond ``keep``."""
        excess = sum(1 for slot in self._slots.values() if slot.run is not None) - self._keep
        if excess <= 0:
            return
        for key in list(self._slots):
            slot = self._slots[key]
            if slot.run is not None and slot.waiters == 0:
                del self._slots[key]
                excess -= 1
                if excess == 0:
                    return
