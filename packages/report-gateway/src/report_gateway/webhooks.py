"""Stripe webhooks: verify the signature, learn which run finished, wake whoever waits on it.

``WebhookApp(gateway)`` is a WSGI application taking ``POST /webhooks/stripe``. Stripe
signs every delivery with the endpoint's secret (``whsec_...``): the ``Stripe-Signature``
header holds ``t=<unix seconds>`` and one or more ``v1=<hex HMAC-SHA256>`` of
``"<t>.<raw body>"``. A delivery is accepted only when some ``v1`` matches some configured
secret (several at once while one is rotated), ``t`` is within ``tolerance`` seconds of now,
and its event id was not accepted before; anything else is refused with 400 and a log line
that names the reason, never the body, the header or a secret.

Accepted events:

- v1 ``reporting.report_run.*``: the run is in ``data.object``; the stripe driver maps it
  (``run_from_event``) exactly as a poll would, so no request is sent;
- v2 thin ``v2.reporting.report_run.*``: only ``related_object.id`` is known, so the run is
  retrieved once (``Gateway.get("stripe-v2", id)``, in the event's ``context``);
  ``.created`` is acknowledged without one (the creator already knows);
- anything else (``reporting.report_type.updated``...) is acknowledged and ignored.

The run is published to ``gateway.events``: a ``Gateway.wait`` on it in this process ends
at once with that snapshot instead of polling again. When the gateway has a run journal
(``Gateway.journal``, on by default) the run's status is written there too, which is how a
``wait`` in another process on the same journal learns it: it reads the journal every
second or so while it sleeps, and a run written down as ended is polled once at once
(``report_gateway.events``). A run the journal does not know (started elsewhere, or with
the journal off) changes nothing there. ``on_run`` then hears every run learned.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import attrs

from .errors import ConfigurationError
from .models import ReportRun, Scope

if TYPE_CHECKING:
    from .gateway import Gateway

__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "WEBHOOK_PATH",
    "SignatureError",
    "WebhookApp",
    "WebhookResult",
    "make_server",
    "parse_secrets",
    "sign",
    "verify",
]

logger = logging.getLogger("report_gateway.webhooks")

WEBHOOK_PATH = "/webhooks/stripe"
SIGNATURE_HEADER = "Stripe-Signature"
#: Stripe's own libraries refuse a signature older than five minutes.
DEFAULT_TOLERANCE = 300.0
#: Stripe's events are a few kilobytes; anything far larger is not one.
MAX_BODY_BYTES = 1 << 20
_V1_PREFIX = "reporting.report_run."
_V2_PREFIX = "v2.reporting.report_run."
_V2_RUN_OBJECT = "v2.reporting.report_run"

StartResponse = Callable[..., Any]


class SignatureError(ValueError):
    """A delivery that does not prove it comes from Stripe, now (the reason, never the body)."""


def parse_secrets(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Signing secrets from a setting: ``"whsec_a,whsec_b"`` or a list; blanks dropped."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(text for item in items if (text := str(item).strip()))


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` value Stripe would send for ``payload`` at ``timestamp``."""
    return f"t={timestamp},v1={_digest(payload, secret, timestamp)}"


def _digest(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a delivery's signature; return its timestamp or raise ``SignatureError``.

    Every ``v1`` entry is compared, in constant time, with the digest under every secret;
    other schemes (``v0``) are ignored. A timestamp more than ``tolerance`` seconds away from
    ``now``, in either direction, is refused: an old one is a replay, a future one would
    stretch the replay window.
    """
    if not secrets:
        raise SignatureError("no signing secret configured")
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("timestamp is not an integer") from None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("no timestamp in the signature header")
    if not signatures:
        raise SignatureError("no v1 signature in the signature header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(
            f"timestamp is {round(current - timestamp)} s from now (tolerance {tolerance:g} s)"
        )
    expected = [_digest(payload, secret, timestamp) for secret in secrets]
    # Every pair is compared so the time taken says nothing about which one matched.
    matched = False
    for signature in signatures:
        for digest in expected:
            matched |= hmac.compare_digest(signature.encode(), digest.encode())
    if not matched:
        raise SignatureError("no signature matches a configured secret")
    return timestamp


@attrs.frozen
class WebhookResult:
    """What one delivery came to: the HTTP status, the JSON answer, and the run if any."""

    status: int
    body: Mapping[str, Any]
    run: ReportRun | None = None


class _SeenEvents:
    """Event ids accepted so far (the newest ``limit``), reserved while one is handled."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._ids: OrderedDict[str, bool] = OrderedDict()

    def reserve(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._ids:
                return False
            self._ids[event_id] = False
            while len(self._ids) > self._limit:
                self._ids.popitem(last=False)
            return True

    def release(self, event_id: str) -> None:
        """Forget an event that was not handled, so Stripe's retry of it is accepted."""
        with self._lock:
            self._ids.pop(event_id, None)


class WebhookApp:
    """WSGI application for ``POST /webhooks/stripe``, publishing runs to ``gateway``.

    ``secrets`` are the endpoint signing secrets (a comma-separated string or a list); by
    default the stripe provider's ``webhook_secret`` setting (or ``STRIPE_WEBHOOK_SECRET``).
    None configured is a ``ConfigurationError`` here: an unverifiable listener must not
    start. ``tolerance`` bounds the signature's age in seconds; ``remember`` is how many
    accepted event ids are kept to refuse a replay; ``on_run(run)`` hears every run learned
    (after it was published, and written to the gateway's run journal if it has one);
    ``clock`` replaces ``time.time`` (tests).
    """

    def __init__(
        self,
        gateway: Gateway,
        *,
        secrets: str | Sequence[str] | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        path: str = WEBHOOK_PATH,
        remember: int = 100_000,
        on_run: Callable[[ReportRun], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secrets is None:
            secrets = gateway.settings("stripe").get("webhook_secret")
        self._secrets = parse_secrets(secrets)
        if not self._secrets:
            raise ConfigurationError(
                "no Stripe webhook signing secret: set `webhook_secret` in the stripe "
                "settings or STRIPE_WEBHOOK_SECRET (several, comma-separated, while rotating)"
            )
        if tolerance <= 0:
            raise ValueError("tolerance must be positive")
        self.gateway = gateway
        self.tolerance = tolerance
        self.path = path
        self.on_run = on_run
        self._clock = clock
        self._seen = _SeenEvents(remember)

    def __repr__(self) -> str:
        return f"<WebhookApp {self.path} secrets={len(self._secrets)}>"

    # -- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        result = self._route(environ)
        body = json.dumps(result.body).encode()
        start_response(
            f"{result.status} {_REASONS.get(result.status, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _route(self, environ: Mapping[str, Any]) -> WebhookResult:
        if environ.get("PATH_INFO", "") != self.path:
            return WebhookResult(404, {"error": "not found"})
        if environ.get("REQUEST_METHOD") != "POST":
            return WebhookResult(405, {"error": "use POST"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            return self._refuse(400, "bad or oversized Content-Length", environ)
        payload = environ["wsgi.input"].read(length) if length else b""
        return self.handle(
            payload, environ.get("HTTP_STRIPE_SIGNATURE"), remote=environ.get("REMOTE_ADDR")
        )

    # -- one delivery ----------------------------------------------------------------------

    def handle(
        self, payload: bytes, signature: str | None, *, remote: str | None = None
    ) -> WebhookResult:
        """Verify and act on one delivery (the WSGI layer aside; tests call this directly)."""
        where = {"REMOTE_ADDR": remote}
        try:
            verify(payload, signature, self._secrets, tolerance=self.tolerance, now=self._clock())
        except SignatureError as exc:
            return self._refuse(400, str(exc), where)
        try:
            event = json.loads(payload)
        except ValueError:
            return self._refuse(400, "signed body is not JSON", where)
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            return self._refuse(400, "signed body is not an event", where)
        event_id: str = event["id"]
        kind = str(event.get("type") or "")
        if not self._seen.reserve(event_id):
            return self._refuse(400, f"event {event_id} was already received", where)
        try:
            result = self._dispatch(event_id, kind, event)
        except Exception:
            self._seen.release(event_id)
            raise
        if result.status >= 300:
            self._seen.release(event_id)
        return result

    def _dispatch(self, event_id: str, kind: str, event: Mapping[str, Any]) -> WebhookResult:
        if kind.startswith(_V1_PREFIX):
            try:
                run = self._v1_run(event)
            except Exception as exc:  # a signed event we cannot read: say so, let Stripe retry
                logger.warning("stripe webhook %s (%s): not a report run: %s", event_id, kind, exc)
                return WebhookResult(400, {"error": "event holds no report run"})
        elif kind.startswith(_V2_PREFIX):
            if kind == _V2_PREFIX + "created":
                return self._ignored(event_id, kind)
            related = event.get("related_object")
            if not isinstance(related, Mapping):
                related = {}
            run_id = related.get("id")
            if not isinstance(run_id, str) or related.get("type", _V2_RUN_OBJECT) != _V2_RUN_OBJECT:
                logger.warning("stripe webhook %s (%s): no report run named", event_id, kind)
                return WebhookResult(400, {"error": "event names no report run"})
            context = event.get("context")
            scope = Scope(context=context) if isinstance(context, str) and context else None
            try:
                run = self.gateway.get("stripe-v2", run_id, scope=scope)
            except Exception as exc:
                # Stripe retries a delivery that failed; our reading of the run failed.
                logger.warning(
                    "stripe webhook %s (%s): retrieving %s failed: %s", event_id, kind, run_id, exc
                )
                return WebhookResult(502, {"error": "could not retrieve the run; retry"})
        else:
            return self._ignored(event_id, kind)
        woke = self.gateway.events.publish(run)
        try:
            journaled = self._journal(run)
        except sqlite3.Error as exc:
            # Waits in other processes would miss it: let Stripe deliver it again.
            logger.warning(
                "stripe webhook %s (%s): the run journal could not be written: %s",
                event_id,
                kind,
                exc,
            )
            return WebhookResult(503, {"error": "could not record the run; retry"})
        logger.info(
            "stripe webhook %s (%s): %s run %s is %s%s%s",
            event_id,
            kind,
            run.provider,
            run.id,
            run.raw_status,
            "" if woke else " (not finished; nothing woken)",
            " (journaled)" if journaled else "",
        )
        if self.on_run is not None:
            self.on_run(run)
        return WebhookResult(
            200,
            {"received": True, "run": run.id, "provider": run.provider, "status": run.raw_status},
            run,
        )

    def _journal(self, run: ReportRun) -> bool:
        """Write the run's status to the gateway's journal; whether a journaled run had it."""
        journal = self.gateway.journal
        if journal is None:
            return False
        return journal.record_status(run.provider, run.id, run.status, run.raw_status) > 0

    def _v1_run(self, event: Mapping[str, Any]) -> ReportRun:
        driver = self.gateway.driver("stripe")
        mapper: Callable[[Mapping[str, Any]], ReportRun] | None = getattr(
            driver, "run_from_event", None
        )
        if mapper is None:
            raise ValueError("the stripe driver cannot map events (no run_from_event)")
        return mapper(event)

    def _ignored(self, event_id: str, kind: str) -> WebhookResult:
        logger.info("stripe webhook %s (%s): acknowledged, nothing to do", event_id, kind)
        return WebhookResult(200, {"received": True, "ignored": kind})

    def _refuse(self, status: int, reason: str, environ: Mapping[str, Any]) -> WebhookResult:
        logger.warning(
            "stripe webhook refused from %s: %s", environ.get("REMOTE_ADDR") or "?", reason
        )
        return WebhookResult(status, {"error": reason})


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class _QuietHandler(WSGIRequestHandler):
    """One line per delivery in the log (path and status), not wsgiref's stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # A v2 event's retrieve takes a round trip: one slow delivery must not hold the rest.
    daemon_threads = True
    allow_reuse_address = True


def make_server(app: WebhookApp, host: str = "127.0.0.1", port: int = 0) -> WSGIServer:
    """A threaded stdlib server for ``app``; ``port`` 0 picks a free one
    (``server.server_address`` says which). Loopback by default: put a TLS proxy in front
    to take Stripe's deliveries from outside."""
    server = _ThreadingServer((host, port), _QuietHandler)
    server.set_app(app)
    return server
