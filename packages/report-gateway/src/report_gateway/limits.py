"""A cap on the runs a process keeps active per provider and credential.

Providers limit concurrent runs per key (Stripe v2 answers 429
``report_run_rate_limit_exceeded``), and several nightly jobs often share one key. A cap set
with ``Gateway(max_active_runs=...)`` keeps this process below the provider's limit, so
other users of the key keep room and no start is spent on a refusal.

Slots are shared by every Gateway in the process that uses the same provider with the same
credentials (identified by a hash, never by the credentials themselves). A slot is taken
before the create request and held until the gateway sees the run end (``get``, ``wait``,
``cancel``). When all slots are held, ``start`` re-reads the runs holding them, frees the
finished ones, and otherwise waits for one, up to a bound.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .errors import RunLimitError, RunNotFoundError
from .models import ReportRun, Scope

if TYPE_CHECKING:
    from .provider import ProviderSpec, StartReporter

__all__ = ["ActiveRunCap", "RunSlots", "SlotWaitReport", "credential_id", "slots_for"]

logger = logging.getLogger("report_gateway")


class RunSlots:
    """The active runs (and reservations for runs being created) of one provider and key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, ReportRun] = {}
        self._reserved = 0

    def try_reserve(self, limit: int) -> bool:
        """Take a slot for a run about to be created, if fewer than ``limit`` are in use."""
        with self._lock:
            if len(self._active) + self._reserved >= limit:
                return False
            self._reserved += 1
            return True

    def cancel_reservation(self) -> None:
        """The create failed: give the reserved slot back."""
        with self._lock:
            self._reserved = max(0, self._reserved - 1)

    def confirm(self, run: ReportRun) -> None:
        """The create succeeded: the reserved slot is now held by ``run`` until it ends."""
        with self._lock:
            self._reserved = max(0, self._reserved - 1)
            if not run.status.is_terminal:
                self._active[run.id] = run

    def release(self, run_id: str) -> None:
        with self._lock:
            self._active.pop(run_id, None)

    def holders(self) -> list[ReportRun]:
        """The runs holding slots, as last seen."""
        with self._lock:
            return list(self._active.values())

    def __repr__(self) -> str:
        with self._lock:
            return f"RunSlots(active={sorted(self._active)}, reserved={self._reserved})"


_POOLS: dict[tuple[str, str], RunSlots] = {}
_POOLS_LOCK = threading.Lock()


def credential_id(values: Mapping[str, str]) -> str:
    """A stable name for a set of credentials that reveals nothing about them."""
    digest = hashlib.sha256()
    for key in sorted(values):
        digest.update(key.encode() + b"\0" + str(values[key]).encode() + b"\0")
    return digest.hexdigest()[:16]


def slots_for(provider: str, key_id: str) -> RunSlots:
    """The process-wide slots of ``provider`` used with the credentials ``key_id`` names."""
    with _POOLS_LOCK:
        slots = _POOLS.get((provider, key_id))
        if slots is None:
            slots = _POOLS[(provider, key_id)] = RunSlots()
        return slots


#: ``report(waited_seconds, reason)``: a start is waiting for a slot.
SlotWaitReport = Callable[[float, str], None]


class ActiveRunCap:
    """``Gateway(max_active_runs=, slot_timeout=)``: which providers are capped, and how
    a start takes a slot (re-reading the runs that hold them while none is free)."""

    def __init__(
        self, max_active_runs: int | Mapping[str, int] | None, slot_timeout: float
    ) -> None:
        self.max_active_runs = max_active_runs
        self.slot_timeout = slot_timeout

    def limit(self, provider: str) -> int | None:
        cap = self.max_active_runs
        if cap is None or isinstance(cap, int):
            return cap
        return cap.get(provider)

    def slots(self, provider: str, key_id: str) -> RunSlots | None:
        """The process-wide slots for this provider and key, if a cap applies to it."""
        if self.limit(provider) is None:
            return None
        return slots_for(provider, key_id)

    def seen(self, run: ReportRun, key_id: str) -> ReportRun:
        """Free the run's slot once it is seen finished."""
        if run.status.is_terminal:
            slots = self.slots(run.provider, key_id)
            if slots is not None:
                slots.release(run.id)
        return run

    def admit(
        self,
        spec: ProviderSpec,
        key_id: str,
        *,
        get: Callable[[str, Scope], ReportRun],
        create: Callable[[], ReportRun],
        progress: StartReporter,
    ) -> ReportRun:
        """``create()`` a run in a free slot when a cap applies (waiting for one, reporting
        the wait to ``progress``), or at once when none does."""
        slots = self.slots(spec.name, key_id)
        if slots is None:
            return create()
        self.take(
            spec.name,
            slots,
            get,
            first_interval=spec.first_poll_interval,
            max_interval=spec.max_poll_interval,
            report=lambda waited, reason: progress(waited_seconds=waited, reason=reason),
        )
        try:
            created = create()
        except BaseException:
            slots.cancel_reservation()
            raise
        slots.confirm(created)
        return created

    def take(
        self,
        provider: str,
        slots: RunSlots,
        get: Callable[[str, Scope], ReportRun],
        *,
        first_interval: float,
        max_interval: float,
        report: SlotWaitReport | None = None,
    ) -> None:
        """Reserve a slot, re-reading the runs that hold them (``get``) while none is free."""
        limit = self.limit(provider)
        assert limit is not None
        started = time.monotonic()
        delay = first_interval
        while not slots.try_reserve(limit):
            for held in slots.holders():
                try:
                    fresh = get(held.id, held.scope)
                except RunNotFoundError:
                    slots.release(held.id)  # gone (deleted, expired): it holds nothing
                    continue
                if fresh.status.is_terminal:
                    slots.release(held.id)
            if slots.try_reserve(limit):
                return
            waited = time.monotonic() - started
            if waited >= self.slot_timeout:
                raise RunLimitError(provider, limit, [r.id for r in slots.holders()], waited)
            logger.info(
                "%s: %d run(s) active, the max_active_runs limit; waiting %.1fs for one to end",
                provider,
                limit,
                delay,
            )
            if report is not None:
                report(waited, f"max_active_runs={limit} reached")
            time.sleep(min(delay, max(0.0, self.slot_timeout - waited)))
            delay = min(delay * 1.5, max_interval)
