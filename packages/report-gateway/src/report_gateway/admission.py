"""Admission of new runs: the one mechanism that makes a start wait for a free run slot.

A start can be held back by two limits on the runs of one provider and key:

- the user's cap, ``Gateway(max_active_runs=)``, known up front: this process keeps at most
  that many runs active, so other users of the key keep room and no create is spent on a
  refusal (several nightly jobs often share one key);
- the provider's own limit, learnt only when it refuses a create (Stripe v2 answers 429
  ``report_run_rate_limit_exceeded`` and says nothing about when a slot frees). A driver
  declares how to recognise that refusal with a ``ProviderLimit`` (its ``provider_limit``);
  it keeps no queue of its own.

Both feed one ``Admission`` per provider and key, shared by every Gateway and thread in the
process (the limit is the key's, whoever sends; the key is named by a hash, never by the
credentials). If every refused start backed off on its own timer, the starts that happened
to be awake when a slot freed would take it (typically threads whose run just ended) while
the ones sleeping through a long backoff sat out whole rounds. So starts are served first
come, first served:

- a start that arrives while others wait goes to the back of the line (no cutting in); an
  empty line costs a start nothing (no lock held across the request);
- only the head of the line tries again: re-reading the runs holding the cap's slots on the
  ``recheck`` schedule, resending its create on the provider's ``retry`` schedule (or after
  the Retry-After it was given), or at once when a run is seen ending (``seen``);
- when the head is admitted the next one tries at once, so the line drains as fast as slots
  free;
- each start waits at most ``slot_timeout`` for the cap (then ``RunLimitError``) and the
  provider's ``ProviderLimit.wait`` for its limit (then the refusal itself is raised);
- the caller's ``progress`` hears the start's place in line when it joins and then at most
  every ``report_every`` seconds, outside the lock (it may be slow: a user's display).

A cap slot is taken before the create and held until the run is seen ending (``get``,
``wait``, ``cancel``); a failed create gives it back.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .errors import RunLimitError, RunNotFoundError
from .models import ReportRun, Scope

if TYPE_CHECKING:
    from reporting_runtime.backoff import Backoff

    from .provider import DriverCalls, ProviderDriver, ProviderSpec, StartReporter

__all__ = [
    "Admission",
    "Admissions",
    "EventCallback",
    "ProviderLimit",
    "admission_for",
    "credential_id",
]

#: ``on_event(event, ahead)``: ``"queued"`` (ahead: starts in line before this one) or
#: ``"admitted"`` (ahead: 0, only for a start that queued), in line order, under the lock.
EventCallback = Callable[[str, int], None]


def _constant_quarter_second() -> Backoff:
    # Imported on use: a plugin module imports this one, and must not load the runtime.
    from reporting_runtime.backoff import Backoff

    return Backoff.constant(0.25)


@attrs.frozen(kw_only=True)
class ProviderLimit:
    """How a driver's provider refuses a create over its limit of concurrent runs.

    - ``refused(error)``: the verdict on an exception ``start`` raised: None when it is any
      other error (raised at once), else the seconds the provider asked to wait (0: unsaid).
    - ``wait``: how long a start waits in line for that limit (a setting such as Stripe
      v2's ``rate_limit_wait``); past it the last refusal is raised.
    - ``retry``: the pace at which the head of the line resends its create.
    - ``reason``: what a waiting start's progress says it waits for.

    The driver's ``start`` must reuse its idempotency key on every try: admission calls it
    again with the same arguments.
    """

    refused: Callable[[Exception], float | None] = attrs.field(repr=False)
    wait: float
    retry: Backoff = attrs.field(factory=_constant_quarter_second)
    reason: str = "the key is at the provider's limit of concurrent report runs"


def credential_id(values: Mapping[str, str]) -> str:
    """A stable name for a set of credentials that reveals nothing about them."""
    digest = hashlib.sha256()
    for key in sorted(values):
        digest.update(key.encode() + b"\0" + str(values[key]).encode() + b"\0")
    return digest.hexdigest()[:16]


class _Ticket:
    """One start's place in line; its condition shares the admission's lock."""

    __slots__ = ("poked", "turn")

    def __init__(self, lock: threading.Lock) -> None:
        self.turn = threading.Condition(lock)
        self.poked = False


class _Reports:
    """Throttles a start's progress reports: the head may try several times a second."""

    __slots__ = ("clock", "due", "every", "joined", "report")

    def __init__(
        self, report: Callable[[int, float], None] | None, clock: Callable[[], float], every: float
    ) -> None:
        self.report = report
        self.clock = clock
        self.every = every
        self.joined = self.due = clock()

    def timeout(self, limit: float) -> float:
        """How long to block before a report is due (``limit`` when none will be)."""
        if self.report is None:
            return limit
        return max(0.0, min(limit, self.due - self.clock()))

    def __call__(self, ahead: int) -> None:
        """Report if one is due; never under the admission's lock."""
        now = self.clock()
        if self.report is None or now < self.due:
            return
        self.due = now + self.every
        self.report(ahead, now - self.joined)


@attrs.frozen
class _Blocked:
    """Why one try did not create a run: the cap was full, or the provider refused."""

    refusal: Exception | None = None
    asked: float = 0.0


@attrs.define
class _Start:
    """What one ``admit`` call knows: its limits, deadlines and schedules."""

    create: Callable[[], ReportRun]
    cap: int | None
    limit: ProviderLimit | None
    get: Callable[[str, Scope], ReportRun] | None
    clock: Callable[[], float]
    joined: float
    cap_deadline: float
    limit_deadline: float
    rechecks: Iterator[float]
    retries: Iterator[float]
    last: Exception | None = None

    def deadline(self) -> float:
        """When waiting for a turn must end: the bound of what the start waits for."""
        if self.last is not None:
            return self.limit_deadline
        bounds = [self.limit_deadline] if self.limit is not None else []
        if self.cap is not None:
            bounds.append(self.cap_deadline)
        return max(bounds, default=self.clock())

    def next_pause(self, blocked: _Blocked) -> float | None:
        """The head's pause before its next try (never past its deadline): raises the
        refusal when out of time for the provider's limit, None when out of time for the cap.
        """
        now = self.clock()
        if blocked.refusal is not None:
            self.last = blocked.refusal
            if now >= self.limit_deadline:
                raise blocked.refusal
            pause = blocked.asked or next(self.retries)
            return min(pause, self.limit_deadline - now)
        if now >= self.cap_deadline:
            return None
        return min(next(self.rechecks), self.cap_deadline - now)


class Admission:
    """The line of starts, and the cap's slots, of one provider and key. Thread-safe."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._lock = threading.Lock()
        self._line: deque[_Ticket] = deque()
        self._active: dict[str, ReportRun] = {}
        self._reserved = 0
        self._reason = ""

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"Admission({self.provider!r}, active={sorted(self._active)}, "
                f"reserved={self._reserved}, waiting={len(self._line)})"
            )

    @property
    def waiting(self) -> int:
        """Starts in line now (the head included)."""
        with self._lock:
            return len(self._line)

    def holders(self) -> list[ReportRun]:
        """The runs holding the cap's slots, as last seen."""
        with self._lock:
            return list(self._active.values())

    def seen(self, run: ReportRun) -> None:
        """A run was seen: once it has ended its slot is free, and the head may try now."""
        if not run.status.is_terminal:
            return
        with self._lock:
            self._active.pop(run.id, None)
            self._wake_head()

    def wake(self) -> None:
        """Let the head of the line try now rather than at its next scheduled try."""
        with self._lock:
            self._wake_head()

    def _wake_head(self) -> None:
        if self._line:
            head = self._line[0]
            head.poked = True
            head.turn.notify()

    # -- admitting -------------------------------------------------------------------------

    def admit(
        self,
        create: Callable[[], ReportRun],
        *,
        cap: int | None = None,
        cap_wait: float = 0.0,
        recheck: Backoff | None = None,
        limit: ProviderLimit | None = None,
        get: Callable[[str, Scope], ReportRun] | None = None,
        progress: StartReporter | None = None,
        on_event: EventCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        report_every: float = 1.0,
    ) -> ReportRun:
        """``create()`` once admitted; its run, or its exception.

        ``cap``: the most runs this key may hold active (None: no cap), waited for up to
        ``cap_wait`` seconds, re-reading the holders with ``get`` on the ``recheck``
        schedule. ``limit``: how the provider refuses a create over its own limit.
        """
        if cap is None and limit is None:
            return create()
        from reporting_runtime.backoff import Backoff

        now = clock()
        start = _Start(
            create=create,
            cap=cap,
            limit=limit,
            get=get,
            clock=clock,
            joined=now,
            cap_deadline=now + max(0.0, cap_wait),
            limit_deadline=now + (max(0.0, limit.wait) if limit is not None else 0.0),
            rechecks=(recheck or Backoff()).intervals(),
            retries=(limit.retry if limit is not None else Backoff()).intervals(),
        )
        ticket = _Ticket(self._lock)
        with self._lock:
            direct = not self._line
            if not direct:
                ahead = self._join(ticket, on_event)
        pause = 0.0
        if direct:
            outcome = self._try(start)
            if isinstance(outcome, ReportRun):
                return outcome
            pause = self._checked(start, outcome)
            with self._lock:
                ahead = self._join(ticket, on_event)

        def report(ahead: int, waited: float) -> None:
            if progress is not None:
                progress(waited_seconds=waited, position=ahead + 1, reason=self._reason)

        reports = _Reports(report if progress is not None else None, clock, report_every)
        try:
            reports(ahead)
            run = self._wait_in_line(ticket, start, pause, reports)
        except BaseException:
            self._leave(ticket, None)
            raise
        self._leave(ticket, on_event)
        return run

    def _checked(self, start: _Start, blocked: _Blocked) -> float:
        """The pause after a blocked try; the start's error when it is out of time."""
        self._reason = (
            start.limit.reason
            if blocked.refusal is not None and start.limit is not None
            else f"max_active_runs={start.cap} reached"
        )
        pause = start.next_pause(blocked)
        if pause is None:
            raise self._limit_error(start)
        return pause

    def _limit_error(self, start: _Start) -> RunLimitError:
        holders = [run.id for run in self.holders()]
        return RunLimitError(self.provider, start.cap or 0, holders, start.clock() - start.joined)

    def _try(self, start: _Start) -> ReportRun | _Blocked:
        """One try: take a cap slot (re-reading its holders when none is free), then create."""
        if start.cap is not None and not self._reserve(start.cap):
            self._recheck(start.get)
            if not self._reserve(start.cap):
                return _Blocked()
        try:
            run = start.create()
        except Exception as exc:
            self._unreserve(start.cap)
            asked = start.limit.refused(exc) if start.limit is not None else None
            if asked is None:
                raise
            return _Blocked(refusal=exc, asked=asked)
        except BaseException:
            self._unreserve(start.cap)
            raise
        self._confirm(run, start.cap)
        return run

    def _reserve(self, cap: int) -> bool:
        with self._lock:
            if len(self._active) + self._reserved >= cap:
                return False
            self._reserved += 1
            return True

    def _unreserve(self, cap: int | None) -> None:
        if cap is not None:
            with self._lock:
                self._reserved = max(0, self._reserved - 1)

    def _confirm(self, run: ReportRun, cap: int | None) -> None:
        if cap is not None:
            with self._lock:
                self._reserved = max(0, self._reserved - 1)
                if not run.status.is_terminal:
                    self._active[run.id] = run

    def _recheck(self, get: Callable[[str, Scope], ReportRun] | None) -> None:
        """Re-read the runs holding slots; free those that ended or are gone."""
        if get is None:
            return
        for held in self.holders():
            try:
                fresh = get(held.id, held.scope)
            except RunNotFoundError:
                fresh = None  # gone (deleted, expired): it holds nothing
            if fresh is None or fresh.status.is_terminal:
                with self._lock:
                    self._active.pop(held.id, None)

    def _join(self, ticket: _Ticket, on_event: EventCallback | None) -> int:
        """Go to the back of the line (lock held); the number of starts ahead."""
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
        self, ticket: _Ticket, start: _Start, pause: float, reports: _Reports
    ) -> ReportRun:
        # Blocked just now and first in line: nothing has freed a slot yet, so pause first.
        # Given the turn by the previous head's admission: a slot may be free, try at once.
        clock = start.clock
        with self._lock:
            while self._line[0] is not ticket:
                pause = 0.0
                left = start.deadline() - clock()
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
                    reports(ahead)
                finally:
                    self._lock.acquire()
            at_head = self._line[0] is ticket
        if not at_head:
            # Out of time before its turn: the start's last refusal, or one try of its own.
            if start.last is not None:
                raise start.last
            outcome = self._try(start)
            if isinstance(outcome, ReportRun):
                return outcome
            if outcome.refusal is not None:
                raise outcome.refusal
            raise self._limit_error(start)
        while True:
            self._pause(ticket, clock() + pause, clock, reports)
            outcome = self._try(start)
            if isinstance(outcome, ReportRun):
                return outcome
            pause = self._checked(start, outcome)

    def _pause(
        self, ticket: _Ticket, until: float, clock: Callable[[], float], reports: _Reports
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
            reports(0)
            if done:
                return


_ADMISSIONS: dict[tuple[str, str], Admission] = {}
_ADMISSIONS_LOCK = threading.Lock()


def admission_for(provider: str, key_id: str) -> Admission:
    """The process-wide admission of ``provider`` used with the credentials ``key_id`` names.

    The one registry keyed by credentials: every per-key limit goes through it.
    """
    with _ADMISSIONS_LOCK:
        admission = _ADMISSIONS.get((provider, key_id))
        if admission is None:
            admission = _ADMISSIONS[(provider, key_id)] = Admission(provider)
        return admission


class Admissions:
    """``Gateway(max_active_runs=, slot_timeout=)`` applied to each start: which providers
    are capped, and the route from ``Gateway.start`` to the provider's ``Admission``."""

    def __init__(
        self, max_active_runs: int | Mapping[str, int] | None, slot_timeout: float
    ) -> None:
        self.max_active_runs = max_active_runs
        self.slot_timeout = slot_timeout

    def cap(self, provider: str) -> int | None:
        cap = self.max_active_runs
        if cap is None or isinstance(cap, int):
            return cap
        return cap.get(provider)

    def seen(self, run: ReportRun, key_id: str) -> ReportRun:
        """Free the run's slot, and wake the line, once it is seen finished."""
        if run.status.is_terminal:
            admission_for(run.provider, key_id).seen(run)
        return run

    def start(
        self,
        spec: ProviderSpec,
        key_id: str,
        driver: ProviderDriver,
        calls: DriverCalls,
        report_id: str,
        params: Mapping[str, Any],
        scope: Scope,
        *,
        key: str,
        sending: Callable[[], None],
        progress: StartReporter,
    ) -> ReportRun:
        """Validate, then send the driver's create once admitted: the same key on every
        attempt, ``sending()`` right before it (the journal's mark that a run may exist)."""
        valid = driver.validate(report_id, dict(params), scope=scope)
        # A driver whose start predates ``progress=`` is called without it.
        extra = calls.keywords("start", progress=progress)

        def send() -> ReportRun:
            sending()
            return driver.start(report_id, valid, scope=scope, idempotency_key=key, **extra)

        return self.admit(
            spec,
            key_id,
            get=lambda run_id, held_scope: driver.get(run_id, scope=held_scope),
            create=send,
            limit=getattr(driver, "provider_limit", None),
            progress=progress,
            report_id=report_id,
            scope=scope,
        )

    def admit(
        self,
        spec: ProviderSpec,
        key_id: str,
        *,
        create: Callable[[], ReportRun],
        get: Callable[[str, Scope], ReportRun],
        limit: ProviderLimit | None,
        progress: StartReporter,
        report_id: str,
        scope: Scope,
    ) -> ReportRun:
        """``create()`` once the provider's admission lets it (at once when no limit applies)."""
        cap = self.cap(spec.name)
        if cap is None and limit is None:
            return create()  # nothing to wait for: no logger, schedule or line to set up
        logger = logging.getLogger(f"report_gateway.{spec.name}")
        bound = limit.wait if limit is not None else 0.0
        if cap is not None:
            bound = max(bound, self.slot_timeout)

        def on_event(event: str, ahead: int) -> None:
            extra = {"admission": event, "scope": scope}
            if event == "queued":
                logger.info(
                    "%s: %s: no free run slot for this key (max_active_runs or the provider's "
                    "limit); waiting in line for a slot (%d ahead, up to %.0fs)",
                    spec.name,
                    report_id,
                    ahead,
                    bound,
                    extra=extra,
                )
            else:
                logger.debug("%s: %s got a slot", spec.name, report_id, extra=extra)

        from reporting_runtime.backoff import Backoff

        first = spec.first_poll_interval
        return admission_for(spec.name, key_id).admit(
            create,
            cap=cap,
            cap_wait=self.slot_timeout,
            recheck=Backoff(first=first, maximum=max(first, spec.max_poll_interval), jitter=0),
            limit=limit,
            get=get,
            progress=progress,
            on_event=on_event,
        )
