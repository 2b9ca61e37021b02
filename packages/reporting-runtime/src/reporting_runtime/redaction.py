"""What may appear in logs and error messages: an allow-list of headers, a deny-list of
query keys, and a scrubber for the secrets a server may echo back.

Allow-list for headers (azure-core's choice): a header we did not think about is hidden,
which fails safe when a provider or a plugin adds a credential header we never heard of.
The runtime knows only the standard headers; a generated client adds the ones its spec
declares safe to log (``x-loggable-headers``).

The scrubber hides the exact values the client holds (an auth policy's ``secret_values``:
keys, passwords, tokens), whatever their shape, plus key-shaped strings it cannot know.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit, urlunsplit

__all__ = [
    "LOGGABLE_HEADERS",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "Scrubber",
    "redact_headers",
    "redact_url",
    "scrub_error",
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
        "Transfer-Encoding",
        "User-Agent",
    )
)

_SECRET_QUERY_KEY = re.compile(
    r"key|token|secret|sig|password|passwd|credential|auth|session|^code$|^x-amz-|^x-goog-",
    re.IGNORECASE,
)
# Key-shaped strings a server may echo that this process may not hold (a secret or
# restricted key "sk_live_...", "rk_test_...", a webhook secret "whsec_...") and bearer tokens.
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
    headers: Mapping[str, str],
    *,
    secret_names: Iterable[str] = (),
    loggable: Iterable[str] = (),
) -> dict[str, str]:
    """Header values from the allow-list (the standard one plus ``loggable``, the API's own,
    minus any known secret), others as "REDACTED"."""
    secrets = {name.lower() for name in secret_names}
    allowed = LOGGABLE_HEADERS | {name.lower() for name in loggable}
    shown: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in allowed and lower not in secrets:
            shown[name] = redact_url(value) if lower == "location" else value
        else:
            shown[name] = REDACTED
    return shown


#: Shorter values are not hunted for in text: replacing every "ab" would make messages
#: unreadable and such a value protects nothing.
MIN_SECRET_LENGTH = 4


def _spellings(secret: str) -> set[str]:
    """The ways a server may echo ``secret``: as is, JSON-escaped, percent-encoded."""
    forms = {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class Scrubber:
    """Hides the exact secrets a client holds, then key-shaped strings, in any text.

    ``secrets`` is a callable asked on every use, so a credential that changes (a refreshed
    OAuth token) is hidden from the moment it exists; an ``AuthPolicy``'s ``secret_values``
    fits. Longest first, so a secret containing another is hidden whole.
    """

    def __init__(self, secrets: Callable[[], Iterable[str]] | Iterable[str] = ()) -> None:
        if callable(secrets):
            self._source: Callable[[], Iterable[str]] = secrets
        else:
            fixed = tuple(secrets)
            self._source = lambda: fixed

    def secrets(self) -> list[str]:
        """Every spelling of every held secret, longest first."""
        forms: set[str] = set()
        for secret in self._source():
            if isinstance(secret, str) and len(secret) >= MIN_SECRET_LENGTH:
                forms |= _spellings(secret)
        return sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets():
            if secret in text:
                text = text.replace(secret, REDACTED)
        return scrub_text(text)

    def __repr__(self) -> str:
        return "Scrubber()"


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Hide ``secrets`` (exact values, see ``Scrubber``) and key-shaped substrings."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len)[::-1]:
        text = text.replace(secret, REDACTED)
    return _KEY_SHAPED.sub(lambda m: (m.group(1) or "Bearer ") + REDACTED, text)


def scrub_error(error: BaseException, scrub: Callable[[str], str]) -> BaseException:
    """``error`` with ``scrub`` applied in place to its message and every text attribute
    (``message``, ``raw_body_excerpt``...), so ``str``, ``repr`` and the attributes agree;
    returns it for ``raise scrub_error(exc, ...)``."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending and len(seen) < 8:  # the chain a traceback prints: causes and contexts
        exc = pending.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        for name, value in list(getattr(exc, "__dict__", {}).items()):
            if isinstance(value, str):
                clean = scrub(value)
                if clean != value:
                    setattr(exc, name, clean)
        args = tuple(scrub(a) if isinstance(a, str) else a for a in exc.args)
        if args != exc.args:
            exc.args = args
        pending.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)
    return error
