"""The module the ``report_gateway`` entry point names: it announces provider ``zuora``.

Zuora's status words, entity headers and header-pair auth are data on its ``ProviderSpec``,
read by the gateway's built-in hooks. Only cheap imports here: the gateway imports every
entry point when any provider is first used, so the generated client, urllib3 and cattrs
load in the driver factory instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs
from report_gateway.provider import (
    ConfigurationError,
    Credentials,
    DemoSpec,
    ProviderSpec,
    RunStatus,
    Scope,
    ScopeError,
    hookimpl,
    option,
    options_of,
    seconds,
)

if TYPE_CHECKING:
    from report_gateway.provider import ProviderContext, ProviderDriver
    from reporting_runtime import AuthPolicy

__all__ = [
    "ENV_VARS",
    "PROVIDER",
    "SETTINGS_KEYS",
    "STATUSES",
    "ZuoraSettings",
    "check_scope",
    "header_pair_auth",
    "report_gateway_providers",
    "status_word",
]

PROVIDER = "zuora"

#: How long an ambiguous run POST is followed up by polling "last completed run".
DEFAULT_CREATE_LOOKUP_SECONDS = 30.0


@attrs.frozen
class ZuoraSettings:
    """The settings of ``zuora``, declared once (env var, default, conversion, secrecy)."""

    api_access_key_id: str | None = option(
        env="ZUORA_API_ACCESS_KEY_ID", credential=True, doc="API access key id (user name)"
    )
    api_secret_access_key: str | None = option(
        env="ZUORA_API_SECRET_ACCESS_KEY", credential=True, doc="API secret access key"
    )
    base_url: str | None = option(doc="API endpoint with /api/rest/v1 (or data_center)")
    data_center: str | None = option(
        env="ZUORA_DATA_CENTER", doc="data-center name, like 'EU Production' (or base_url)"
    )
    entity_id: str | None = option(env="ZUORA_ENTITY_ID", doc="entityId header (or entity_name)")
    entity_name: str | None = option(
        env="ZUORA_ENTITY_NAME", doc="entityName header (or entity_id)"
    )
    create_lookup_seconds: float = option(
        default=DEFAULT_CREATE_LOOKUP_SECONDS,
        convert=seconds,
        doc="how long an ambiguous create is followed up before RunMayExistError",
    )


#: Setting key -> environment variable that may supply it.
ENV_VARS: Mapping[str, str] = {o.key: o.env for o in options_of(ZuoraSettings) if o.env}

SETTINGS_KEYS = tuple(o.key for o in options_of(ZuoraSettings))

#: Zuora's run statuses (the documented ones, plus the one-L spelling some tools print).
STATUSES: Mapping[str, RunStatus] = {
    "STARTED": RunStatus.RUNNING,
    "QUERYDATA": RunStatus.RUNNING,
    "PROCESSINGDATA": RunStatus.RUNNING,
    "COMPLETED": RunStatus.SUCCEEDED,
    "CANCELLED": RunStatus.CANCELED,
    "CANCELED": RunStatus.CANCELED,
    "INVALID": RunStatus.FAILED,
    "ERROR": RunStatus.FAILED,
}


def _make_driver(context: ProviderContext) -> ProviderDriver:
    from .driver import ZuoraDriver  # the generated client loads only now

    return ZuoraDriver.from_context(context)


@hookimpl
def report_gateway_providers() -> Sequence[ProviderSpec]:
    """Announce ``zuora``; nothing is built until it is used."""
    return [
        ProviderSpec(
            name=PROVIDER,
            description="Zuora Reporting API (reports saved in Zuora's Reporting UI)",
            factory=_make_driver,
            settings_type=ZuoraSettings,
            # Zuora runs take seconds for small reports and hours for large ones.
            first_poll_interval=1.0,
            max_poll_interval=60.0,
            # Report ids are per-tenant hex: the demo finds the sandbox's report by name, and
            # its viewType comes from the template. The pair is the sandbox's documented one.
            demo=DemoSpec(
                report="Customer report",
                search=True,
                settings={
                    "api_access_key_id": "sandbox-user@example.com",
                    "api_secret_access_key": "sandbox-password",
                    "base_url": "{base_url}/api/rest/v1",
                },
            ),
            statuses=STATUSES,
            normalize_status=status_word,
            scope_headers={"entity_id": "entityId", "entity_name": "entityName"},
            check_scope=check_scope,
            auth=header_pair_auth,
        )
    ]


def status_word(raw_status: str) -> str:
    """Zuora's words are upper case; some tools print them otherwise."""
    return raw_status.strip().upper()


def header_pair_auth(credentials: Credentials) -> AuthPolicy:
    """The zconnect hosts' header pair; Zuora's Reporting API takes no Basic or Bearer."""
    missing = [k for k in ("api_access_key_id", "api_secret_access_key") if not credentials.get(k)]
    if missing:
        raise ConfigurationError(
            f"{PROVIDER}: credentials from {credentials.source} lack {', '.join(missing)} "
            f"(env {', '.join(ENV_VARS[k] for k in missing)})"
        )
    from reporting_runtime import HeaderPairAuth

    return HeaderPairAuth(
        {
            "apiAccessKeyId": credentials["api_access_key_id"],
            "apiSecretAccessKey": credentials["api_secret_access_key"],
        }
    )


def check_scope(scope: Scope) -> None:
    """``entityId`` or ``entityName``, never both: Zuora answers "Only one of the entityId
    and entityName headers can be specified" only after a round trip."""
    if scope.entity_id and scope.entity_name:
        raise ScopeError(
            f"{PROVIDER}: give entity_id or entity_name, not both (Zuora rejects a request "
            "carrying both entityId and entityName)"
        )
