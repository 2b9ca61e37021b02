"""The small request policies: user agent, default headers, idempotency key, redirects,
and the redacting logger. Retry lives in retry.py, auth in auth.py."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urljoin, urlsplit

from reporting_runtime.errors import ReportingError
from reporting_runtime.messages import Request, Response, with_header
from reporting_runtime.pipeline import Policy, SendFn
from reporting_runtime.redaction import Scrubber, redact_headers, redact_url

__all__ = [
    "HeadersPolicy",
    "IdempotencyKeyPolicy",
    "LoggingPolicy",
    "RedirectPolicy",
    "UserAgentPolicy",
]


class HeadersPolicy(Policy):
    """Default headers (an API version header, scope headers, ...). A header the request already
    carries wins; a None value means "do not send"."""

    def __init__(self, headers: Mapping[str, str | None]) -> None:
        self.headers = {name: value for name, value in headers.items() if value is not None}

    def on_request(self, request: Request) -> Request:
        missing = {n: v for n, v in self.headers.items() if request.header(n) is None}
        if not missing:
            return request
        return request.evolve(headers={**request.headers, **missing})


class UserAgentPolicy(HeadersPolicy):
    """Sets User-Agent unless the request already has one (a caller's own wins): one
    default header, named so the client identifies itself whatever the other defaults."""

    def __init__(self, user_agent: str) -> None:
        super().__init__({"User-Agent": user_agent})
        self.user_agent = user_agent


class IdempotencyKeyPolicy(Policy):
    """Gives every POST without one a fresh uuid4 key in ``header`` (the API's own name for
    it, ``Idempotency-Key`` by default) and marks the request ``idempotent``.

    It sits above the retry policy, so all retries of one call carry the same key and the
    provider can recognise a repeat; the mark is also what lets RetryPolicy retry a POST.
    A key the caller set is kept.
    """

    def __init__(
        self, methods: Iterable[str] = ("POST",), *, header: str = "Idempotency-Key"
    ) -> None:
        self.methods = frozenset(m.upper() for m in methods)
        self.header = header

    def on_request(self, request: Request) -> Request:
        if request.method.upper() not in self.methods:
            return request
        if request.header(self.header):
            return request.evolve(idempotent=True)
        return request.evolve(
            headers={**request.headers, self.header: str(uuid.uuid4())}, idempotent=True
        )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


class RedirectPolicy(Policy):
    """Follows redirects itself, because the transport never does.

    Same origin (scheme, host, port): followed as is, at most `max_redirects` times. Another
    origin: refused (a ``ReportingError`` naming the target, nothing sent there). An answer
    is vouched for by the host the client was configured for; bytes fetched from wherever
    that host points would be saved as the provider's result without anyone having
    authenticated them, and no reporting API needs such a hop. ``cross_origin=True`` follows
    them instead, after removing Authorization, Cookie and every credential header the auth
    policies named, so a key is still never handed to a host it was not meant for. An https
    -> http downgrade is never followed.
    """

    ALWAYS_SECRET = frozenset({"authorization", "proxy-authorization", "cookie"})

    def __init__(
        self,
        *,
        max_redirects: int = 3,
        secret_headers: Iterable[str] = (),
        cross_origin: bool = False,
    ) -> None:
        self.max_redirects = max_redirects
        self.secret_headers = self.ALWAYS_SECRET | {h.lower() for h in secret_headers}
        self.cross_origin = cross_origin

    def send(self, request: Request, next: SendFn) -> Response:
        response = next(request)
        hops = 0
        while response.status in (301, 302, 303, 307, 308):
            location = response.headers.get("Location")
            if not location:
                return response
            if hops >= self.max_redirects:
                response.close()
                raise ReportingError(
                    f"{request.provider} {request.operation}: more than "
                    f"{self.max_redirects} redirects"
                )
            try:
                target = urljoin(request.url, location)
                _origin(target)  # a port out of range, a broken IPv6 host: not followed
            except ValueError:
                response.close()
                raise ReportingError(
                    f"{request.provider} {request.operation}: refused a redirect (HTTP "
                    f"{response.status}) to an unreadable Location"
                ) from None
            if urlsplit(request.url).scheme == "https" and urlsplit(target).scheme != "https":
                response.close()
                raise ReportingError(
                    f"{request.provider} {request.operation}: refused a redirect from https "
                    f"to {redact_url(target)}"
                )
            if not self.cross_origin and _origin(target) != _origin(request.url):
                response.close()
                raise ReportingError(
                    f"{request.provider} {request.operation}: refused a redirect (HTTP "
                    f"{response.status}) to another host, {redact_url(target)}: an answer is "
                    "only taken from the host it was asked of"
                )
            request = self._follow(request, response.status, target)
            response.close()
            hops += 1
            response = next(request)
        return response

    def _follow(self, request: Request, status: int, target: str) -> Request:
        method, body, headers = request.method, request.body, dict(request.headers)
        if status == 303 or (status in (301, 302) and method.upper() == "POST"):
            method, body = ("HEAD" if method.upper() == "HEAD" else "GET"), None
            for name in ("Content-Type", "Content-Length"):
                headers = with_header(headers, name, None)
        if _origin(target) != _origin(request.url):
            headers = {k: v for k, v in headers.items() if k.lower() not in self.secret_headers}
        return request.evolve(method=method, url=target, body=body, headers=headers)


class LoggingPolicy(Policy):
    """Logs each exchange at DEBUG: method, URL without query secrets, status, elapsed
    time, request id, and headers from an allow-list (any other value is "REDACTED").

    The allow-list is the runtime's standard headers plus ``loggable_headers`` (the API's
    own, from its spec); every text logged also passes ``scrubber`` (the client's held
    secrets), so a server echoing a key in an allowed header cannot get it logged.
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        secret_headers: Iterable[str] = (),
        loggable_headers: Iterable[str] = (),
        scrubber: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.logger = logger or logging.getLogger("reporting_runtime.http")
        self.secret_headers = frozenset(h.lower() for h in secret_headers)
        self.loggable_headers = frozenset(h.lower() for h in loggable_headers)
        self._scrub = scrubber or Scrubber()
        self._clock = clock

    def _shown(self, headers: Mapping[str, str]) -> dict[str, str]:
        shown = redact_headers(
            headers, secret_names=self.secret_headers, loggable=self.loggable_headers
        )
        return {name: self._scrub(value) for name, value in shown.items()}

    def send(self, request: Request, next: SendFn) -> Response:
        log = self.logger
        if not log.isEnabledFor(logging.DEBUG):
            return next(request)
        url = self._scrub(redact_url(request.url))
        log.debug(
            "-> %s %s headers=%s",
            request.method,
            url,
            self._shown(request.headers),
        )
        started = self._clock()
        try:
            response = next(request)
        except Exception as exc:
            log.debug(
                "<- %s %s failed after %.1f ms: %s",
                request.method,
                url,
                (self._clock() - started) * 1000,
                type(exc).__name__,
            )
            raise
        log.debug(
            "<- %s %s %d in %.1f ms (request id %s) headers=%s",
            request.method,
            url,
            response.status,
            (self._clock() - started) * 1000,
            self._scrub(response.request_id or "None"),
            self._shown(response.headers),
        )
        return response
