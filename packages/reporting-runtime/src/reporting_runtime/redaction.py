"""What may appear in logs and error messages: an allow-list of headers, a deny-list of
query keys, and a scrubber for key-shaped strings that providers echo back.

Allow-list for headers (azure-core's choice): a header we did not think about is hidden,
which fails safe when a provider or a plugin adds a credential header we never heard of.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

__all__ = [
    "LOGGABLE_HEADERS",
    "REDACTED",
    "redact_headers",
    "redact_url",
    "scrub_text",
]

REDACTED = "REDACTED"

LOGGABLE_HEADERS: frozenset[str] = frozenset(
    name.lower()
    for name in (
        "Accept",
        "Accept-Encoding",
        "Cache-Control",
        "Connection",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "Date",
        "ETag",
        "Idempotency-Key",
        "Last-Modified",
        "Location",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "Request-Id",
        "Retry-After",
        "Server",
        "Stripe-Account",
        "Stripe-Context",
        "Stripe-Should-Retry",
        "Stripe-Version",
        "Transfer-Encoding",
        "User-Agent",
        "Zuora-Request-Id",
        "Zuora-Track-Id",
        "entityId",
        "entityName",
        "Original-Request",
        "Idempotent-Replayed",
    )
)

_SECRET_QUERY_KEY = re.compile(
    r"key|token|secret|sig|password|passwd|credential|auth|session|^code$|^x-amz-|^x-goog-",
    re.IGNORECASE,
)
# Stripe keys (sk_live_..., rk_test_..., whsec_...) and bearer tokens that providers echo.
_KEY_SHAPED = re.compile(
    r"\b((?:sk|rk|pk)_(?:live|test)_|whsec_)[A-Za-z0-9]{4,}|(?i:bearer\s+)[A-Za-z0-9._~+/=-]{8,}"
)


def redact_url(url: str) -> str:
    """The URL with credentials in the user-info and secret-looking query values hidden.

    Pre-signed download URLs (X-Amz-Signature, ...) carry the credential in the query, so
    the query is filtered key by key rather than dropped: `limit=10` stays readable.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            f"{quote(key, safe='[]')}="
            + (REDACTED if _SECRET_QUERY_KEY.search(key) else quote(value, safe=""))
            for key, value in pairs
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_headers(
    headers: Mapping[str, str], *, secret_names: Iterable[str] = ()
) -> dict[str, str]:
    """Header values from the allow-list (minus any known secret), others as "REDACTED"."""
    secrets = {name.lower() for name in secret_names}
    shown: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in LOGGABLE_HEADERS and lower not in secrets:
            shown[name] = redact_url(value) if lower == "location" else value
        else:
            shown[name] = REDACTED
    return shown


def scrub_text(text: str) -> str:
    """Hide key-shaped substrings (a provider may echo a key in an error body)."""
    return _KEY_SHAPED.sub(lambda m: (m.group(1) or "Bearer ") + REDACTED, text)
