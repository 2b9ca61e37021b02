"""Stripe API keys (Bearer or Basic user name) and Stripe's error bodies, shared by v1 and v2."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from report_gateway_sandbox.credentials import STRIPE_KEY_PREFIX
from report_gateway_sandbox.wire import HttpError, Request

_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


def api_key(req: Request) -> str | None:
    """The key sent as `Bearer KEY` or as the Basic user name, or None."""
    auth = req.header("Authorization")
    if not auth:
        return None
    scheme, _, value = auth.partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer":
        return value or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def _masked(key: str) -> str:
    """What Stripe echoes of a wrong key: its mode prefix only, never the secret part."""
    prefix = key[:8] if key.startswith(("sk_", "rk_", "pk_")) else ""
    return prefix + "*" * 8


def v1_error(
    req: Request,
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> HttpError:
    """Stripe v1's error object (documentation links, the request's log URL)."""
    error: dict[str, Any] = {}
    if code is not None:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    error["message"] = message
    if param is not None:
        error["param"] = param
    error["request_log_url"] = (
        f"https://dashboard.stripe.com/test/logs/{req.request_id}?t={int(time.time())}"
    )
    error["type"] = type_
    return HttpError.json(status, {"error": error}, headers or [])


def v2_error(
    status: int,
    message: str,
    *,
    code: str,
    type_: str = "invalid_request_error",
    headers: list[tuple[str, str]] | None = None,
) -> HttpError:
    error = {"type": type_, "code": code, "message": message}
    return HttpError.json(status, {"error": error}, headers or [])


def require_key(req: Request, *, v2: bool) -> str:
    """The request's acceptable test key; raises the 401 otherwise."""
    key = api_key(req)
    if key is None:
        if v2:
            raise v2_error(401, _NO_KEY, code="not_authenticated")
        raise v1_error(req, 401, _NO_KEY)
    if not key.startswith(STRIPE_KEY_PREFIX) or len(key) <= len(STRIPE_KEY_PREFIX):
        message = f"Invalid API Key provided: {_masked(key)}"
        if v2:
            raise v2_error(401, message, code="not_authenticated")
        raise v1_error(req, 401, message, code="api_key_invalid")
    return key
