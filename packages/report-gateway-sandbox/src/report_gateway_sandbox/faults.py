"""Deciding which fault rules fire for a request, reproducibly.

The decision is made once per request, before the handler runs, under a lock and with an
RNG seeded from the configuration, so the same sequence of requests meets the same faults.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from collections import Counter
from collections.abc import Sequence

from report_gateway_sandbox.config import FaultRule


class FaultInjector:
    def __init__(self, rules: Sequence[FaultRule], seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed ^ 0x5EED_FA17)
        self._rules = list(rules)
        self._skips = [r.skip for r in self._rules]
        self._left: list[int | None] = [r.count for r in self._rules]
        self.injected: Counter[str] = Counter()

    @property
    def active(self) -> bool:
        return bool(self._rules)

    def decide(self, method: str, path: str) -> list[FaultRule]:
        """The rules that fire for this request (at most one of each kind)."""
        if not self._rules:
            return []
        fired: list[FaultRule] = []
        kinds: set[str] = set()
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.kind in kinds:
                    continue
                if rule.method is not None and rule.method != method:
                    continue
                if not fnmatch.fnmatchcase(path, rule.path):
                    continue
                if not _can_apply(rule.kind, method, path):
                    continue
                left = self._left[i]
                if left is not None and left <= 0:
                    continue
                if self._skips[i] > 0:
                    self._skips[i] -= 1
                    continue
                if rule.rate is not None and self._rng.random() >= rule.rate:
                    continue
                if left is not None:
                    self._left[i] = left - 1
                fired.append(rule)
                kinds.add(rule.kind)
                self.injected[rule.kind] += 1
        return fired


def _can_apply(kind: str, method: str, path: str) -> bool:
    """Rules that only mean something for some requests do not spend their count on others:
    a failed run needs a run creation (a POST), an expired URL needs a pre-signed download."""
    if kind == "fail_run":
        return method == "POST"
    if kind == "expired_url":
        return path.startswith("/_files/")
    return True
