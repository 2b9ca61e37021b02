"""Transport: the only place that touches the network, on one urllib3 PoolManager."""

from __future__ import annotations

import logging
import os
import re
import time
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.connectionpool import port_by_scheme
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    SSLError,
)
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeout
from urllib3.util import Timeout, parse_url
from urllib3.util.retry import Retry

from reporting_runtime.deadlines import POOL_CLASSES, DeadlineReached, DeadlineTimeout
from reporting_runtime.errors import (
    ConnectError,
    ConnectTimeout,
    DeadlineExceededError,
    ReadTimeoutError,
    TransportError,
)
from reporting_runtime.instrumentation import quiet_if_secret
from reporting_runtime.messages import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_JSON_ITEMS,
    Request,
    Response,
)
from reporting_runtime.redaction import REDACTED, Scrubber

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_JSON_ITEMS",
    "DEFAULT_TIMEOUT",
    "ERROR_BODY_LIMIT",
    "Timeout",
    "Transport",
]

DEFAULT_TIMEOUT = Timeout(connect=10, read=60)

#: How much of a non-2xx body is kept (the rest is never read): enough for any error page.
ERROR_BODY_LIMIT = 1 << 16


class _RedactUrlsFilter(logging.Filter):
    """urllib3 logs request lines with the full URL (DEBUG), retries and broken connections
    (WARNING) with its own text. Such a URL may carry a secret anywhere: a pre-signed
    credential in the query, a key a server echoed into a run id in the path or into a
    redirect's Location. So each record is rendered here, its query strings hidden and every
    secret a live client holds (``register_scrubber``: each ApiClient's Scrubber) replaced,
    before any handler sees it, whatever its level."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        record.msg, record.args = _clean(text), None
        # An attached exception is rendered here too, cleaned: urllib3's "Failed to parse
        # headers" carries the unparsed header text (a secret a server echoed included)
        # in its exception, which a handler would print as it came.
        if record.exc_info:
            record.exc_text = _clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = _clean(record.exc_text)
        if record.stack_info:
            record.stack_info = _clean(record.stack_info)
        return True


def _clean(text: str) -> str:
    """``text`` with query strings hidden and every live client's secrets replaced."""
    clean = _QUERY.sub("?" + REDACTED, text)
    for scrub in list(_SCRUBBERS):
        clean = scrub(clean)
    return clean


#: A query string inside a logged line, up to the next blank or quote.
_QUERY = re.compile(r"\?[^\s\"'<>]+")
#: The scrubbers of the live clients (weakly held: a closed, dropped client holds nothing).
_SCRUBBERS: weakref.WeakSet[Scrubber] = weakref.WeakSet()


def register_scrubber(scrubber: Scrubber) -> None:
    """Have urllib3's log records hidden from ``scrubber``'s secrets too (ApiClient does)."""
    _SCRUBBERS.add(scrubber)


_URLLIB3_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "urllib3.util.retry",
    "urllib3.connection",
    "urllib3.response",
)


def _guard_urllib3_logs() -> None:
    for name in _URLLIB3_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactUrlsFilter) for f in logger.filters):
            logger.addFilter(_RedactUrlsFilter())


class Transport:
    """Sends one Request and returns a Response; thread-safe (urllib3's pools are).

    TLS verification is on unless `verify=False`; `ca_certs` points at a custom CA bundle
    (a corporate proxy, a test CA). Redirects are never followed here: the pipeline decides,
    so credentials are not carried to another host. Retries happen only when the request
    carries a `urllib3.Retry` (RetryPolicy sets one).

    `max_body_bytes` bounds what is read into memory (a non-streamed answer, or
    `Response.read`/`json` on a streamed one): a larger body is a `BodyTooLargeError`, refused
    from its Content-Length before reading when it has one. Default `DEFAULT_MAX_BODY_BYTES`
    (4 MiB: a reporting API's answers are kilobytes). `max_json_items` bounds the values
    `Response.json` will build (`DEFAULT_MAX_JSON_ITEMS`), counted before parsing: bytes
    alone do not bound a parse (4 MiB of `[],` is a million lists). A non-2xx answer keeps
    only its first `ERROR_BODY_LIMIT` bytes, to explain it.

    `timeout` holds per socket operation: connect, then each wait for a byte (`read` is so
    the stall limit; a request's `read_timeout` replaces it). A request with a `deadline`
    (`clock` seconds, `time.monotonic` by default) ends by it whatever the server does
    (see `reporting_runtime.deadlines`): a `DeadlineExceededError` past it.
    """

    def __init__(
        self,
        *,
        pool_maxsize: int = 16,
        timeout: Timeout = DEFAULT_TIMEOUT,
        ca_certs: str | None = None,
        verify: bool = True,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_json_items: int = DEFAULT_MAX_JSON_ITEMS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        if max_json_items < 1:
            raise ValueError(f"max_json_items must be positive, got {max_json_items}")
        self.max_body_bytes = max_body_bytes
        self.max_json_items = max_json_items
        options: dict[str, Any] = {"maxsize": pool_maxsize, "timeout": timeout, "retries": False}
        if verify:
            options["cert_reqs"] = "CERT_REQUIRED"
            if ca_certs is not None:
                options["ca_certs"] = ca_certs
        else:
            options["cert_reqs"] = "CERT_NONE"
        self.timeout = timeout
        self.verify = verify
        self._clock = clock
        self._pool_options = options
        self._pool = self._new_pool()
        # Per origin ("scheme://netloc"): the pool key and context PoolManager.urlopen would
        # derive from the URL on every request (``_origin``).
        self._origins: dict[str, tuple[Any, dict[str, Any]]] = {}
        _guard_urllib3_logs()
        _transports.add(self)

    def _new_pool(self) -> urllib3.PoolManager:
        pool = urllib3.PoolManager(**self._pool_options)
        # Pools whose attempts a request's deadline bounds, headers included (``deadlines``).
        pool.pool_classes_by_scheme = dict(POOL_CLASSES)
        return pool

    def _forget_pool(self) -> None:
        """In a forked child (``_after_fork``): start with no connection. The pooled
        keep-alive connections are the parent's sockets too: a request of the child on one
        of them, interleaved with the parent's, gets the parent's answer and the parent the
        child's (measured against the sandbox: ``get`` of one run answered with another's).
        A pool's lock held by another thread at the fork would also stay held for ever.
        The old pool is only dropped: collected, it closes the child's copies of the
        sockets, which (a close, not a shutdown) leaves the parent's connections alone."""
        self._pool = self._new_pool()

    def send(
        self, request: Request, *, stream: bool = False, retries: Retry | None = None
    ) -> Response:
        """Send `request`; with `stream=False` the body is read before returning (and the
        connection released), with `stream=True` the caller reads and closes it."""
        if retries is None:
            retries = request.retries
        deadline = request.deadline
        if deadline is not None and self._clock() >= deadline:
            raise deadline_error(request, "the deadline passed before the request was sent")
        try:
            # A pre-signed URL is a credential: HTTP auto-instrumentation must not record it.
            with quiet_if_secret(request.url, credential=request.url_is_credential):
                pool, target = self._route(request.url)
                raw = pool.urlopen(
                    request.method,
                    target,
                    body=request.body,
                    assert_same_host=False,
                    headers=request.headers,
                    retries=retries if retries is not None else False,
                    redirect=False,
                    preload_content=False,
                    timeout=(
                        self.timeout
                        if deadline is None and request.read_timeout is None
                        else self._timeout_for(request)
                    ),
                )
        except (MaxRetryError, HTTPError) as exc:
            reason = (exc.reason or exc) if isinstance(exc, MaxRetryError) else exc
            if deadline is not None and (
                isinstance(reason, DeadlineReached) or self._clock() >= deadline
            ):
                raise deadline_error(request, _deadline_text(reason)) from None
            raise transport_error(request, reason) from None
        response = Response(
            raw,
            request=request,
            max_body_bytes=self.max_body_bytes,
            max_json_items=self.max_json_items,
            clock=self._clock,
        )
        if not stream:
            if response.ok:
                response.read()
            else:
                response.read_prefix(min(ERROR_BODY_LIMIT, self.max_body_bytes))
        return response

    def _route(self, url: str) -> tuple[Any, str]:
        """The connection pool for ``url`` and the target to send it, as
        ``PoolManager.urlopen`` would pick them, without re-parsing the URL and rebuilding
        the pool key on every request (a tenth of a millisecond each time): an origin's key
        is made once, and a URL whose path and query need none of urllib3's normalising
        (``_PLAIN_TARGET``: nothing to percent-encode, no dot segment, no fragment) is sent
        as written. Any other URL takes urllib3's own path. The pool itself is looked up
        each time (PoolManager may have dropped it for a newer one)."""
        scheme, sep, rest = url.partition("://")
        netloc, slash, tail = rest.partition("/")
        target = slash + tail
        if not sep or not _PLAIN_TARGET.fullmatch(target) or _has_dot_segment(target):
            return self._urllib3_route(url)
        origin = url[: len(scheme) + 3 + len(netloc)]
        known = self._origins.get(origin)
        if known is None:
            parsed = parse_url(origin)
            if not _PLAIN_NETLOC.fullmatch(netloc) or not parsed.host or parsed.path:
                return self._urllib3_route(url)
            pool = self._pool
            context = pool._merge_pool_kwargs(None)
            context["scheme"] = parsed.scheme or "http"
            context["port"] = (
                parsed.port
                if parsed.port is not None
                else port_by_scheme.get(context["scheme"].lower(), 80)
            )
            context["host"] = parsed.host
            key = pool.key_fn_by_scheme[context["scheme"].lower()](context)
            if len(self._origins) >= _MAX_ORIGINS:  # a client talks to a handful of hosts
                self._origins.clear()
            known = self._origins[origin] = (key, context)
        return self._pool.connection_from_pool_key(known[0], dict(known[1])), target or "/"

    def _urllib3_route(self, url: str) -> tuple[Any, str]:
        parsed = parse_url(url)
        pool = self._pool.connection_from_host(parsed.host, port=parsed.port, scheme=parsed.scheme)
        return pool, parsed.request_uri

    def _timeout_for(self, request: Request) -> Timeout:
        """The configured timeouts, the read one replaced by the request's stall limit, and
        both cut to the time left before its deadline (afresh for every attempt)."""
        configured = self.timeout
        connect = configured.connect_timeout
        read = request.read_timeout if request.read_timeout is not None else configured.read_timeout
        if request.deadline is not None:
            return DeadlineTimeout(
                connect=connect, read=read, deadline=request.deadline, clock=self._clock
            )
        if request.read_timeout is not None:
            return Timeout(connect=connect, read=read)
        return configured

    def close(self) -> None:
        self._pool.clear()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Transport(verify={self.verify}, timeout={self.timeout}, "
            f"max_body_bytes={self.max_body_bytes})"
        )


#: Every Transport, for the fork hook below.
_transports: weakref.WeakSet[Transport] = weakref.WeakSet()


def _after_fork() -> None:
    for transport in list(_transports):
        transport._forget_pool()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

#: A path and query urllib3 would send unchanged: only characters it never percent-encodes
#: (a ``%`` only as an upper-case escape), no fragment.
_PLAIN_NETLOC = re.compile(r"[A-Za-z0-9.\-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")
_MAX_ORIGINS = 64
_PLAIN_TARGET = re.compile(r"(?:/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-F]{2})*)?")


def _has_dot_segment(target: str) -> bool:
    path = target.partition("?")[0]
    return "/." in path


def transport_error(request: Request, error: BaseException) -> TransportError:
    """Our error for a urllib3 failure, described without urllib3's text (it holds the URL).

    Whether the request was sent decides the class: ``ConnectError`` (``request_sent``
    False) only when the failure certainly came before the request left. urllib3 names a
    TLS failure ``SSLError`` and a TLS handshake timeout ``ReadTimeoutError`` wherever they
    happen, and over HTTPS a connection dropped after the request arrived is an SSL error
    too (unexpected EOF); so for those two the place they were raised decides.
    """
    host = urlsplit(request.url).hostname or "?"
    where = " ".join(p for p in (request.provider, request.operation) if p) or request.method
    detail = _os_detail(error)
    text: str | None = None
    kind: type[TransportError] = TransportError
    if isinstance(error, NewConnectionError):  # refused, unreachable, DNS (NameResolutionError)
        text, kind = f"could not connect to {host}{detail}", ConnectError
    elif isinstance(error, ConnectTimeoutError):
        text, kind = f"timed out connecting to {host}", ConnectTimeout
    elif isinstance(error, Urllib3ReadTimeout):
        if _raised_during_setup(error):
            text, kind = f"timed out in the TLS handshake with {host}", ConnectTimeout
        else:
            text, kind = f"timed out waiting for {host}", ReadTimeoutError
    elif isinstance(error, SSLError):
        if _raised_during_setup(error) or detail == _CERTIFICATE_REFUSED:
            text, kind = f"TLS handshake failed with {host}{detail}", ConnectError
        else:
            text = f"TLS connection broken with {host}{detail}"
    elif isinstance(error, ProtocolError):
        text = f"connection broken with {host}{detail}"
    if text is None:  # unknown: it may have reached the server (request_sent stays True)
        text = f"request to {host} failed ({type(error).__name__})"
    return kind(f"{where}: {text}", provider=request.provider, operation=request.operation)


def deadline_error(request: Request, detail: str) -> DeadlineExceededError:
    """Our error for an exchange abandoned at the request's deadline."""
    where = " ".join(p for p in (request.provider, request.operation) if p) or request.method
    host = urlsplit(request.url).hostname or "?"
    return DeadlineExceededError(
        f"{where}: no answer from {host} before the deadline ({detail})",
        provider=request.provider,
        operation=request.operation,
    )


def _deadline_text(reason: BaseException) -> str:
    if isinstance(reason, DeadlineReached) and reason.args:
        return str(reason.args[0])
    return "the server was still sending or silent"


# Functions that only run while a connection is set up (TCP connect, TLS handshake): urllib3's
# ``_validate_conn`` and ``_new_conn``, the ssl module's ``do_handshake``. An error raised
# inside one of them was raised before any byte of the request was written.
_SETUP_FRAMES = frozenset({"_validate_conn", "_new_conn", "do_handshake"})
_CERTIFICATE_REFUSED = " (certificate verify failed)"


def _raised_during_setup(error: BaseException) -> bool:
    """Whether ``error``, or the error it wraps, was raised while connecting."""
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending and len(seen) < 8:
        exc = pending.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_name in _SETUP_FRAMES:
                return True
            tb = tb.tb_next
        pending.extend(a for a in exc.args if isinstance(a, BaseException))
        pending.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)
    return False


def _os_detail(error: BaseException) -> str:
    """The OS reason ("Connection refused") found along the cause chain, if any."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            return f" ({seen.strerror})"
        if isinstance(seen, SSLError) and seen.args:
            reason = str(seen.args[0])
            if "CERTIFICATE_VERIFY_FAILED" in reason:
                return _CERTIFICATE_REFUSED
        seen = seen.__cause__ or seen.__context__
    return ""
