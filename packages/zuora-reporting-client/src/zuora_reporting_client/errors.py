"""How Zuora writes its errors, for the generated client's ApiClient.

Zuora alone has six failure shapes (see the reference's "Envelope"): a JSON envelope with
``success: false`` (sent with a 4xx, a 5xx, or a 200) whose ``response`` member is an object,
JSON in a string, or plain text; flat ``reasons``/``message``/``errorCode`` objects; an XML
``zanResponse``; an HTML page. The reader returns what it found and the runtime falls back to
the HTTP reason phrase.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from reporting_runtime import ApiError, AuthenticationError, ErrorDetails, html_title, text_value
from reporting_runtime.messages import parse_json

__all__ = ["ERROR_READER", "ZuoraErrorReader"]

_ZAN_RESPONSE = re.compile(r"<response\b([^>]*)>(.*?)</response\s*>", re.DOTALL | re.IGNORECASE)
_ZAN_ATTRIBUTE = re.compile(r"""(\w+)\s*=\s*["']([^"']*)["']""")
# Zuora codes that say more than the HTTP status they arrive with (often 200 or 400).
_CODE_CLASSES: dict[str, type[ApiError]] = {"loginFailed": AuthenticationError}


def _flat(data: Mapping[str, Any]) -> ErrorDetails:
    reasons = data.get("reasons")
    if isinstance(reasons, list) and reasons and isinstance(reasons[0], Mapping):
        first = reasons[0]
        return ErrorDetails(
            message=text_value(first.get("message")), code=text_value(first.get("code"))
        )
    return ErrorDetails(
        message=text_value(data.get("message"))
        or text_value(data.get("errorMessage"))
        or text_value(data.get("error")),
        code=text_value(data.get("errorCode")) or text_value(data.get("code")),
    )


def _inner(inner: Any) -> ErrorDetails | None:
    """The `response` member of a failed envelope: an object, or JSON in a string, or text."""
    if isinstance(inner, str):
        stripped = inner.strip()
        if stripped.startswith("{"):
            try:
                inner = parse_json(stripped)
            except ValueError:
                return ErrorDetails(message=stripped)
        else:
            return ErrorDetails(message=stripped) if stripped else None
    if isinstance(inner, Mapping):
        return _flat(inner)
    return None


def _read(data: Any, text: str) -> ErrorDetails | None:
    if isinstance(data, Mapping):
        if "response" in data and (data.get("success") is False or not data.get("response")):
            found = _inner(data.get("response"))
            if found is not None and (found.message or found.code):
                return found
        found = _flat(data)
        return found if (found.message or found.code) else None
    if "<zanresponse" in text[:500].lower():
        match = _ZAN_RESPONSE.search(text)
        if match is None:
            return None
        attributes = dict(_ZAN_ATTRIBUTE.findall(match.group(1)))
        found = _inner(html.unescape(match.group(2))) or ErrorDetails()
        return ErrorDetails(
            message=found.message or attributes.get("message"),
            code=found.code or attributes.get("errorCode"),
        )
    title = html_title(text)
    return ErrorDetails(message=title) if title else None


class ZuoraErrorReader:
    """Every Zuora failure shape; a 200 whose envelope says ``success: false`` is one too."""

    checks_success = True

    def read(self, status: int, data: Any, text: str) -> ErrorDetails | None:
        found = _read(data, text)
        if found is not None and found.code in _CODE_CLASSES:
            return ErrorDetails(
                message=found.message,
                code=found.code,
                param=found.param,
                error_type=found.error_type,
                error_class=_CODE_CLASSES[found.code],
            )
        return found

    def failed(self, data: Any) -> bool:
        return isinstance(data, Mapping) and data.get("success") is False

    def __repr__(self) -> str:
        return "ZuoraErrorReader()"


ERROR_READER = ZuoraErrorReader()
