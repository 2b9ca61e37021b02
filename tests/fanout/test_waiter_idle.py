"""The fan-out's waiter sleeps between polls whether or not the journal is on.

Without a journal its scheduler once kept a journal check time it never moved on: a second
after it started, every loop slept 0 s and the thread spun on a core for as long as runs
were waiting (a tenth of a fan-out's client CPU, slowing every start and download).
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any

import report_gateway.waiter as waiter_module
from report_gateway.waiter import Waiter


class _Events:
    def listen(self, _: Callable[..., None]) -> Callable[[], None]:
        return lambda: None


class _NoJournalGateway:
    journal = None
    events = _Events()


def test_without_a_journal_the_scheduler_sleeps_rather_than_spins(monkeypatch: Any) -> None:
    timeouts: list[float | None] = []
    waited = threading.Event()

    class Recording(threading.Condition):
        def wait(self, timeout: float | None = None) -> bool:
            timeouts.append(timeout)
            waited.set()
            return super().wait(timeout)

    fake = types.SimpleNamespace(**{**vars(threading), "Condition": Recording})
    monkeypatch.setattr(waiter_module, "threading", fake)
    # check_every=0: the journal check would be due at once, and forever after.
    waiter = Waiter(_NoJournalGateway(), pollers=1, check_every=0.0)  # type: ignore[arg-type]
    try:
        assert waited.wait(5.0), "the scheduler never slept"
    finally:
        waiter.close()
    assert timeouts
    assert all(t is None or t > 0 for t in timeouts), timeouts
