"""The module the ``report_gateway`` entry point names: it announces the two providers.

What differs per provider and is plain data (status words, the scope header, Bearer auth,
the webhooks) is on each ``ProviderSpec``; the gateway's built-in hooks read it. The drivers and the
generated clients are imported by the factories, the first time a provider is used, so
``report-gateway providers`` stays quick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs
from report_gateway.provider import (
    Credentials,
    DemoSpec,
    ProviderSpec,
    RunStatus,
    hookimpl,
    name_list,
    option,
    seconds,
)

from .webhooks import WEBHOOK

if TYPE_CHECKING:
    from report_gateway.provider import ProviderContext, ProviderDriver
    from reporting_runtime import AuthPolicy

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_RATE_LIMIT_WAIT",
    "STATUSES",
    "STRIPE",
    "STRIPE_V2",
    "WEBHOOK_SECRET_ENV",
    "StripeV1Settings",
    "StripeV2Settings",
    "report_gateway_providers",
]

STRIPE = "stripe"
STRIPE_V2 = "stripe-v2"
API_KEY_ENV = "STRIPE_API_KEY"
#: Stripe's webhook signing secret(s) for ``report-gateway listen``, comma-separated.
WEBHOOK_SECRET_ENV = "STRIPE_WEBHOOK_SECRET"  # noqa: S105 (the name of an env var)
#: Seconds ``start`` waits for a concurrency slot before giving up (setting ``rate_limit_wait``).
DEFAULT_RATE_LIMIT_WAIT = 300.0


@attrs.frozen
class StripeV1Settings:
    """The settings of ``stripe``, declared once (env var, default, conversion, secrecy)."""

    api_key: str | None = option(
        env=API_KEY_ENV, credential=True, doc="secret or restricted key (sk_/rk_)"
    )
    base_url: str | None = option(doc="API host (a proxy, the sandbox); default Stripe's")
    files_base_url: str | None = option(
        doc="where result files are fetched; default files.stripe.com, or base_url's host"
    )
    stripe_version: str | None = option(doc="Stripe-Version header")
    account: str | None = option(doc="connected account (Stripe-Account) when none is given")
    webhook_secret: tuple[str, ...] = option(
        env=WEBHOOK_SECRET_ENV,
        default=(),
        convert=name_list,
        secret=True,
        doc="webhook signing secret(s) whsec_..., comma-separated while rotating",
    )


@attrs.frozen
class StripeV2Settings:
    """The settings of ``stripe-v2``, declared once (env var, default, conversion, secrecy)."""

    api_key: str | None = option(
        env=API_KEY_ENV, credential=True, doc="secret or restricted key (sk_/rk_)"
    )
    base_url: str | None = option(doc="API host (a proxy, the sandbox); default Stripe's")
    stripe_version: str | None = option(doc="Stripe-Version header")
    context: str | None = option(doc="Stripe-Context when none is given")
    reports: tuple[str, ...] = option(
        default=(), doc="report ids `templates` lists (a list, or one comma-separated string)"
    )
    compress_file: bool = option(default=False, doc="ask for ZIP results")
    rate_limit_wait: float = option(
        default=DEFAULT_RATE_LIMIT_WAIT,
        convert=seconds,
        doc="seconds a start waits for a slot after 429 report_run_rate_limit_exceeded",
    )


#: Stripe's words per provider; anything else is left to the core (warn, keep waiting).
STATUSES: Mapping[str, Mapping[str, RunStatus]] = {
    STRIPE: {
        "pending": RunStatus.PENDING,
        "succeeded": RunStatus.SUCCEEDED,
        "failed": RunStatus.FAILED,
    },
    STRIPE_V2: {
        "running": RunStatus.RUNNING,
        "succeeded": RunStatus.SUCCEEDED,
        "failed": RunStatus.FAILED,
    },
}


def bearer_auth(credentials: Credentials) -> AuthPolicy:
    """Stripe takes the secret (or restricted) key as a Bearer token, for v1 and v2 alike."""
    from reporting_runtime import BearerAuth

    return BearerAuth(credentials["api_key"])


def _make_v1(context: ProviderContext) -> ProviderDriver:
    from .v1 import StripeV1Driver

    return StripeV1Driver(context)


def _make_v2(context: ProviderContext) -> ProviderDriver:
    from .v2 import StripeV2Driver

    return StripeV2Driver(context)


@hookimpl
def report_gateway_providers() -> Sequence[ProviderSpec]:
    """Announce Stripe Reporting v1 (``stripe``) and Reports v2 (``stripe-v2``)."""
    return [
        ProviderSpec(
            name=STRIPE,
            description="Stripe Reporting API v1 (report types and report runs)",
            factory=_make_v1,
            settings_type=StripeV1Settings,
            # v1 runs take tens of seconds to minutes.
            first_poll_interval=2.0,
            max_poll_interval=30.0,
            # The sandbox takes any sk_test_ key and serves the files host itself.
            demo=DemoSpec(
                report="balance.summary.1",
                window=("interval_start", "interval_end"),
                window_as="unix",
                settings={
                    "api_key": "sk_test_report_gateway_demo",
                    "base_url": "{base_url}",
                    "files_base_url": "{base_url}",
                },
            ),
            statuses=STATUSES[STRIPE],
            scope_headers={"account": "Stripe-Account"},
            auth=bearer_auth,
            # One endpoint takes v1 and v2 events alike, signed with webhook_secret.
            webhook=WEBHOOK,
        ),
        ProviderSpec(
            name=STRIPE_V2,
            description="Stripe Reports API v2 (private preview; reports and report runs)",
            factory=_make_v2,
            settings_type=StripeV2Settings,
            # Small v2 reports finish in a couple of seconds: start at the core's 0.5 s and
            # back off x1.5, so a 2 s run is seen about 0.3 s late after 3 polls (starting
            # at 2 s, jitter lands the first poll just before it ends and the second at
            # ~5 s: 2.5x the run's time, and the caller's worker waits all that while).
            first_poll_interval=0.5,
            max_poll_interval=30.0,
            demo=DemoSpec(
                report="report_balance_summary",
                window=("interval_start", "interval_end"),
                window_as="rfc3339",
                settings={"api_key": "sk_test_report_gateway_demo", "base_url": "{base_url}"},
            ),
            statuses=STATUSES[STRIPE_V2],
            scope_headers={"context": "Stripe-Context"},
            auth=bearer_auth,
        ),
    ]
