"""Reading the providers' error bodies into ApiError, one reader per `error_format`.

Zuora alone has six failure shapes (see the reference's "Envelope"); each reader returns
what it found and the caller falls back to the HTTP reason phrase, so a body we cannot
read still becomes the right ApiError subclass, never a parser traceback.
"""

from __future__ import annotations

import html
import http
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from reporting_runtime.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    RateLimitError,
    api_error_class,
)
from reporting_runtime.messages import Response, body_excerpt
from reporting_runtime.redaction import scrub_text
from reporting_runtime.retry import parse_retry_after

__all__ = ["ErrorFormat", "api_error", "is_zuora_failure"]

ErrorFormat = Literal["stripe", "stripe-v2", "zuora"]

_ZAN_RESPONSE = re.compile(r"<response\b([^>]*)>(.*?)</response\s*>", re.DOTALL | re.IGNORECASE)
_ZAN_ATTRIBUTE = re.compile(r"""(\w+)\s*=\s*["']([^"']*)["']""")
_HTML_TITLE = re.compile(r"<(title|h1)\b[^>]*>(.*?)</\1\s*>", re.DOTALL | re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")
# Zuora codes that say more than the HTTP status they arrive with (often 200 or 400).
_ZUORA_CODE_CLASSES: dict[str, type[ApiError]] = {"loginFailed": AuthenticationError}


@attrs.frozen
class _Found:
    message: str | None = None
    code: str | None = None
    param: str | None = None
    error_type: str | None = None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    text = str(value).strip()
    return text or None


def _stripe(data: Any) -> _Found | None:
    error = data.get("error") if isinstance(data, Mapping) else None
    if not isinstance(error, Mapping):
        return None
    return _Found(
        message=_text(error.get("message")) or _text(error.get("user_message")),
        code=_text(error.get("code")),
        param=_text(error.get("param")),
        error_type=_text(error.get("type")),
    )


def _zuora_flat(data: Mapping[str, Any]) -> _Found:
    reasons = data.get("reasons")
    if isinstance(reasons, list) and reasons and isinstance(reasons[0], Mapping):
        first = reasons[0]
        return _Found(message=_text(first.get("message")), code=_text(first.get("code")))
    return _Found(
        message=_text(data.get("message"))
        or _text(data.get("errorMessage"))
        or _text(data.get("error")),
        code=_text(data.get("errorCode")) or _text(data.get("code")),
    )


def _zuora_inner(inner: Any) -> _Found | None:
    """The `response` member of a failed envelope: an object, or JSON in a string, or text."""
    if isinstance(inner, str):
        stripped = inner.strip()
        if stripped.startswith("{"):
            try:
                inner = json.loads(stripped)
            except ValueError:
                return _Found(message=stripped)
        else:
            return _Found(message=stripped) if stripped else None
    if isinstance(inner, Mapping):
        return _zuora_flat(inner)
    return None


def _zuora(data: Any, text: str) -> _Found | None:
    if isinstance(data, Mapping):
        if "response" in data and (data.get("success") is False or not data.get("response")):
            found = _zuora_inner(data.get("response"))
            if found is not None and (found.message or found.code):
                return found
        found = _zuora_flat(data)
        return found if (found.message or found.code) else None
    if "<zanresponse" in text[:500].lower():
        match = _ZAN_RESPONSE.search(text)
        if match is None:
            return None
        attributes = dict(_ZAN_ATTRIBUTE.findall(match.group(1)))
        found = _zuora_inner(html.unescape(match.group(2)))
        if found is None:
            found = _Found()
        return _Found(
            message=found.message or attributes.get("message"),
            code=found.code or attributes.get("errorCode"),
        )
    return _html(text)


def _html(text: str) -> _Found | None:
    head = text[:200].lower()
    if "<html" not in head and "<!doctype" not in head:
        return None
    match = _HTML_TITLE.search(text)
    if match is None:
        return None
    title = " ".join(html.unescape(_TAGS.sub(" ", match.group(2))).split())
    return _Found(message=title) if title else None


def is_zuora_failure(data: Any) -> bool:
    """A Zuora envelope that says it failed, whatever the HTTP status (200 happens)."""
    return isinstance(data, Mapping) and data.get("success") is False


def api_error(response: Response, body: bytes, error_format: ErrorFormat) -> ApiError:
    """The ApiError subclass for an error response (or a Zuora 200 with success false)."""
    status = response.status
    data: Any = None
    text = ""  # read only when the body is not JSON (an XML or HTML page)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body[:65536].decode("utf-8", errors="replace")
    found = _zuora(data, text) if error_format == "zuora" else _stripe(data) or _html(text)
    found = found or _Found()

    cls = api_error_class(status)
    if found.code in _ZUORA_CODE_CLASSES and error_format == "zuora":
        cls = _ZUORA_CODE_CLASSES[found.code]
    elif status < 400:
        cls = BadRequestError
    message = found.message or _reason(status)
    kwargs: dict[str, Any] = {
        "status": status,
        "message": scrub_text(" ".join(message.split()))[:500],
        "code": found.code,
        "param": found.param,
        "error_type": found.error_type,
        "request_id": response.request_id,
        "track_id": response.track_id,
        "provider": response.request.provider,
        "operation": response.request.operation,
        "raw_body_excerpt": body_excerpt(body),
    }
    if cls is RateLimitError:
        retry_after = response.headers.get("Retry-After") or response.headers.get("RateLimit-Reset")
        kwargs["retry_after"] = parse_retry_after(retry_after) if retry_after else None
    return cls(**kwargs)


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "error"
