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
import threading
from collections.abc import Mapping

from .models import ReportRun

__all__ = ["RunSlots", "credential_id", "slots_for"]


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
