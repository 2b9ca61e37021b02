"""The one WSGI application: routes to the three APIs, the control endpoints, request ids,
the header log, and the faults that are applied around handlers rather than inside them."""

from __future__ import annotations

import datetime as dt
import email.utils
import http
import json
import logging
import os
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from report_gateway_sandbox import zuora as zuora_api
from report_gateway_sandbox.config import FaultRule, SandboxConfig
from report_gateway_sandbox.state import SandboxState
from report_gateway_sandbox.stripe_auth import v1_error, v2_error
from report_gateway_sandbox.stripe_v1 import StripeV1
from report_gateway_sandbox.stripe_v2 import StripeV2, known_stripe_version, presigned_error
from report_gateway_sandbox.webhooks import API_VERSION as DEFAULT_STRIPE_VERSION
from report_gateway_sandbox.wire import HttpError, Request, Response, Route, json_response
from report_gateway_sandbox.zuora import Zuora

logger = logging.getLogger("report_gateway_sandbox")

SOCKET_KEY = "report_gateway_sandbox.socket"
RAW_HEADERS_KEY = "report_gateway_sandbox.headers"
_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in http.HTTPStatus}

StartResponse = Callable[..., Any]


class ConnectionDropped(Exception):
    """Raised from a response body to abandon the connection (after an abortive close)."""


def _provider_of(path: str) -> str:
    if path.startswith("/v2/"):
        return "stripe-v2"
    if path.startswith("/_files/v2/"):
        return "presigned"
    if (
        path.startswith((zuora_api.PREFIX + "/", zuora_api.REST_PREFIX + "/"))
        or path == zuora_api.TOKEN_PATH
    ):
        return "zuora"
    if path.startswith("/v1/"):
        return "stripe"
    return "sandbox"


class SandboxApp:
    """WSGI callable. Thread-safe; configuration and state can change while it serves."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.state = SandboxState(config or SandboxConfig())
        self._build()

    def _build(self) -> None:
        self.stripe_v1 = StripeV1(self.state)
        self.stripe_v2 = StripeV2(self.state)
        self.zuora = Zuora(self.state)
        self._routes = self.stripe_v1.routes() + self.stripe_v2.routes() + self.zuora.routes()
        self._by_provider: dict[str, list[Route]] = {}
        for route in self._routes:
            key = "presigned" if not route.in_spec else route.provider
            self._by_provider.setdefault(key, []).append(route)

    # -- Python control surface ------------------------------------------------------------
    @property
    def config(self) -> SandboxConfig:
        return self.state.config

    def configure(self, changes: Mapping[str, Any] | None = None, **kwargs: Any) -> SandboxConfig:
        """Apply changes (same names as SandboxConfig; `faults` replaces, `add_faults`
        appends). Fault counters restart; runs and statistics are kept."""
        merged = {**(changes or {}), **kwargs}
        config = self.state.config.updated(merged)
        self.state.reconfigure(config)
        return config

    def add_fault(self, rule: FaultRule) -> None:
        self.configure(add_faults=[rule])

    def clear_faults(self) -> None:
        self.configure(faults=[])

    def reset(self) -> None:
        """Forget every run, idempotency key and statistic, and put the clock back to real
        time (``advance_clock``); keep the configuration."""
        self.state.close()
        self.state = SandboxState(self.state.config)
        self._build()

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def close(self) -> None:
        """Stop sending webhook events (the server is going away)."""
        self.state.close()

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox's clock ``seconds`` on: runs finish, download URLs and Zuora
        tokens expire as if that time had passed (webhook deliveries keep real time)."""
        self.state.advance_clock(seconds)

    def expire_tokens(self) -> int:
        """End the life of every Zuora bearer token now; returns how many were alive."""
        return self.zuora.expire_tokens()

    def routes(self) -> list[Route]:
        return list(self._routes)

    # -- WSGI ------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = _read_body(environ)
        req = Request(environ, body)
        path = req.path
        if path.startswith("/_sandbox/"):
            return self._send(self._control(req), environ, start_response, req, None)
        provider = _provider_of(path)
        route = self._match(req, provider)
        req.operation = route.name if route else "unknown"
        state = self.state
        req.faults = state.faults.decide(req.method, path) if state.faults.active else []
        if provider == "zuora":
            req.request_id = str(uuid.uuid4())
        else:
            req.request_id = "req_" + os.urandom(7).hex()
        for rule in req.faults:
            if rule.kind == "latency" and rule.phase == "request":
                time.sleep(rule.latency)
        resp = self._answer(req, provider, route)
        for rule in req.faults:
            if rule.kind == "latency" and rule.phase == "response":
                time.sleep(rule.latency)
        self._decorate(req, provider, resp)
        state.log_request(
            {
                "time": time.time(),
                "method": req.method,
                "path": path,
                "query": environ.get("QUERY_STRING", ""),
                "operation": req.operation,
                "provider": provider,
                "status": resp.status,
                "headers": _raw_headers(environ, req),
            }
        )
        return self._send(resp, environ, start_response, req, provider)

    def _match(self, req: Request, provider: str) -> Route | None:
        for route in self._by_provider.get(provider, ()):
            if route.method != req.method:
                continue
            found = route.pattern.match(req.path)
            if found is not None:
                req.params = found.groupdict()
                return route
        return None

    def _answer(self, req: Request, provider: str, route: Route | None) -> Response:
        """The one place a refusal becomes a response: an injected fault, no route, or an
        `HttpError` from a route's guard or handler."""
        try:
            for rule in req.faults:
                if rule.kind == "server_error":
                    raise self._server_error(req, provider, rule)
                if rule.kind == "rate_limit":
                    raise self._rate_limited(req, provider, rule)
            if route is None:
                raise self._not_found(req, provider)
            return route.handler(req)
        except HttpError as refused:
            return refused.response()
        except Exception:
            logger.exception("sandbox handler %s failed", req.operation)
            return self._server_error(
                req, provider, FaultRule(kind="server_error", status=500)
            ).response()

    def _decorate(self, req: Request, provider: str, resp: Response) -> None:
        if provider in ("stripe", "stripe-v2"):
            resp.headers.append(("Request-Id", req.request_id))
            version = req.header("Stripe-Version") or DEFAULT_STRIPE_VERSION
            if provider == "stripe-v2" and not known_stripe_version(version):
                version = DEFAULT_STRIPE_VERSION  # a refused version is not echoed
            resp.headers.append(("Stripe-Version", version))
            resp.headers.append(("Cache-Control", "no-cache, no-store"))
        elif provider == "zuora":
            resp.headers.append(("Zuora-Request-Id", req.request_id))
            track = req.header("Zuora-Track-Id")
            if track is not None:
                resp.headers.append(("Zuora-Track-Id", track))

    # -- fault responses -------------------------------------------------------------------
    def _server_error(self, req: Request, provider: str, rule: FaultRule) -> HttpError:
        status = rule.status
        if provider == "stripe":
            error = v1_error(
                req,
                status,
                "An unknown error occurred while processing your request. Please try again.",
                type_="api_error",
            )
        elif provider == "stripe-v2":
            error = v2_error(
                status,
                "An unknown error occurred while processing your request.",
                code="internal_error",
                type_="api_error",
            )
        elif provider == "zuora":
            error = zuora_api.xml_error(
                self.state,
                status,
                "Internal server error, please try again later.",
                "ZAN-SERVER-ERROR",
            )
        elif provider == "presigned":
            error = presigned_error(status, "We encountered an internal error. Please try again.")
        else:
            error = HttpError(status, b"internal error", [("Content-Type", "text/plain")])
        if rule.should_retry is not None and provider in ("stripe", "stripe-v2"):
            error.headers.append(("Stripe-Should-Retry", "true" if rule.should_retry else "false"))
        return error

    def _rate_limited(self, req: Request, provider: str, rule: FaultRule) -> HttpError:
        message = "Too many requests hit the API too quickly. Please retry after a short delay."
        if provider == "stripe":
            error = v1_error(req, 429, message, code="rate_limit")
        elif provider == "stripe-v2":
            error = v2_error(429, message, code="rate_limit", type_="rate_limit")
        elif provider == "zuora":
            error = zuora_api.flat_error(429, message, "LIMIT_EXCEEDED")
            error.headers += [
                ("ratelimit-limit", "40"),
                ("ratelimit-remaining", "0"),
                ("ratelimit-reset", str(max(1, round(rule.retry_after)))),
            ]
        elif provider == "presigned":
            error = presigned_error(429, "Please reduce your request rate.")
        else:
            error = HttpError(429, b"slow down", [("Content-Type", "text/plain")])
        if rule.retry_after_http_date:
            when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=rule.retry_after)
            error.headers.append(("Retry-After", email.utils.format_datetime(when, usegmt=True)))
        else:
            value = rule.retry_after
            error.headers.append(
                ("Retry-After", str(int(value)) if float(value).is_integer() else str(value))
            )
        return error

    def _not_found(self, req: Request, provider: str) -> HttpError:
        if provider == "stripe":
            return v1_error(
                req,
                404,
                f"Unrecognized request URL ({req.method}: {req.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        if provider == "stripe-v2":
            return v2_error(
                404, f"Unrecognized request URL ({req.method}: {req.path}).", code="not_found"
            )
        if provider == "zuora":
            return zuora_api.enveloped_error(
                self.state, 404, f"No operation at {req.method} {req.path}."
            )
        return HttpError(404, b"not found", [("Content-Type", "text/plain")])

    # -- control endpoints -----------------------------------------------------------------
    def _control(self, req: Request) -> Response:
        name = req.path[len("/_sandbox/") :].strip("/")
        try:
            if name == "config" and req.method == "GET":
                return json_response(200, self.config.to_dict())
            if name == "config" and req.method == "POST":
                changes = json.loads(req.body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object")
                return json_response(200, self.configure(changes).to_dict())
            if name == "stats" and req.method == "GET":
                stats = self.stats()
                if req.query("log") == "false":
                    stats.pop("request_log")
                return json_response(200, stats)
            if name == "zuora/expire_tokens" and req.method == "POST":
                return json_response(200, {"expired": self.expire_tokens()})
            if name == "reset" and req.method == "POST":
                self.reset()
                return json_response(200, {"reset": True})
            if name == "operations" and req.method == "GET":
                return json_response(200, operations_of(self.routes()))
            if name == "health" and req.method == "GET":
                return json_response(200, {"ok": True})
        except (ValueError, TypeError) as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(404, {"error": f"no control endpoint {req.method} {req.path}"})

    # -- sending ---------------------------------------------------------------------------
    def _send(
        self,
        resp: Response,
        environ: Mapping[str, Any],
        start_response: StartResponse,
        req: Request,
        provider: str | None,
    ) -> Iterable[bytes]:
        length = resp.length
        headers = [*resp.headers, ("Content-Length", str(length))]
        start_response(_STATUS_LINES.get(resp.status, f"{resp.status} Unknown"), headers)
        if req.method == "HEAD":
            return []
        cut: int | None = None
        drop = False
        for rule in req.faults:
            if rule.kind == "malformed_json" and resp.stream is None and _is_json(resp):
                cut = rule.after_bytes if rule.after_bytes is not None else length // 2
                # The body is cut, and the announced length follows it: the bytes are
                # well-framed, the JSON is not.
                resp.body = resp.body[:cut]
                headers[-1] = ("Content-Length", str(len(resp.body)))
                cut = None
            elif rule.kind in ("truncate_body", "drop_connection"):
                cut = rule.after_bytes if rule.after_bytes is not None else length // 2
                cut = max(0, min(cut, max(0, length - 1)))
                drop = rule.kind == "drop_connection"
        if resp.stream is None:
            if cut is None:
                return [resp.body]
            return _cut_body(iter([resp.body]), cut, environ if drop else None)
        start, end = resp.stream_range
        chunks = resp.stream.iter_range(start, end, self.config.chunk_size)
        if cut is None:
            return chunks
        return _cut_body(chunks, cut, environ if drop else None)


def _is_json(resp: Response) -> bool:
    content_type = resp.get_header("Content-Type") or ""
    return "json" in content_type


def _cut_body(
    chunks: Iterator[bytes], cut: int, drop_environ: Mapping[str, Any] | None
) -> Iterator[bytes]:
    """Send `cut` bytes, then stop (truncated: clean close, short body) or reset the
    connection (dropped: the peer sees ECONNRESET)."""
    sent = 0
    for chunk in chunks:
        room = cut - sent
        if room <= 0:
            break
        piece = chunk if len(chunk) <= room else chunk[:room]
        sent += len(piece)
        if piece:
            yield piece
    if hasattr(chunks, "close"):
        chunks.close()
    if drop_environ is not None:
        sock = drop_environ.get(SOCKET_KEY)
        if isinstance(sock, socket.socket):
            time.sleep(0.05)  # let what was sent reach the peer before the reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            raise ConnectionDropped("connection dropped by fault injection")


def _read_body(environ: Mapping[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    data: bytes = environ["wsgi.input"].read(length)
    if len(data) < length:
        # The client went away mid-request (killed between its headers and its body): a
        # real server acts on no such request. Answering it would store the cut request's
        # answer under its idempotency key, and the client's retry of the whole request
        # with that key would then be refused as "other parameters".
        raise ConnectionDropped(f"request body cut short ({len(data)} of {length} bytes)")
    return data


def _raw_headers(environ: Mapping[str, Any], req: Request) -> dict[str, str]:
    raw = environ.get(RAW_HEADERS_KEY)
    if raw is not None:
        return {str(k): str(v) for k, v in raw}
    return req.headers()


def operations_of(routes: Iterable[Route]) -> list[dict[str, Any]]:
    """Every operation served, for tests that check responses against specs/*.yaml. Zuora's
    operations come twice, once per endpoint family (`family`: "zconnect" or "rest"), under
    the same names."""
    return [
        {
            "provider": r.provider,
            "method": r.method,
            "path": r.template,
            "name": r.name,
            "in_spec": r.in_spec,
            "family": r.family,
        }
        for r in routes
    ]
