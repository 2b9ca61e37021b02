"""Stripe's webhooks: how a delivery is signed, and what its events say about runs.

Stripe signs every delivery with the endpoint's secret (``whsec_...``): the
``Stripe-Signature`` header holds ``t=<unix seconds>`` and one or more ``v1=<hex
HMAC-SHA256>`` of ``"<t>.<raw body>"``. ``verify`` accepts a delivery when some ``v1``
matches some configured secret (several at once while one is rotated) and ``t`` is within
the tolerance of now.

Events, read by ``read_event`` (one endpoint, ``POST /webhooks/stripe``, takes both APIs'):

- v1 ``reporting.report_run.*``: the run is in ``data.object``; the stripe driver maps it
  (``run_from_event``) exactly as a poll would, so no request is sent;
- v2 thin ``v2.reporting.report_run.*``: only ``related_object.id`` is known, so the run is
  retrieved once (``stripe-v2``, in the event's ``context``); ``.created`` is acknowledged
  without one (the creator already knows);
- anything else (``reporting.report_type.updated``...) is acknowledged and ignored.

The server, the replay memory and the hand-over to waits are the core's
(``report_gateway.webhooks``); this module only imports the standard library and
``report_gateway.provider``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from report_gateway.provider import (
    Scope,
    SignatureError,
    WebhookEventError,
    WebhookOutcome,
    WebhookSpec,
)

__all__ = ["SIGNATURE_HEADER", "WEBHOOK", "read_event", "sign", "verify"]

SIGNATURE_HEADER = "Stripe-Signature"
#: Stripe's own libraries refuse a signature older than five minutes.
TOLERANCE = 300.0
_V1_PREFIX = "reporting.report_run."
_V2_PREFIX = "v2.reporting.report_run."
_V2_RUN_OBJECT = "v2.reporting.report_run"
_V2_PROVIDER = "stripe-v2"
#: What a v2 report run id looks like (``reprun_...``): the id goes into a URL path, so an
#: id that could climb out of it (``../../v1/...``) or carry a query is refused.
_V2_RUN_ID = re.compile(r"[A-Za-z0-9_]{1,255}")


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` value Stripe would send for ``payload`` at ``timestamp``."""
    return f"t={timestamp},v1={_digest(payload, secret, timestamp)}"


def _digest(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: float = TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a delivery's signature; return its timestamp or raise ``SignatureError``.

    Every ``v1`` entry is compared, in constant time, with the digest under every secret;
    other schemes (``v0``) are ignored. A timestamp more than ``tolerance`` seconds away from
    ``now``, in either direction, is refused: an old one is a replay, a future one would
    stretch the replay window.
    """
    if not secrets:
        raise SignatureError("no signing secret configured")
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("timestamp is not an integer") from None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("no timestamp in the signature header")
    if not signatures:
        raise SignatureError("no v1 signature in the signature header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        age = round(current - timestamp)
        when = f"{age} s old" if age > 0 else f"{-age} s in the future"
        raise SignatureError(f"timestamp is {when} (tolerance {tolerance:g} s)")
    expected = [_digest(payload, secret, timestamp) for secret in secrets]
    # Every pair is compared so the time taken says nothing about which one matched.
    matched = False
    for signature in signatures:
        for digest in expected:
            matched |= hmac.compare_digest(signature.encode(), digest.encode())
    if not matched:
        raise SignatureError("no signature matches a configured secret")
    return timestamp


def read_event(event: Mapping[str, Any], driver: Callable[[], Any]) -> WebhookOutcome:
    """What a verified Stripe event means for a run (see the module docstring)."""
    kind = str(event.get("type") or "")
    if kind.startswith(_V1_PREFIX):
        mapper = getattr(driver(), "run_from_event", None)
        if mapper is None:
            raise ValueError("the stripe driver cannot map events (no run_from_event)")
        return WebhookOutcome(run=mapper(event))
    if not kind.startswith(_V2_PREFIX) or kind == _V2_PREFIX + "created":
        return WebhookOutcome()
    related = event.get("related_object")
    if not isinstance(related, Mapping):
        related = {}
    run_id = related.get("id")
    if not isinstance(run_id, str) or related.get("type", _V2_RUN_OBJECT) != _V2_RUN_OBJECT:
        raise WebhookEventError("event names no report run")
    if not _V2_RUN_ID.fullmatch(run_id):
        raise WebhookEventError("event's related object id is not a report run id")
    context = event.get("context")
    scope = Scope(context=context) if isinstance(context, str) and context else None
    return WebhookOutcome(fetch=(_V2_PROVIDER, run_id, scope))


#: The stripe provider's webhooks (``ProviderSpec.webhook``): ``POST /webhooks/stripe``.
WEBHOOK = WebhookSpec(
    signature_header=SIGNATURE_HEADER,
    secret_setting="webhook_secret",  # noqa: S106 (a setting's name)
    verify=verify,
    read=read_event,
    tolerance=TOLERANCE,
)
