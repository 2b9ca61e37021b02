"""Report definitions kept briefly for validation, so a start is one request, not two.

``validate`` checks parameters against the report's definition (names, enums, the
``data_available_*`` window). Fetching it on every start doubled the requests of a
start + get cycle and every run of a fan-out paid for it. Definitions change rarely (the
data window moves hours at a time), so a copy younger than ``ttl`` seconds is good enough:
a window that moved meanwhile is still checked by Stripe, whose refusal is mapped to the
same ParameterError. The copy is kept for 15 minutes (a nightly fan-out over hundreds of
contexts would otherwise fetch each context's definition again every minute: about a tenth
of its CPU). What a copy kept over a minute refuses is checked again against a fresh one
before it is refused (``checked``): a stale window never refuses what Stripe would accept.
``Gateway.template()`` itself always fetches, and what it fetched is kept here too: the
usual ``template()`` then ``start()`` asks Stripe once, not twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from report_gateway.errors import ParameterError
from report_gateway.provider import ReportTemplate

__all__ = ["TemplateCache"]

T = TypeVar("T")

#: Seconds a fetched definition is reused for validation.
TEMPLATE_TTL = 900.0
#: A copy this young (seconds) is as good as a fresh one: its refusal stands.
FRESH = 60.0
#: Entries kept at most (one per report and account/context); the oldest go first.
MAX_ENTRIES = 1024


class TemplateCache:
    """Thread-safe enough for a shared driver: a race at worst fetches a definition twice."""

    def __init__(
        self, ttl: float = TEMPLATE_TTL, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._items: dict[Hashable, tuple[float, ReportTemplate]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, fetch: Callable[[], ReportTemplate]) -> ReportTemplate:
        now = self.clock()
        hit = self._items.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        template = fetch()
        self.put(key, template, now=now)
        return template

    def checked(
        self,
        key: Hashable,
        fetch: Callable[[], ReportTemplate],
        check: Callable[[ReportTemplate], T],
    ) -> T:
        """``check`` against the kept definition; if it refuses (``ParameterError``), against
        a fresh one, whose answer stands: the refusal may come from a window that moved."""
        now = self.clock()
        hit = self._items.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            try:
                return check(hit[1])
            except ParameterError:
                if now - hit[0] < FRESH:
                    raise  # as fresh as a new copy: asking again would only cost a request
        template = fetch()
        self.put(key, template, now=self.clock())
        return check(template)

    def put(self, key: Hashable, template: ReportTemplate, *, now: float | None = None) -> None:
        """Keep a definition fetched elsewhere (``template()``, a listing) for validation."""
        fetched = self.clock() if now is None else now
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = (fetched, template)
            while len(self._items) > MAX_ENTRIES:
                del self._items[next(iter(self._items))]
