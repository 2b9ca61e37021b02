"""Deadlines that hold whatever the server does: the whole exchange ends by ``deadline``.

urllib3's timeouts are per socket operation, so a server that sends one byte a second (of
its headers or of its body) or answers ``503`` with ``Retry-After: 100`` keeps a request
alive far past any timeout. A request that carries a ``deadline`` (``time.monotonic``
seconds) is bounded three ways:

- ``DeadlineTimeout``: every attempt's connect and read timeouts are the configured ones
  cut to the time left, computed afresh for each attempt (urllib3 clones the timeout per
  attempt);
- the ``Watchdog``: while an attempt waits for its answer, and while its body is read, one
  daemon thread stands ready to shut the connection's socket down at the deadline, which
  wakes a ``recv`` that a trickle of bytes would otherwise keep alive for ever;
- ``BackoffRetry`` (``retry.py``) never sleeps past the deadline nor starts an attempt after
  it, raising ``DeadlineReached``; the transport turns it into ``DeadlineExceededError``.

The deadline is passed explicitly with each request (``Request.deadline``), never through
ambient state.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError
from urllib3.util.timeout import _DEFAULT_TIMEOUT, Timeout

from reporting_runtime.headers import HeaderFastResponse

__all__ = [
    "MIN_ATTEMPT_TIMEOUT",
    "WATCHDOG",
    "Alarm",
    "DeadlineReached",
    "DeadlineTimeout",
    "Watchdog",
    "shutdown_connection",
]

#: The shortest connect/read timeout an attempt gets (urllib3 refuses zero): an attempt
#: begun just before the deadline still ends right after it.
MIN_ATTEMPT_TIMEOUT = 0.01


class DeadlineReached(HTTPError):
    """Raised inside urllib3's retry loop when the caller's deadline forbids another wait
    or attempt; ``Transport.send`` reports it as ``DeadlineExceededError``."""


class DeadlineTimeout(Timeout):
    """A ``Timeout`` whose connect and read values never reach past ``deadline``."""

    def __init__(
        self,
        *,
        connect: Any = _DEFAULT_TIMEOUT,
        read: Any = _DEFAULT_TIMEOUT,
        deadline: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(connect=connect, read=read)
        self.deadline = deadline
        self.clock = clock

    def _cut(self, configured: Any) -> float:
        left = max(MIN_ATTEMPT_TIMEOUT, self.deadline - self.clock())
        if configured is None or configured is _DEFAULT_TIMEOUT:
            return left
        return min(float(configured), left)

    @property
    def connect_timeout(self) -> float:
        return self._cut(self._connect)

    @property
    def read_timeout(self) -> float:
        return self._cut(self._read)

    def clone(self) -> DeadlineTimeout:
        return DeadlineTimeout(
            connect=self._connect, read=self._read, deadline=self.deadline, clock=self.clock
        )

    def __repr__(self) -> str:
        return f"DeadlineTimeout(connect={self._connect!r}, read={self._read!r})"


class Alarm:
    """One armed deadline; ``fired`` says whether its action ran. ``cancel`` disarms it:
    once it returns, the action has either run already or never will."""

    __slots__ = ("_watchdog", "action", "canceled", "deadline", "fired")

    def __init__(self, watchdog: Watchdog, deadline: float, action: Callable[[], None]) -> None:
        self._watchdog = watchdog
        self.deadline = deadline
        self.action = action
        self.fired = False
        self.canceled = False

    def cancel(self) -> None:
        self._watchdog._cancel(self)

    def __enter__(self) -> Alarm:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()


#: The longest the watchdog's thread sleeps at once (seconds); it then looks again.
_LONGEST_WAIT = 3600.0


class Watchdog:
    """Runs actions at their deadlines on one daemon thread, started on first use.

    Actions must be quick and must not raise (shutting a socket down is what they do here);
    an exception is swallowed so one bad action cannot stop the others.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._order = itertools.count()
        self._forget()
        _watchdogs.add(self)

    def _forget(self) -> None:
        """Start empty, with no thread. Also what a forked child does (``_after_fork``):
        the parent's thread is not there (an alarm armed in the child would never fire: a
        stalled download in a forked worker would hang), its condition's lock may have been
        held at the fork, and the alarms inherited are the parent's requests, whose sockets
        the child shares: firing them would shut the parent's connections down."""
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Alarm]] = []
        self._canceled = 0
        self._thread: threading.Thread | None = None

    def arm(
        self,
        deadline: float,
        action: Callable[[], None],
        clock: Callable[[], float] | None = None,
    ) -> Alarm:
        """Run ``action`` at ``deadline``, read on ``clock``'s scale (default: the
        watchdog's own, ``time.monotonic``)."""
        if clock is not None and clock is not self._clock:
            deadline = self._clock() + (deadline - clock())
        alarm = Alarm(self, deadline, action)
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._order), alarm))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="reporting-runtime-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is alarm:
                # Only an alarm due before every other one changes how long the thread
                # sleeps; waking it for each of the others (every request arms one, most
                # later than the last) cost a thread switch per request in a busy process.
                self._cond.notify()
        return alarm

    def _cancel(self, alarm: Alarm) -> None:
        with self._cond:
            if alarm.fired or alarm.canceled:
                return
            alarm.canceled = True
            self._canceled += 1
            # Cancelled alarms wait in the heap until they reach its top; compact now and
            # then so a long deadline re-armed for every request does not pile them up.
            if self._canceled > 64 and self._canceled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].canceled]
                heapq.heapify(self._heap)
                self._canceled = 0

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].canceled:
                    heapq.heappop(self._heap)
                    self._canceled = max(0, self._canceled - 1)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, alarm = self._heap[0]
                left = deadline - self._clock()
                if left > 0:
                    # Capped: a deadline centuries away (``timeout=math.inf``) would make
                    # the wait raise OverflowError and end this thread, every later
                    # deadline of the process with it.
                    self._cond.wait(min(left, _LONGEST_WAIT))
                    continue
                heapq.heappop(self._heap)
                alarm.fired = True
                with contextlib.suppress(Exception):  # see the class docstring
                    alarm.action()


#: Every Watchdog, for the fork hook below.
_watchdogs: weakref.WeakSet[Watchdog] = weakref.WeakSet()


def _after_fork() -> None:
    for watchdog in list(_watchdogs):
        watchdog._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

#: The process's one watchdog (one thread, whatever the number of clients).
WATCHDOG = Watchdog()


def shutdown_connection(connection: Any) -> None:
    """Wake any thread blocked reading ``connection`` (an urllib3 connection, or None):
    ``shutdown`` interrupts a ``recv`` where ``close`` would not."""
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _guarded(
    make_request: Callable[..., Any], conn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    timeout = kwargs.get("timeout")
    if not isinstance(timeout, DeadlineTimeout):
        return make_request(conn, *args, **kwargs)
    alarm = WATCHDOG.arm(timeout.deadline, lambda: shutdown_connection(conn), timeout.clock)
    try:
        response = make_request(conn, *args, **kwargs)
    except Exception as exc:
        alarm.cancel()
        if alarm.fired:
            raise DeadlineReached(_HEADERS_LATE) from exc
        raise
    alarm.cancel()
    if alarm.fired:
        # The socket was shut mid-headers: http.client takes that end of stream for the end
        # of the headers, so what arrived so far would pass for a whole response (a status
        # line and no Content-Type). It is not one: never hand it on.
        with contextlib.suppress(Exception):
            response.close()
        raise DeadlineReached(_HEADERS_LATE)
    return response


_HEADERS_LATE = "the answer's headers did not arrive before the deadline"


def _reading_headers_fast(conn: Any) -> Any:
    """``conn`` reading its answers with ``HeaderFastResponse`` (``headers.py``), when it is
    a plain ``http.client`` connection: a replacement installed by someone else (vcrpy's
    recording stubs, a test double) keeps its own response class."""
    if getattr(type(conn), "response_class", None) is http.client.HTTPResponse:
        conn.response_class = HeaderFastResponse
    return conn


class DeadlineHTTPConnectionPool(HTTPConnectionPool):
    """A pool whose attempts with a ``DeadlineTimeout`` are watched until their headers
    arrive (a header trickled a byte at a time defeats every per-read timeout), and whose
    connections read headers with ``HeaderFastResponse``."""

    def _new_conn(self) -> Any:
        return _reading_headers_fast(super()._new_conn())

    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(kwargs.get("timeout"), DeadlineTimeout):  # no deadline: as is
            return super()._make_request(conn, *args, **kwargs)
        return _guarded(super()._make_request, conn, args, kwargs)


class DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    """``DeadlineHTTPConnectionPool`` over TLS."""

    def _new_conn(self) -> Any:
        return _reading_headers_fast(super()._new_conn())

    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(kwargs.get("timeout"), DeadlineTimeout):
            return super()._make_request(conn, *args, **kwargs)
        return _guarded(super()._make_request, conn, args, kwargs)


POOL_CLASSES = {"http": DeadlineHTTPConnectionPool, "https": DeadlineHTTPSConnectionPool}
