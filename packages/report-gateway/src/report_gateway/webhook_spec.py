"""How a provider declares its webhooks (``ProviderSpec.webhook``), apart from the server.

The core's ``report_gateway.webhooks.WebhookApp`` routes ``POST /webhooks/<provider>`` to
the provider's ``WebhookSpec``: it reads the signature header the spec names, checks it with
the spec's ``verify`` against the secrets in the spec's setting, keeps the replay memory,
and hands the event to the spec's ``read``, which says what the event means for a run. What
a signature looks like and which events name which runs is the provider's business; this
module holds only the neutral shapes, so importing it costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from .models import ReportRun, Scope

__all__ = [
    "DEFAULT_TOLERANCE",
    "SignatureError",
    "WebhookEventError",
    "WebhookOutcome",
    "WebhookReader",
    "WebhookSpec",
    "WebhookVerifier",
]

#: How far a signature's timestamp may be from now, in seconds (Stripe's libraries: 5 min).
DEFAULT_TOLERANCE = 300.0


class SignatureError(ValueError):
    """A delivery that does not prove it comes from the provider, now (the reason, never
    the body)."""


class WebhookEventError(ValueError):
    """A verified event that cannot be read as what its type says (answered 400; the
    message is the answer's ``error``, so it names no secret and quotes no body)."""


@attrs.frozen
class WebhookOutcome:
    """What one verified event means: a whole run (``run``), a run to retrieve once
    (``fetch``: provider, run id, scope), or neither (acknowledged and ignored)."""

    run: ReportRun | None = None
    fetch: tuple[str, str, Scope | None] | None = None


class WebhookVerifier(Protocol):
    """Checks one delivery: raise ``SignatureError`` unless ``header`` proves ``payload``
    was signed with one of ``secrets`` within ``tolerance`` seconds of ``now``."""

    def __call__(
        self,
        payload: bytes,
        header: str | None,
        secrets: Sequence[str],
        *,
        tolerance: float,
        now: float,
    ) -> object: ...


#: ``read(event, driver)``: the outcome of a verified event (a JSON object); ``driver()``
#: builds (once) the provider's driver, for events that carry a whole run to map. Raise
#: ``WebhookEventError`` for an event of a run type that holds no run.
WebhookReader = Callable[[Mapping[str, Any], Callable[[], Any]], WebhookOutcome]


@attrs.frozen(kw_only=True)
class WebhookSpec:
    """A provider's webhooks, as data and two functions.

    - ``signature_header``: the request header holding the signature (``Stripe-Signature``).
    - ``secret_setting``: the provider setting holding the endpoint's signing secret(s)
      (comma-separated or a list, several while one is rotated).
    - ``verify``: a ``WebhookVerifier``.
    - ``read``: a ``WebhookReader``.
    - ``tolerance``: the default bound on a signature's age, in seconds.
    """

    signature_header: str
    secret_setting: str = "webhook_secret"  # noqa: S105 (a setting's name)
    verify: WebhookVerifier = attrs.field(repr=False)
    read: WebhookReader = attrs.field(repr=False)
    tolerance: float = DEFAULT_TOLERANCE
