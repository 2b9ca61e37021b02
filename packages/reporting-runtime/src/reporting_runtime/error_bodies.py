"""Turning an error response into an ApiError: the runtime's half of the job.

Each API writes its failures its own way (an ``{"error": {...}}`` object, an envelope that
says ``success: false`` with a 200, an XML or HTML page), so the reading belongs to the
client that knows the API: a generated client passes its own ``ErrorReader`` (written beside
its ``_generated/`` folder). The runtime only turns what the reader found into the right
ApiError subclass, falling back to the HTTP reason phrase, so a body nobody can read still
becomes a useful error, never a parser traceback.
"""

from __future__ import annotations

import html
import http
import re
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from reporting_runtime.errors import ApiError, BadRequestError, RateLimitError, api_error_class
from reporting_runtime.messages import Response, body_excerpt, parse_json
from reporting_runtime.retry import parse_retry_after

__all__ = [
    "ErrorDetails",
    "ErrorReader",
    "JsonErrorReader",
    "api_error",
    "html_title",
    "text_value",
]

_HTML_TITLE = re.compile(r"<(title|h1)\b[^>]*>(.*?)</\1\s*>", re.DOTALL | re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")


@attrs.frozen(kw_only=True)
class ErrorDetails:
    """What a reader found in an error body; anything left None falls back to the status.

    ``error_class`` names a kind the status does not tell (an API that reports a failed
    login with a 200 or a 400, say); None means "by HTTP status".
    """

    message: str | None = None
    code: str | None = None
    param: str | None = None
    error_type: str | None = None
    error_class: type[ApiError] | None = None


class ErrorReader(Protocol):
    """How one API writes its failures. A generated client passes its own to ApiClient.

    ``checks_success`` says whether a 2xx answer may still be a failure (an envelope with
    ``success: false``); only then does the client read 2xx JSON bodies and ask ``failed``.
    """

    @property
    def checks_success(self) -> bool: ...

    def read(self, status: int, data: Any, text: str) -> ErrorDetails | None:
        """What the body says: ``data`` is the parsed JSON (None when the body is not JSON),
        ``text`` the body as text when it is not JSON (an XML or HTML page), else ""."""
        ...

    def failed(self, data: Any) -> bool:
        """Whether a 2xx JSON body nevertheless reports a failure (then it is read as one)."""
        ...


def text_value(value: Any) -> str | None:
    """A scalar as stripped text; objects, lists, blanks and None as None."""
    if value is None or isinstance(value, Mapping | list):
        return None
    text = str(value).strip()
    return text or None


def html_title(text: str) -> str | None:
    """The title (or first h1) of an HTML page: what a proxy's or gateway's error page says."""
    head = text[:200].lower()
    if "<html" not in head and "<!doctype" not in head:
        return None
    match = _HTML_TITLE.search(text)
    if match is None:
        return None
    title = " ".join(html.unescape(_TAGS.sub(" ", match.group(2))).split())
    return title or None


@attrs.frozen
class JsonErrorReader:
    """The common shape: ``{"error": {"message", "code", "param", "type"}}``, or ``message``
    and ``code`` at the top; an HTML page gives its title. ``failed`` is always False.

    The default for a client that declares no reader of its own.
    """

    checks_success: bool = attrs.field(default=False, init=False)

    def read(self, status: int, data: Any, text: str) -> ErrorDetails | None:
        if isinstance(data, Mapping):
            error = data.get("error")
            if isinstance(error, Mapping):
                return ErrorDetails(
                    message=text_value(error.get("message")),
                    code=text_value(error.get("code")),
                    param=text_value(error.get("param")),
                    error_type=text_value(error.get("type")),
                )
            found = ErrorDetails(
                message=text_value(data.get("message")) or text_value(error),
                code=text_value(data.get("code")),
            )
            return found if (found.message or found.code) else None
        title = html_title(text)
        return ErrorDetails(message=title) if title else None

    def failed(self, data: Any) -> bool:
        return False


def api_error(response: Response, body: bytes, reader: ErrorReader) -> ApiError:
    """The ApiError subclass for an error response (or a 2xx the reader calls a failure)."""
    status = response.status
    data: Any = None
    text = ""  # read only when the body is not JSON (an XML or HTML page)
    scrub = response.request.scrubber
    try:
        data = parse_json(body)
    except (ValueError, UnicodeDecodeError):
        text = body[:65536].decode("utf-8", errors="replace")
    found = reader.read(status, data, text) or ErrorDetails()

    cls = api_error_class(status)
    if found.error_class is not None:
        cls = found.error_class
    elif status < 400:
        cls = BadRequestError
    message = found.message or _reason(status)
    kwargs: dict[str, Any] = {
        "status": status,
        "message": scrub(" ".join(message.split()))[:500],
        "code": found.code,
        "param": found.param,
        "error_type": found.error_type,
        "request_id": response.request_id,
        "track_id": response.track_id,
        "provider": response.request.provider,
        "operation": response.request.operation,
        "raw_body_excerpt": body_excerpt(body, scrub=scrub),
    }
    if issubclass(cls, RateLimitError):
        retry_after = response.headers.get("Retry-After") or response.headers.get("RateLimit-Reset")
        kwargs["retry_after"] = parse_retry_after(retry_after) if retry_after else None
    return cls(**kwargs)


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "error"
