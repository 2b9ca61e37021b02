"""Which spec feeds which package, and the few client facts a spec cannot carry.

Kept as data so a new API is one more entry, not new code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True)
class Target:
    spec: PurePosixPath
    """The spec, relative to the repository root."""
    package_dir: PurePosixPath
    """The folder that receives `_generated/`, relative to the repository root."""
    provider: str
    """The provider name the runtime puts in errors and logs (the gateway's provider name)."""
    distribution: str
    """The distribution that ships the client: its name and version make the User-Agent."""
    client_headers: tuple[str, ...] = ()
    """Header parameters set once on the client (a constructor argument) instead of per call."""
    error_reader: str | None = None
    """``module:NAME`` of the hand-written ``reporting_runtime.ErrorReader`` beside the
    package's ``_generated/`` folder that reads this API's error bodies; None takes the
    runtime's ``JsonErrorReader``. (Wire facts, such as the idempotency header, are in the
    spec: ``x-idempotency-header``, ``x-retry-verdict-header``, ``x-loggable-headers`` at its
    root.)"""


TARGETS: tuple[Target, ...] = (
    Target(
        spec=PurePosixPath("specs/stripe-reporting-v1.yaml"),
        package_dir=PurePosixPath(
            "packages/stripe-reporting-client/src/stripe_reporting_client/v1"
        ),
        provider="stripe",
        distribution="stripe-reporting-client",
        client_headers=("Stripe-Version",),
        error_reader="stripe_reporting_client.errors:ERROR_READER",
    ),
    Target(
        spec=PurePosixPath("specs/stripe-reporting-v2.yaml"),
        package_dir=PurePosixPath(
            "packages/stripe-reporting-client/src/stripe_reporting_client/v2"
        ),
        provider="stripe-v2",
        distribution="stripe-reporting-client",
        client_headers=("Stripe-Version",),
        error_reader="stripe_reporting_client.errors:ERROR_READER",
    ),
    Target(
        spec=PurePosixPath("specs/zuora-reporting.yaml"),
        package_dir=PurePosixPath("packages/zuora-reporting-client/src/zuora_reporting_client"),
        provider="zuora",
        distribution="zuora-reporting-client",
        error_reader="zuora_reporting_client.errors:ERROR_READER",
    ),
)
