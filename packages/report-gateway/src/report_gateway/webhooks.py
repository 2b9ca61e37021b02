"""Webhooks: verify a delivery, learn which run it is about, wake whoever waits on it.

``WebhookApp(gateway)`` is a WSGI application taking ``POST /webhooks/<provider>`` for every
loaded provider whose ``ProviderSpec.webhook`` (a ``WebhookSpec``) declares webhooks and
whose signing secret is configured; the stripe plugin declares ``POST /webhooks/stripe``
(v1 and v2 events alike). The provider's spec says which header holds the signature, which
setting holds the secret(s), how a signature is checked and what an event means; this
module does the neutral rest:

- a delivery is accepted only when the spec's ``verify`` accepts its signature (events are
  JSON objects with a string ``id`` and a ``type``); anything else is refused with 400 and
  a log line that names the reason, never the body, the header or a secret. An event id
  already handled (or being handled) is answered 200 ``{"duplicate": id}`` and not acted on
  again: providers deliver at least once, and a 4xx would be retried for days;
- the spec's ``read`` says what the event means: a whole run (mapped by the driver exactly
  as a poll would, no request sent), a run to retrieve once (``Gateway.get`` given
  ``RETRIEVE_SECONDS``, retries included; a failure answers 502 promptly so the provider
  delivers again later), or nothing (acknowledged, ignored).

The run is published to ``gateway.events``: a ``Gateway.wait`` on it in this process ends
at once with that snapshot instead of polling again. When the gateway has a run journal
(``Gateway.journal``, on by default) the run's status is written there too, which is how a
``wait`` in another process on the same journal learns it: it reads the journal every
second or so while it sleeps, and a run written down as ended is polled once at once
(``report_gateway.events``). A run the journal does not know (started elsewhere, or with
the journal off) changes nothing there. ``on_run`` then hears every run learned.
"""

from __future__ import annotations

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
from .polling import deadline_after
from .webhook_spec import (
    DEFAULT_TOLERANCE,
    SignatureError,
    WebhookEventError,
    WebhookOutcome,
    WebhookSpec,
)

if TYPE_CHECKING:
    from .gateway import Gateway

__all__ = [
    "DEFAULT_TOLERANCE",
    "WEBHOOK_PREFIX",
    "SignatureError",
    "WebhookApp",
    "WebhookEventError",
    "WebhookOutcome",
    "WebhookResult",
    "WebhookSpec",
    "make_server",
    "parse_secrets",
]

logger = logging.getLogger("report_gateway.webhooks")

#: Provider ``name`` is served at ``WEBHOOK_PREFIX + "/" + name``.
WEBHOOK_PREFIX = "/webhooks"
#: Providers' events are a few kilobytes; anything far larger is not one.
MAX_BODY_BYTES = 1 << 20
#: A thin event's run retrieve gives up after this long (retries included) and answers
#: 502: the provider delivers again later, rather than waiting on a slow answer now.
RETRIEVE_SECONDS = 3.0
#: How long a delivery of an event still being handled waits for that handling to end.
DUPLICATE_WAIT_SECONDS = 10.0

StartResponse = Callable[..., Any]


def parse_secrets(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Signing secrets from a setting: ``"whsec_a,whsec_b"`` or a list; blanks dropped."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(text for item in items if (text := str(item).strip()))


@attrs.frozen
class WebhookResult:
    """What one delivery came to: the HTTP status, the JSON answer, and the run if any."""

    status: int
    body: Mapping[str, Any]
    run: ReportRun | None = None


class _SeenEvents:
    """Event ids accepted so far (the newest ``limit``), reserved while one is handled.

    A delivery of an id being handled right now waits for that one to end (Stripe sends
    again when its first attempt seems slow): accepted, it is a duplicate; given up, the
    waiting delivery handles the event itself.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Condition()
        #: id -> True once accepted, False while being handled.
        self._ids: OrderedDict[str, bool] = OrderedDict()

    def reserve(self, event_id: str, wait: float = DUPLICATE_WAIT_SECONDS) -> bool:
        """True: the caller handles the event (then ``accept`` or ``release``); False: it
        was accepted already (a duplicate), or is still being handled after ``wait``."""
        with self._lock:
            self._lock.wait_for(lambda: self._ids.get(event_id) is not False, timeout=wait)
            if event_id in self._ids:
                return False
            self._ids[event_id] = False
            while len(self._ids) > self._limit:
                self._ids.popitem(last=False)
            return True

    def accept(self, event_id: str) -> None:
        with self._lock:
            self._ids[event_id] = True
            self._lock.notify_all()

    def release(self, event_id: str) -> None:
        """Forget an event that was not handled, so the provider's retry of it is accepted."""
        with self._lock:
            self._ids.pop(event_id, None)
            self._lock.notify_all()


@attrs.frozen
class _Endpoint:
    provider: str
    spec: WebhookSpec
    secrets: tuple[str, ...] = attrs.field(repr=False)
    tolerance: float
    environ_key: str


class WebhookApp:
    """WSGI application for ``POST /webhooks/<provider>``, publishing runs to ``gateway``.

    ``providers``: the providers to serve (default: every loaded one declaring webhooks
    whose secret is configured). ``secrets``: the endpoint signing secrets (a comma-separated
    string or a list, for the one provider served; or provider -> those); by default each
    provider's own setting (the stripe provider's ``webhook_secret`` or
    ``STRIPE_WEBHOOK_SECRET``). No secret for a provider asked for, or none at all, is a
    ``ConfigurationError`` here: an unverifiable listener must not start. ``tolerance``
    bounds the signature's age in seconds (default: the spec's); ``remember`` is how many
    accepted event ids are kept to refuse a replay; ``on_run(run)`` hears every run learned
    (after it was published, and written to the gateway's run journal if it has one);
    ``clock`` replaces ``time.time`` (tests).
    """

    def __init__(
        self,
        gateway: Gateway,
        *,
        secrets: str | Sequence[str] | Mapping[str, str | Sequence[str]] | None = None,
        tolerance: float | None = None,
        providers: Sequence[str] | None = None,
        prefix: str = WEBHOOK_PREFIX,
        remember: int = 100_000,
        on_run: Callable[[ReportRun], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if tolerance is not None and tolerance <= 0:
            raise ValueError("tolerance must be positive")
        self.gateway = gateway
        self.on_run = on_run
        self._clock = clock
        self._seen = _SeenEvents(remember)
        declared = {
            name: spec.webhook
            for name in gateway.providers()
            if (spec := gateway.spec(name)).webhook is not None
        }
        wanted = list(providers) if providers is not None else list(declared)
        unknown = [name for name in wanted if name not in declared]
        if unknown:
            raise ConfigurationError(f"no webhooks declared by provider(s) {unknown}")
        self._endpoints: dict[str, _Endpoint] = {}
        missing: list[str] = []
        for name in wanted:
            hook = declared[name]
            assert hook is not None
            found = self._secrets_for(name, hook, secrets, single=len(wanted) == 1)
            if not found:
                missing.append(self._where_secrets_go(name, hook))
                continue
            path = f"{prefix.rstrip('/')}/{name}"
            self._endpoints[path] = _Endpoint(
                name,
                hook,
                found,
                hook.tolerance if tolerance is None else tolerance,
                "HTTP_" + hook.signature_header.upper().replace("-", "_"),
            )
        if not self._endpoints or (providers is not None and missing):
            where = "; ".join(missing) or "no loaded provider declares webhooks"
            raise ConfigurationError(
                f"no webhook signing secret: {where} (several, comma-separated, while rotating)"
            )

    def _secrets_for(
        self,
        name: str,
        hook: WebhookSpec,
        given: str | Sequence[str] | Mapping[str, str | Sequence[str]] | None,
        *,
        single: bool,
    ) -> tuple[str, ...]:
        if isinstance(given, Mapping):
            return parse_secrets(given.get(name))
        if given is not None and single:
            return parse_secrets(given)
        return parse_secrets(self.gateway.settings(name).get(hook.secret_setting))

    def _where_secrets_go(self, name: str, hook: WebhookSpec) -> str:
        key = hook.secret_setting
        env = self.gateway.spec(name).option_table().get(key)
        also = f" or {env.env}" if env is not None and env.env else ""
        return f"set `{key}` in the {name} settings{also}"

    @property
    def paths(self) -> dict[str, str]:
        """Provider -> the path its deliveries are posted to."""
        return {endpoint.provider: path for path, endpoint in self._endpoints.items()}

    @property
    def path(self) -> str:
        """The first served path (the one ``report-gateway listen`` announces)."""
        return next(iter(self._endpoints))

    def __repr__(self) -> str:
        served = ", ".join(f"{p} secrets={len(e.secrets)}" for p, e in self._endpoints.items())
        return f"<WebhookApp {served}>"

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
        endpoint = self._endpoints.get(environ.get("PATH_INFO", ""))
        if endpoint is None:
            return WebhookResult(404, {"error": "not found"})
        if environ.get("REQUEST_METHOD") != "POST":
            return WebhookResult(405, {"error": "use POST"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            return self._refuse(endpoint, 400, "bad or oversized Content-Length", environ)
        payload = environ["wsgi.input"].read(length) if length else b""
        return self.handle(
            payload,
            environ.get(endpoint.environ_key),
            provider=endpoint.provider,
            remote=environ.get("REMOTE_ADDR"),
        )

    # -- one delivery ----------------------------------------------------------------------

    def handle(
        self,
        payload: bytes,
        signature: str | None,
        *,
        provider: str | None = None,
        remote: str | None = None,
    ) -> WebhookResult:
        """Verify and act on one delivery to ``provider`` (default: the first served; the
        WSGI layer aside, tests call this directly)."""
        endpoint = self._endpoint(provider)
        where = {"REMOTE_ADDR": remote}
        try:
            endpoint.spec.verify(
                payload,
                signature,
                endpoint.secrets,
                tolerance=endpoint.tolerance,
                now=self._clock(),
            )
        except SignatureError as exc:
            return self._refuse(endpoint, 400, str(exc), where)
        try:
            event = json.loads(payload)
        except ValueError:
            return self._refuse(endpoint, 400, "signed body is not JSON", where)
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            return self._refuse(endpoint, 400, "signed body is not an event", where)
        event_id: str = event["id"]
        kind = str(event.get("type") or "")
        if not self._seen.reserve(event_id):
            # Stripe delivers at least once: a re-delivery (our 200 was lost, or the first
            # attempt is slow) is answered 2xx, or it would be retried for days.
            logger.info("%s webhook %s (%s): duplicate, already handled", endpoint.provider,
                        event_id, kind)  # fmt: skip
            return WebhookResult(200, {"received": True, "duplicate": event_id})
        try:
            result = self._dispatch(endpoint, event_id, kind, event)
        except Exception:
            self._seen.release(event_id)
            raise
        if result.status >= 300:
            self._seen.release(event_id)
        else:
            self._seen.accept(event_id)
        return result

    def _endpoint(self, provider: str | None) -> _Endpoint:
        for endpoint in self._endpoints.values():
            if provider is None or endpoint.provider == provider:
                return endpoint
        raise ValueError(f"this app serves no webhooks for {provider!r}")

    def _dispatch(
        self, endpoint: _Endpoint, event_id: str, kind: str, event: Mapping[str, Any]
    ) -> WebhookResult:
        name = endpoint.provider
        try:
            outcome = endpoint.spec.read(event, lambda: self.gateway.driver(name))
        except WebhookEventError as exc:
            logger.warning("%s webhook %s (%s): %s", name, event_id, kind, exc)
            return WebhookResult(400, {"error": str(exc)})
        except Exception as exc:  # a signed event we cannot read: say so, let it be retried
            logger.warning("%s webhook %s (%s): not a report run: %s", name, event_id, kind, exc)
            return WebhookResult(400, {"error": "event holds no report run"})
        run = outcome.run
        if run is None and outcome.fetch is not None:
            provider, run_id, scope = outcome.fetch
            try:
                run = self._retrieve(provider, run_id, scope)
            except Exception as exc:
                # The provider retries a delivery that failed; our reading of the run failed.
                logger.warning(
                    "%s webhook %s (%s): retrieving %s failed: %s",
                    name,
                    event_id,
                    kind,
                    run_id,
                    exc,
                )
                return WebhookResult(502, {"error": "could not retrieve the run; retry"})
        if run is None:
            logger.info("%s webhook %s (%s): acknowledged, nothing to do", name, event_id, kind)
            return WebhookResult(200, {"received": True, "ignored": kind})
        woke = self.gateway.events.publish(run)
        try:
            journaled = self._journal(run)
        except sqlite3.Error as exc:
            # Waits in other processes would miss it: let Stripe deliver it again.
            logger.warning(
                "%s webhook %s (%s): the run journal could not be written: %s",
                name,
                event_id,
                kind,
                exc,
            )
            return WebhookResult(503, {"error": "could not record the run; retry"})
        logger.info(
            "%s webhook %s (%s): %s run %s is %s%s%s",
            name,
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

    def _retrieve(self, provider: str, run_id: str, scope: Scope | None) -> ReportRun:
        """``Gateway.get`` bounded by ``RETRIEVE_SECONDS`` (retries included): the sender
        waits on our answer, and a 502 soon lets it deliver again later."""
        gw = self.gateway
        where = gw._drivers.where(provider, scope)
        extra = gw._drivers.keywords(provider, "get", deadline=deadline_after(RETRIEVE_SECONDS))
        return gw._seen(gw._drivers.run(provider, run_id, where, **extra))

    def _journal(self, run: ReportRun) -> bool:
        """Write the run's status to the gateway's journal; whether a journaled run had it."""
        journal = self.gateway.journal
        if journal is None:
            return False
        return journal.record_status(run.provider, run.id, run.status, run.raw_status) > 0

    def _refuse(
        self, endpoint: _Endpoint, status: int, reason: str, environ: Mapping[str, Any]
    ) -> WebhookResult:
        logger.warning(
            "%s webhook refused from %s: %s",
            endpoint.provider,
            environ.get("REMOTE_ADDR") or "?",
            reason,
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
    # An event whose run is retrieved costs a round trip: one slow delivery must not hold
    # the rest.
    daemon_threads = True
    allow_reuse_address = True


def make_server(app: WebhookApp, host: str = "127.0.0.1", port: int = 0) -> WSGIServer:
    """A threaded stdlib server for ``app``; ``port`` 0 picks a free one
    (``server.server_address`` says which). Loopback by default: put a TLS proxy in front
    to take the provider's deliveries from outside."""
    server = _ThreadingServer((host, port), _QuietHandler)
    server.set_app(app)
    return server
