"""How Stripe writes its errors (v1 and v2 alike), for the generated clients' ApiClient.

Stripe answers ``{"error": {"type", "code", "message", "param", ...}}`` with a 4xx or 5xx;
v2 may carry only ``user_message``. Anything else in front of Stripe (a proxy, a load
balancer) sends an HTML page, whose title is the best message there is. No 2xx is a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reporting_runtime import ErrorDetails, html_title, text_value

__all__ = ["ERROR_READER", "StripeErrorReader"]


class StripeErrorReader:
    """Reads Stripe's ``error`` object (the codegen target names it for both Stripe APIs)."""

    checks_success = False

    def read(self, status: int, data: Any, text: str) -> ErrorDetails | None:
        error = data.get("error") if isinstance(data, Mapping) else None
        if isinstance(error, Mapping):
            return ErrorDetails(
                message=text_value(error.get("message")) or text_value(error.get("user_message")),
                code=text_value(error.get("code")),
                param=text_value(error.get("param")),
                error_type=text_value(error.get("type")),
            )
        title = html_title(text)
        return ErrorDetails(message=title) if title else None

    def failed(self, data: Any) -> bool:
        return False

    def __repr__(self) -> str:
        return "StripeErrorReader()"


ERROR_READER = StripeErrorReader()
