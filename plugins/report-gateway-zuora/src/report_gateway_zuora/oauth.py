"""Zuora's OAuth (client credentials) as a runtime ``AuthPolicy``: a bearer token fetched
with ``create_token``, cached per credential for the whole process, renewed shortly before
it expires and once after a 401.

Why process-wide: Zuora rate-limits ``POST /oauth/token`` by IP address and asks for each
token to be used until it expires, so two Gateways (or a CLI run per report in one worker)
with the same OAuth client share one token. The cache key is the token endpoint and the
core's ``credential_id`` of the client id and secret (a hash: the cache holds no secret in
its keys). The token never reaches a log record, a repr or an exception message:
``secret_values`` gives it (and the client secret) to every scrubber.

Why the token call carries a deadline: it happens inside another request (the first one, or
the one after a 401), so a token endpoint that never answers, or trickles bytes, would hold
that request past the caller's deadline (``Request.deadline``) and, without one, forever (a
trickle resets every read timeout). The fetch ends by the request's deadline, and never later
than ``TOKEN_TIMEOUT`` seconds after it began; a request waiting for another thread's fetch
of the same token waits no longer than that either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import attrs
from report_gateway.provider import credential_id
from reporting_runtime import AuthPolicy, ReportingError, Request, Response
from reporting_runtime.errors import DeadlineExceededError
from reporting_runtime.messages import with_header
from reporting_runtime.redaction import Scrubber, scrub_error

if TYPE_CHECKING:
    from reporting_runtime import RetryConfig, Transport
    from reporting_runtime.pipeline import SendFn

__all__ = [
    "REFRESH_MARGIN",
    "TOKEN_TIMEOUT",
    "OAuthClientCredentials",
    "TokenCache",
    "refresh_margin",
]

#: A token is renewed this long before Zuora says it expires (a request in flight when it
#: expires would be refused); short-lived tokens are renewed at 90 % of their life.
REFRESH_MARGIN = 60.0

#: The longest a token fetch may take, retries included, when the request it serves has no
#: earlier deadline (``time.monotonic`` seconds from the start of the fetch).
TOKEN_TIMEOUT = 60.0


def refresh_margin(expires_in: float) -> float:
    """How long before its end a token of ``expires_in`` seconds counts as expired."""
    return min(REFRESH_MARGIN, max(0.0, expires_in) * 0.1)


@attrs.frozen
class _Token:
    value: str = attrs.field(repr=False)
    renew_at: float  # monotonic


class TokenCache:
    """Tokens by (token endpoint, credential id); one fetch at a time per key, so threads
    asking together get the same token (the endpoint is rate limited)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenCache(size={len(self._tokens)})"

    def current(self, key: tuple[str, str]) -> str | None:
        """The cached token if it is still fresh (no fetch)."""
        token = self._tokens.get(key)
        if token is None or self._clock() >= token.renew_at:
            return None
        return token.value

    def held(self, key: tuple[str, str]) -> str | None:
        """The cached token, fresh or not (what a server may still echo)."""
        token = self._tokens.get(key)
        return None if token is None else token.value

    def get(
        self,
        key: tuple[str, str],
        fetch: Callable[[], tuple[str, float]],
        *,
        stale: str | None = None,
        deadline: float | None = None,
    ) -> str:
        """A fresh token for ``key``; ``fetch`` (-> token, expires_in) when there is none,
        or when the cached one is ``stale`` (refused with a 401). ``deadline``
        (``time.monotonic`` seconds) bounds the wait for another thread's fetch of the same
        key: a ``DeadlineExceededError`` past it."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        if deadline is None:
            lock.acquire()
        elif not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise DeadlineExceededError(
                "zuora create_token: another request's token fetch did not end before the deadline",
                provider="zuora",
                operation="create_token",
            )
        try:
            token = self._tokens.get(key)
            if token is not None and token.value != stale and self._clock() < token.renew_at:
                return token.value
            asked = self._clock()
            value, expires_in = fetch()
            self._tokens[key] = _Token(value, asked + expires_in - refresh_margin(expires_in))
            return value
        finally:
            lock.release()

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


#: The process's tokens (see the module docstring).
TOKENS = TokenCache()


class OAuthClientCredentials(AuthPolicy):
    """``Authorization: Bearer`` with a token from Zuora's ``create_token``.

    Built from the credentials alone (the gateway's auth hook knows no host), then ``bind``
    tells it the token endpoint and the connection pool once the driver knows the host; the
    token is fetched on the first request, on a client built without credentials (the token
    call must carry none). A 401 renews the token once and sends the request once more.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        cache: TokenCache = TOKENS,
        token_timeout: float = TOKEN_TIMEOUT,
    ) -> None:
        if token_timeout <= 0:
            raise ValueError(f"token_timeout must be positive, got {token_timeout}")
        self.client_id = client_id
        self._client_secret = client_secret
        self._cache = cache
        self.token_timeout = token_timeout
        self._oauth_base_url: str | None = None
        self._token_client: Callable[[float], tuple[str, float]] | None = None
        self._key: tuple[str, str] | None = None

    def __repr__(self) -> str:
        return f"OAuthClientCredentials(token_url={self.token_url!r})"

    @property
    def token_url(self) -> str | None:
        return None if self._oauth_base_url is None else self._oauth_base_url + "/oauth/token"

    def bind(
        self,
        oauth_base_url: str,
        *,
        transport: Transport | None = None,
        retry: RetryConfig | None = None,
        user_agent: str | None = None,
    ) -> None:
        """Where tokens come from (the REST host root) and through which pool."""
        from zuora_reporting_client import USER_AGENT, Client, models

        root = oauth_base_url.rstrip("/")
        client = Client(
            oauth_base_url=root,
            transport=transport,
            retry=retry,
            user_agent=user_agent or USER_AGENT,
        )
        body = models.CreateTokenRequest(
            client_id=self.client_id,
            client_secret=self._client_secret,
            grant_type=models.CreateTokenRequestGrantType.CLIENT_CREDENTIALS,
        )
        scrubber = Scrubber(self.secret_values)

        def fetch(deadline: float) -> tuple[str, float]:
            try:
                answer = client.create_token(body=body, deadline=deadline)
            except ReportingError as exc:
                # The token client holds no auth policy, so nothing hid the secret yet.
                raise scrub_error(exc, scrubber) from None
            return answer.access_token, float(answer.expires_in)

        self._oauth_base_url = root
        self._token_client = fetch
        self._key = (
            root,
            credential_id({"client_id": self.client_id, "client_secret": self._client_secret}),
        )

    def _bound(self) -> tuple[tuple[str, str], Callable[[float], tuple[str, float]]]:
        if self._key is None or self._token_client is None:
            raise RuntimeError("OAuthClientCredentials.bind() was not called")
        return self._key, self._token_client

    def token(self, *, stale: str | None = None, deadline: float | None = None) -> str:
        """The current token, fetched if needed by ``deadline`` (``time.monotonic``
        seconds, the request's) and within ``token_timeout`` seconds in any case."""
        key, fetch = self._bound()
        limit = time.monotonic() + self.token_timeout
        if deadline is not None:
            limit = min(limit, deadline)
        return self._cache.get(key, lambda: fetch(limit), stale=stale, deadline=limit)

    # -- AuthPolicy ---------------------------------------------------------------------------

    @property
    def secret_header_names(self) -> frozenset[str]:
        return frozenset({"Authorization"})

    def auth_headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def secret_values(self) -> frozenset[str]:
        values = {self._client_secret}
        if self._key is not None:
            held = self._cache.held(self._key)
            if held:
                values.add(held)
        return frozenset(values)

    def send(self, request: Request, next: SendFn) -> Response:
        token = self.token(deadline=request.deadline)
        response = next(_with_bearer(request, token))
        if response.status != 401:
            return response
        # Expired early, revoked, or renewed elsewhere: one new token, one more try.
        response.close()
        fresh = self.token(stale=token, deadline=request.deadline)
        return next(_with_bearer(request, fresh))


def _with_bearer(request: Request, token: str) -> Request:
    return attrs.evolve(
        request, headers=with_header(request.headers, "Authorization", f"Bearer {token}")
    )
