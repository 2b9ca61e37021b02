"""The one backoff schedule of the project: every wait that grows between tries uses it.

It lives in the runtime (the lowest package) so the runtime's retries, the core's polling
and run admission, and the plugins' own follow-ups (a lookup for a run an ambiguous create
may have made) share one definition instead of each writing ``delay *= 2``.

``first`` seconds, times ``factor`` per try, capped at ``maximum``. Jitter only shortens an
interval (so the cap holds and many waiting clients do not move in lockstep): ``jitter`` is
the largest fraction removed at random, or with ``full_jitter`` the whole interval is drawn
uniformly from [0, ceiling] (what spreads a burst of clients retrying one server best).
``factor=1`` is a constant interval. Randomness, clock and sleep are injectable, so tests
never really wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

import attrs

__all__ = ["Backoff"]


@attrs.frozen(kw_only=True)
class Backoff:
    """A capped geometric schedule: ``first``, ``first * factor``, ... up to ``maximum``.

    With the defaults (0.5 s, x1.5, 30 s cap, up to 10 % off) a run finishing after 2 s is
    seen within 4 polls, and an hour-long run costs about 130 polls.
    """

    first: float = 0.5
    factor: float = 1.5
    maximum: float = 30.0
    jitter: float = 0.1
    full_jitter: bool = False

    def __attrs_post_init__(self) -> None:
        if self.first <= 0 or self.maximum < self.first or self.factor < 1:
            raise ValueError("backoff needs 0 < first <= maximum and factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    @classmethod
    def constant(cls, interval: float) -> Backoff:
        """The same ``interval`` every time, no jitter."""
        return cls(first=interval, factor=1.0, maximum=interval, jitter=0.0)

    def ceiling(self, attempt: int) -> float:
        """The interval before try ``attempt`` (1: the first wait) before any jitter."""
        interval = self.first
        for _ in range(max(0, attempt - 1)):
            if interval >= self.maximum:
                break
            interval *= self.factor
        return min(interval, self.maximum)

    def jittered(self, interval: float, rand: Callable[[], float] = random.random) -> float:
        """``interval`` shortened at random as this schedule's jitter says."""
        if self.full_jitter:
            return interval * rand()
        return interval * (1.0 - self.jitter * rand())

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The wait before try ``attempt`` (1-based), jitter applied."""
        return self.jittered(self.ceiling(attempt), rand)

    def intervals(self, rand: Callable[[], float] = random.random) -> Iterator[float]:
        """The endless sequence of waits between tries."""
        interval = self.first
        while True:
            yield self.jittered(interval, rand)
            interval = min(interval * self.factor, self.maximum)

    def sleeps(
        self,
        deadline: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> Iterator[float]:
        """Sleep the schedule until ``deadline`` (on ``clock``'s scale), never past it.

        Yields the seconds left after each sleep, so a loop reads
        ``for _ in backoff.sleeps(deadline): try again``; it ends when no time is left (a
        loop that should try once more at the deadline does so after it).
        """
        for interval in self.intervals(rand):
            left = deadline - clock()
            if left <= 0:
                return
            sleep(min(interval, left))
            yield max(0.0, deadline - clock())
