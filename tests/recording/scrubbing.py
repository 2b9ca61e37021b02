"""What a recording must not keep, and the rewrites that make it replay the same every time.

vcrpy's ``filter_headers`` only touches request headers, so everything else is scrubbed by
the two record hooks here: a credential echoed in a response body, a pre-signed URL's
signature (in the request URI and in the run body that announced it, rewritten the same
way so the replay asks for the URL the recorded body hands out), cookies, and the
sandbox's random loopback port (rewritten to ``REPLAY_ORIGIN`` everywhere).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from vcr.request import Request as VcrRequest  # type: ignore[import-untyped]

__all__ = [
    "PLACEHOLDER",
    "REPLAY_ORIGIN",
    "SECRET_REQUEST_HEADERS",
    "Scrubber",
]

PLACEHOLDER = "REDACTED"
#: Where every loopback recording points after normalisation, and where replays aim.
REPLAY_ORIGIN = "http://127.0.0.1:12111"

#: Request headers that carry credentials, replaced by the placeholder (Cookie is dropped).
SECRET_REQUEST_HEADERS: tuple[str, ...] = (
    "Authorization",
    "Proxy-Authorization",
    "apiAccessKeyId",
    "apiSecretAccessKey",
    "X-Api-Key",
)
_DROPPED_HEADERS = frozenset({"cookie", "set-cookie", "set-cookie2"})

#: Query parameters of pre-signed URLs that authorise the download (S3, CloudFront, GCS and
#: the sandbox's own ``signature``); ``expires`` stays, it is only a time.
_SIGNING_PARAMS = (
    "signature",
    "sig",
    "token",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "key-pair-id",
    "policy",
)
_SIGNED_QUERY = re.compile(
    r"(?P<lead>[?&]|\\u0026)(?P<name>" + "|".join(re.escape(p) for p in _SIGNING_PARAMS) + r")="
    r"(?P<value>[^&\"'\s\\<>]+)",
    re.IGNORECASE,
)
#: Stripe secret and restricted keys, whatever follows the mode (test keys carry underscores).
_STRIPE_KEY = re.compile(r"\b(?P<kind>sk|rk)_(?P<mode>test|live)_[A-Za-z0-9_]+")
_LOOPBACK = re.compile(r"http://(?:127\.0\.0\.1|localhost):\d+")


def _signed_query_placeholder(match: re.Match[str]) -> str:
    return f"{match.group('lead')}{match.group('name')}={PLACEHOLDER}"


class Scrubber:
    """The record-time hooks for one recording session.

    ``secrets`` are the literal credential values in use (the sandbox's test credentials or
    the live ones from the environment): each is replaced wherever it shows up. Stripe key
    shapes are replaced even when not listed. ``normalise_loopback`` rewrites
    ``http://127.0.0.1:<port>`` to ``REPLAY_ORIGIN`` (sandbox recordings only).
    """

    def __init__(self, secrets: Iterable[str], *, normalise_loopback: bool) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._normalise_loopback = normalise_loopback

    def __repr__(self) -> str:
        return f"<Scrubber secrets={len(self._secrets)} loopback={self._normalise_loopback}>"

    def text(self, value: str) -> str:
        """Every rewrite applied to one piece of text (URI, header value or body)."""
        for secret in self._secrets:
            value = value.replace(secret, PLACEHOLDER)
        value = _STRIPE_KEY.sub(lambda m: f"{m.group('kind')}_{m.group('mode')}_REDACTED", value)
        value = _SIGNED_QUERY.sub(_signed_query_placeholder, value)
        if self._normalise_loopback:
            value = _LOOPBACK.sub(REPLAY_ORIGIN, value)
        return value

    def body(self, value: bytes | str | None) -> bytes | str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return self.text(value)
        try:
            decoded = value.decode("utf-8")
        except UnicodeDecodeError:
            # Binary (a ZIP, Zuora's UTF-16 export): only its UTF-16 text form can echo a key.
            return self._utf16_body(value)
        return self.text(decoded).encode("utf-8")

    def _utf16_body(self, value: bytes) -> bytes:
        if not value.startswith((b"\xff\xfe", b"\xfe\xff")):
            return value
        try:
            decoded = value.decode("utf-16")
        except UnicodeDecodeError:
            return value
        scrubbed = self.text(decoded)
        if scrubbed == decoded:
            return value
        return scrubbed.encode("utf-16")

    # -- vcrpy hooks --------------------------------------------------------------------------

    def before_record_request(self, request: VcrRequest) -> VcrRequest:
        request.uri = self.text(request.uri)
        request.body = self.body(request.body)
        for name in list(request.headers):
            if name.lower() in _DROPPED_HEADERS:
                del request.headers[name]
            elif name.lower() in {h.lower() for h in SECRET_REQUEST_HEADERS}:
                request.headers[name] = PLACEHOLDER
            else:
                request.headers[name] = self.text(str(request.headers[name]))
        return request

    def before_record_response(self, response: dict[str, Any]) -> dict[str, Any]:
        headers: dict[str, list[str]] = response.get("headers") or {}
        for name in list(headers):
            if name.lower() in _DROPPED_HEADERS:
                del headers[name]
                continue
            values = headers[name]
            headers[name] = [self.text(str(v)) for v in values]
        body = response.get("body") or {}
        original = body.get("string")
        scrubbed = self.body(original)
        if scrubbed != original:
            body["string"] = scrubbed
            size = len(scrubbed.encode("utf-8") if isinstance(scrubbed, str) else scrubbed or b"")
            # The announced length must follow the rewritten body, or a replay reads short.
            for name in headers:
                if name.lower() == "content-length":
                    headers[name] = [str(size)]
        return response
