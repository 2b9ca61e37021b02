"""The error hierarchy: what a caller catches, and what support needs to find the request.

Messages carry provider, operation, status, the provider's code and message, and the
request ids; never a header value, a key, or a query string.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "BodyTooLargeError",
    "ConflictError",
    "ConnectError",
    "ConnectTimeout",
    "DeadlineExceededError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ReadTimeoutError",
    "ReportingError",
    "ResponseFormatError",
    "ServerError",
    "TransportError",
    "api_error_class",
]


class ReportingError(Exception):
    """Base of every error this runtime raises, so callers can catch one type."""


class TransportError(ReportingError):
    """No usable HTTP response: connection refused, DNS, TLS, timeout (after any retries).

    ``request_sent`` says whether the request may have reached the server. It is False only
    when it certainly did not (then the error is a ``ConnectError``), so a caller deciding
    whether a POST without an idempotency key may have taken effect can fail at once on a
    refused connection and look for the effect only when the answer was lost on the way back.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        operation: str = "",
        request_sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.operation = operation
        self.request_sent = request_sent


class ConnectError(TransportError):
    """The connection was never set up (refused, DNS failure, connect timeout, TLS handshake
    refused): not a byte of the request was sent, so nothing can have happened server-side."""

    def __init__(self, message: str, *, provider: str = "", operation: str = "") -> None:
        super().__init__(message, provider=provider, operation=operation, request_sent=False)


class ConnectTimeout(ConnectError):
    """The connection (or its TLS handshake) could not be set up in time; nothing was sent."""


class ReadTimeoutError(TransportError):
    """The server accepted the request but did not answer in time: it may have acted on it."""


class DeadlineExceededError(TransportError):
    """The caller's deadline (``deadline=`` on a request) passed, or a retry would have to
    wait past it (a ``Retry-After`` longer than the time left): the exchange was abandoned
    at the deadline. The request may have reached the server."""


class ResponseFormatError(ReportingError):
    """A body that does not have the promised shape (bad JSON, a model field missing)."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        operation: str = "",
        status: int | None = None,
        excerpt: str = "",
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.operation = operation
        self.status = status
        self.excerpt = excerpt


class BodyTooLargeError(ResponseFormatError):
    """An answer read into memory (a JSON body, an error page) is larger than the
    transport's ``max_body_bytes``; reading stopped there and the connection was dropped."""

    def __init__(self, message: str, *, limit: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.limit = limit


class ApiError(ReportingError):
    """The provider answered with an error. Subclasses say which kind, by HTTP status."""

    def __init__(
        self,
        *,
        status: int,
        message: str,
        code: str | None = None,
        request_id: str | None = None,
        track_id: str | None = None,
        provider: str = "",
        operation: str = "",
        param: str | None = None,
        error_type: str | None = None,
        raw_body_excerpt: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.track_id = track_id
        self.provider = provider
        self.operation = operation
        self.param = param
        self.error_type = error_type
        self.raw_body_excerpt = raw_body_excerpt
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = " ".join(part for part in (self.provider, self.operation) if part)
        head = f"{where}: HTTP {self.status}" if where else f"HTTP {self.status}"
        if self.code:
            head += f" {self.code}"
        text = f"{head}: {self.message}"
        if self.param:
            text += f" (parameter {self.param})"
        ids = []
        if self.request_id:
            ids.append(f"request id {self.request_id}")
        if self.track_id:
            ids.append(f"track id {self.track_id}")
        if ids:
            text += f" ({', '.join(ids)})"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only __init__: pickling (multiprocessing, pytest-xdist) needs the kwargs.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[ApiError], state: dict[str, object]) -> ApiError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error._describe())
    return error


class BadRequestError(ApiError):
    """400 / 422: the request was wrong; retrying it unchanged will fail again."""


class AuthenticationError(ApiError):
    """401: missing, wrong or expired credentials."""


class PermissionDeniedError(ApiError):
    """403: the credentials are valid but may not do this (key permissions, account scope)."""


class NotFoundError(ApiError):
    """404: no such object (or not visible to this key / entity / account)."""


class ConflictError(ApiError):
    """409: a concurrent change or an idempotency-key reuse with different parameters."""


class RateLimitError(ApiError):
    """429: too many requests or too many concurrent runs; `retry_after` in seconds if sent."""

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(**kwargs)


class ServerError(ApiError):
    """5xx: the provider failed; usually worth retrying later."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def api_error_class(status: int) -> type[ApiError]:
    """The most specific ApiError subclass for an HTTP status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)
