"""Signed Stripe webhook events for finished runs, sent from one background thread.

With `webhook_url` configured when a Stripe run is created, the sandbox POSTs an event to
that URL once the run is finished: v1 sends the whole event (`reporting.report_run.succeeded`
or `.failed`, the run in `data.object`), v2 a thin one (`v2.reporting.report_run.succeeded`
or `.failed`, naming the run in `related_object`). Each delivery is signed as Stripe signs
it: `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with
`webhook_secret`. A delivery that fails to connect or gets a 5xx is retried a few times,
re-signed each time as Stripe does; the statistics count what was sent and what failed.

Runs finish by the clock (nothing happens at that moment), so the sender keeps a queue of
due times and builds each event when it is due, from the run as a poll would show it then.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("report_gateway_sandbox")

#: Builds the event body when it is due (None: nothing to send after all).
EventBuilder = Callable[[], dict[str, Any] | None]

#: The API version v1 events are rendered with (the sandbox's default Stripe-Version).
API_VERSION = "2025-09-30.clover"
_ATTEMPTS = 3
#: The same pause before each retry: Stripe's own schedule grows over hours, which no test
#: waits for, and the sandbox depends on nothing of the gateway's ``Backoff``.
_RETRY_PAUSE = 0.5
_TIMEOUT = 10.0


def _event_id(prefix: str) -> str:
    # Not from the seeded RNG: events are built on another thread at times of their own,
    # and drawing there would change the ids of the runs created after them.
    return prefix + secrets.token_hex(12)


def v1_event(kind: str, payload: dict[str, Any], now: float) -> dict[str, Any]:
    """A v1 event (`object: event`) carrying `payload` as `data.object`."""
    return {
        "id": _event_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(now),
        "data": {"object": payload},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def v2_thin_event(
    kind: str, related_object: dict[str, Any], context: str | None, created: str
) -> dict[str, Any]:
    """A v2 thin event (`object: v2.core.event`): no snapshot, only the related object."""
    return {
        "id": _event_id("evt_test_"),
        "object": "v2.core.event",
        "context": context,
        "created": created,
        "livemode": False,
        "reason": None,
        "related_object": related_object,
        "type": kind,
    }


def signature_header(body: bytes, secret: str, timestamp: int) -> str:
    """Stripe's `Stripe-Signature` value for `body` signed at `timestamp`."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookSender:
    """The queue of events to send and the daemon thread sending them (started on first use).

    `stats()` gives `sent` (deliveries answered 2xx), `refused` (answered 4xx) and `failed`
    (no answer or 5xx after every attempt), by event type.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, str, str, EventBuilder]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._generation = 0  # a thread of an older generation has been told to end
        self.sent: dict[str, int] = {}
        self.refused: dict[str, int] = {}
        self.failed: dict[str, int] = {}

    def schedule(self, due: float, url: str, secret: str, build: EventBuilder) -> None:
        """Send what `build()` returns to `url`, signed with `secret`, at `due` (epoch s)."""
        with self._cond:
            heapq.heappush(self._queue, (due, next(self._order), url, secret, build))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop,
                    args=(self._generation,),
                    name="report-gateway-sandbox:webhooks",
                    daemon=True,
                )
                self._thread.start()
            self._cond.notify_all()

    def close(self) -> None:
        """Drop what is queued and end the thread (the sandbox was reset or stopped); a
        later `schedule` starts a new one."""
        with self._cond:
            self._generation += 1
            self._thread = None
            self._queue.clear()
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def stats(self) -> dict[str, dict[str, int]]:
        with self._cond:
            return {
                "sent": dict(self.sent),
                "refused": dict(self.refused),
                "failed": dict(self.failed),
            }

    def _loop(self, generation: int) -> None:
        while True:
            with self._cond:
                while generation == self._generation:
                    if self._queue:
                        wait = self._queue[0][0] - time.time()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if generation != self._generation:
                    return
                _, _, url, secret, build = heapq.heappop(self._queue)
            try:
                event = build()
                if event is not None:
                    self._deliver(url, secret, event, generation)
            except Exception:
                logger.exception("sandbox webhook: building or sending an event failed")

    def _deliver(self, url: str, secret: str, event: dict[str, Any], generation: int) -> None:
        body = json.dumps(event).encode()
        kind = str(event.get("type"))
        for attempt in range(1, _ATTEMPTS + 1):
            request = urllib.request.Request(  # noqa: S310 (http(s) only: SandboxConfig)
                url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                    "Stripe-Signature": signature_header(body, secret, int(time.time())),
                },
            )
            status: int | None = None
            try:
                with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError as exc:
                logger.info("sandbox webhook %s to %s: %s", event.get("id"), url, exc)
            if status is not None and status < 500:
                tally = self.sent if status < 300 else self.refused
                with self._cond:
                    tally[kind] = tally.get(kind, 0) + 1
                return
            if attempt < _ATTEMPTS:
                with self._cond:
                    if generation != self._generation:
                        return
                    self._cond.wait(_RETRY_PAUSE)
        with self._cond:
            self.failed[kind] = self.failed.get(kind, 0) + 1
