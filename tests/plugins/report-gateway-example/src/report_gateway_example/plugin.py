"""The hook implementations: this module is the plugin the entry point names."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import attrs
from report_gateway.provider import (
    Credentials,
    ProviderContext,
    ProviderDriver,
    ProviderSettings,
    ProviderSpec,
    ReportRun,
    RunStatus,
    hookimpl,
    option,
)

CREDENTIALS_ENV = "REPORT_GATEWAY_EXAMPLE_CREDENTIALS"
PROVIDER = "example"

logger = logging.getLogger("report_gateway_example")

#: Every change observed, as (run id, previous status or None, new status), in order.
CHANGES: list[tuple[str, RunStatus | None, RunStatus]] = []

# The toy provider's own status words; the gateway maps them through its ProviderSpec.
STATUSES = {
    "queued": RunStatus.PENDING,
    "working": RunStatus.RUNNING,
    "done": RunStatus.SUCCEEDED,
    "error": RunStatus.FAILED,
    "stopped": RunStatus.CANCELED,
}


@attrs.frozen
class ExampleSettings:
    """The toy's settings, declared once: key (the field), env var, default, conversion.

    The driver reads them typed with ``context.settings_as(ExampleSettings)``.
    """

    token: str | None = option(env="EXAMPLE_TOKEN", credential=True, doc="the toy's API token")
    polls: int = option(env="EXAMPLE_POLLS", default=2, doc="polls a run takes to finish")
    account: str | None = option(doc="the account runs are made in when no scope says")


@hookimpl(tryfirst=True)
def report_gateway_credentials(provider: str, settings: ProviderSettings) -> Credentials | None:
    """Answer from the JSON file named by the env variable, before settings and env."""
    name = os.environ.get(CREDENTIALS_ENV)
    if not name:
        return None
    try:
        document = json.loads(Path(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("credentials file from %s is unreadable; ignored", CREDENTIALS_ENV)
        return None
    entry = document.get(provider) if isinstance(document, dict) else None
    if not isinstance(entry, dict) or not entry:
        return None
    return Credentials({str(k): str(v) for k, v in entry.items()}, source=f"file {name}")


@hookimpl
def report_gateway_run_changed(run: ReportRun, previous: ReportRun | None) -> None:
    """Record and log each status change (a real plugin would send metrics or a message)."""
    before = previous.status if previous is not None else None
    CHANGES.append((run.id, before, run.status))
    logger.info("%s run %s: %s -> %s", run.provider, run.id, before, run.status)


def _make_driver(context: ProviderContext) -> ProviderDriver:
    from .toy import ToyDriver  # imported only when the provider is used

    return ToyDriver(context)


@hookimpl
def report_gateway_providers() -> Sequence[ProviderSpec]:
    """Announce the toy provider; nothing is built until it is used."""
    return [
        ProviderSpec(
            name=PROVIDER,
            description="In-memory toy provider from the example plugin",
            factory=_make_driver,
            settings_type=ExampleSettings,
            first_poll_interval=0.1,
            max_poll_interval=1.0,
            statuses=STATUSES,
            # The toy understands an account only; other scope fields are refused up front.
            scope_headers={"account": "X-Example-Account"},
        )
    ]
