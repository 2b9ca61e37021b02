"""Retries, as urllib3 runs them: RetryPolicy hands each request a `BackoffRetry` and
urllib3's own loop does the rest (count, drain, sleep, resend).

What the subclass adds to `urllib3.util.Retry`: full-jitter capped exponential backoff,
a server's retry verdict header when the API documents one (its "true" forces a retry,
"false" forbids one), Retry-After as seconds or HTTP-date, a time budget besides the
attempt budget, POST retried only with an idempotency key, no retry of a failed TLS
verification, and the request's own deadline (``Request.deadline``): no sleep past it, no
attempt after it (``DeadlineReached``, which the transport reports as
``DeadlineExceededError``), so a Retry-After longer than the time left ends the call at once.
When no retry is left the last response is returned (not MaxRetryError), so the caller can
turn it into an ApiError.
"""

from __future__ import annotations

import copy
import email.utils
import logging
import random
import re
import time
from collections.abc import Callable
from datetime import UTC
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs
from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError, SSLError
from urllib3.util.retry import Retry

from reporting_runtime.backoff import Backoff
from reporting_runtime.deadlines import DeadlineReached
from reporting_runtime.messages import Request
from reporting_runtime.pipeline import Policy
from reporting_runtime.redaction import redact_url

if TYPE_CHECKING:
    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

__all__ = ["BackoffRetry", "RetryConfig", "RetryPolicy", "parse_retry_after"]

_log = logging.getLogger("reporting_runtime.retry")
_SECONDS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*")


def parse_retry_after(value: str, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta seconds or HTTP-date); None if
    unreadable. `now` is the wall clock (unix seconds) the date is measured from."""
    match = _SECONDS.fullmatch(value)
    if match:
        return float(match.group(1))
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@attrs.frozen
class RetryConfig:
    """`total`: retries after the first attempt (urllib3's meaning); `budget_seconds`: no
    retry starts (or sleeps) past this many seconds after the first attempt began."""

    total: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    budget_seconds: float = 120.0
    retry_statuses: tuple[int, ...] = (408, 409, 429, 500, 502, 503, 504)
    respect_retry_after: bool = True


class BackoffRetry(Retry):
    """urllib3 Retry with the providers' rules (see the module docstring)."""

    def __init__(
        self,
        *args: Any,
        deadline: float | None = None,
        hard_deadline: float | None = None,
        next_sleep: float = 0.0,
        sleeper: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        verdict_header: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.verdict_header = verdict_header
        self.deadline = deadline
        self.hard_deadline = hard_deadline
        self.next_sleep = next_sleep
        self.sleeper = sleeper
        self.clock = clock
        self.wall_clock = wall_clock
        self.rng = rng

    def new(self, **kw: Any) -> BackoffRetry:
        kw.setdefault("deadline", self.deadline)
        kw.setdefault("hard_deadline", self.hard_deadline)
        kw.setdefault("next_sleep", 0.0)
        kw.setdefault("sleeper", self.sleeper)
        kw.setdefault("clock", self.clock)
        kw.setdefault("wall_clock", self.wall_clock)
        kw.setdefault("rng", self.rng)
        kw.setdefault("verdict_header", self.verdict_header)
        return super().new(**kw)

    # urllib3 asks is_retry without the headers; the verdict that needs them
    # (the verdict header) is taken in increment, which sees the response.
    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if not self._is_method_retryable(method):
            return False
        return status_code >= 400 or super().is_retry(method, status_code, has_retry_after)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> BackoffRetry:
        hard = self.hard_deadline
        if hard is not None and self.clock() >= hard:
            _abandon(response)
            raise DeadlineReached("the deadline passed during the attempt")
        if isinstance(error, SSLError):
            # A certificate that fails verification will fail again; say so at once.
            raise MaxRetryError(_pool, url or "", error)  # type: ignore[arg-type]
        if response is not None and not self._worth_retrying(response):
            raise MaxRetryError(_pool, url or "", ResponseError("not retryable"))  # type: ignore[arg-type]
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        assert isinstance(new, BackoffRetry)
        delay = new._delay(response)
        if hard is not None and new.clock() + delay >= hard:
            # The caller's deadline, unlike the retry budget, is an error of its own: the
            # server's last answer (a 503 asking for more time than is left) is not the result.
            _abandon(response)
            waited = (
                "Retry-After"
                if response is not None and response.headers.get("Retry-After")
                else "backoff"
            )
            raise DeadlineReached(f"a retry would wait {delay:.1f} s ({waited}), past the deadline")
        if new.deadline is not None and new.clock() + delay > new.deadline:
            reason = error or ResponseError("retry time budget exhausted")
            raise MaxRetryError(_pool, url or "", reason)  # type: ignore[arg-type]
        new.next_sleep = delay
        _log.debug(
            "retry %d for %s %s after %s: sleeping %.2f s",
            len(new.history),
            method,
            redact_url(url or ""),
            f"HTTP {response.status}" if response is not None else type(error).__name__,
            delay,
        )
        return new

    def _worth_retrying(self, response: BaseHTTPResponse) -> bool:
        header = self.verdict_header
        verdict = (response.headers.get(header) or "").strip().lower() if header else ""
        if verdict == "true":
            return True
        if verdict == "false":
            return False
        if response.status in self.status_forcelist:
            return True
        return bool(
            self.respect_retry_after_header
            and response.status in self.RETRY_AFTER_STATUS_CODES
            and response.headers.get("Retry-After")
        )

    def _delay(self, response: BaseHTTPResponse | None) -> float:
        if response is not None and self.respect_retry_after_header:
            value = response.headers.get("Retry-After")
            if value:
                try:
                    return self.parse_retry_after(value)
                except InvalidHeader:
                    pass
        # Full jitter (uniform in [0, capped exponential]): spreads a burst of clients.
        base, cap = float(self.backoff_factor), float(self.backoff_max)
        if base <= 0 or cap <= 0:
            return 0.0
        schedule = Backoff(first=min(base, cap), factor=2.0, maximum=cap, full_jitter=True)
        return schedule.delay(max(1, len(self.history)), self.rng)

    def parse_retry_after(self, retry_after: str) -> float:
        seconds = parse_retry_after(retry_after, now=self.wall_clock())
        if seconds is None:
            raise InvalidHeader(f"Invalid Retry-After header: {retry_after[:40]}")
        return min(seconds, float(self.retry_after_max))

    def get_backoff_time(self) -> float:
        return self.next_sleep

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        if self.next_sleep > 0:
            self.sleeper(self.next_sleep)


def _abandon(response: BaseHTTPResponse | None) -> None:
    """Drop the connection of an answer left unread (draining it could take for ever)."""
    if response is None:
        return
    try:
        response.close()
        response.release_conn()
    except Exception:  # noqa: S110 - releasing must never mask the deadline
        pass


_SAFE_METHODS: frozenset[str] = frozenset(Retry.DEFAULT_ALLOWED_METHODS)
_new_object = object.__new__
#: A request carrying the API's idempotency key may be retried whatever its method.
_IDEMPOTENT_METHODS: frozenset[str] = _SAFE_METHODS | {"POST", "PATCH"}


class RetryPolicy(Policy):
    """Attaches a fresh BackoffRetry to each request (the transport hands it to urllib3).

    Put it below IdempotencyKeyPolicy: a POST is retried only if it carries a key, and
    all its retries carry the same one. `verdict_header` is the API's header saying whether
    a retry is safe, if it has one. `sleep`, `clock`, `wall_clock` and `rng` are injectable
    so tests run without waiting.
    """

    def __init__(
        self,
        config: RetryConfig | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        verdict_header: str | None = None,
    ) -> None:
        self.config = config or RetryConfig()
        self._status_set: tuple[RetryConfig, frozenset[int]] | None = None
        # (config, verdict header, template for a request, for an idempotent one): what every
        # request's BackoffRetry is cloned from (``build_retry``); never handed out itself.
        self._templates: tuple[RetryConfig, str | None, BackoffRetry, BackoffRetry] | None = None
        self.verdict_header = verdict_header
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng

    def with_verdict_header(self, header: str) -> RetryPolicy:
        """This policy reading ``header`` as the server's verdict (a caller's own RetryPolicy
        keeps its clocks; one that already names a header keeps it)."""
        if self.verdict_header is not None:
            return self
        policy = copy.copy(self)
        policy.verdict_header = header
        policy._templates = None
        return policy

    def build_retry(self, request: Request) -> BackoffRetry:
        """A fresh BackoffRetry for ``request``: its time budget starting now, the request's
        deadline as its hard one.

        All else is the same for every request of one config, so it is cloned from a
        template (a copy of its attributes, not urllib3's ``__init__`` with its two dozen
        assignments on every request). The clone is the request's own object; the template,
        whose attributes are all immutable values, is never handed out, so threads sharing
        this policy share nothing mutable."""
        templates = self._templates
        config = self.config
        if templates is None or templates[0] is not config or templates[1] != self.verdict_header:
            # One tuple, swapped in whole: a thread reading the old one still gets a pair that
            # belongs together.
            templates = self._templates = (
                config,
                self.verdict_header,
                self._new_retry(False, None, None),
                self._new_retry(True, None, None),
            )
        retry: BackoffRetry = _new_object(BackoffRetry)
        state = retry.__dict__
        state.update(templates[3 if request.idempotent else 2].__dict__)
        state["deadline"] = self._clock() + config.budget_seconds
        state["hard_deadline"] = request.deadline
        return retry

    def _new_retry(
        self, idempotent: bool, deadline: float | None, hard_deadline: float | None
    ) -> BackoffRetry:
        config = self.config
        return BackoffRetry(
            total=config.total,
            redirect=False,
            allowed_methods=_IDEMPOTENT_METHODS if idempotent else _SAFE_METHODS,
            status_forcelist=self._statuses(config),
            backoff_factor=config.backoff_base,
            backoff_max=config.backoff_max,
            raise_on_status=False,
            respect_retry_after_header=config.respect_retry_after,
            deadline=deadline,
            hard_deadline=hard_deadline,
            sleeper=self._sleep,
            clock=self._clock,
            wall_clock=self._wall_clock,
            rng=self._rng,
            verdict_header=self.verdict_header,
        )

    def _statuses(self, config: RetryConfig) -> frozenset[int]:
        """``config.retry_statuses`` as a frozenset, made once per config (every request
        builds a Retry with it)."""
        cached = self._status_set
        if cached is None or cached[0] is not config:
            cached = self._status_set = (config, frozenset(config.retry_statuses))
        return cached[1]

    def on_request(self, request: Request) -> Request:
        return request.evolve(retries=self.build_retry(request))
