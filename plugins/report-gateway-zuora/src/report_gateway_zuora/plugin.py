"""The module the ``report_gateway`` entry point names: it announces provider ``zuora``.

Zuora's status words, entity headers and auth factory are data on its ``ProviderSpec``,
read by the gateway's built-in hooks. Zuora takes one of two credential pairs, which also
pick the endpoint family: ``client_id``/``client_secret`` (OAuth, the REST hosts) or
``api_access_key_id``/``api_secret_access_key`` (the zconnect hosts, which accept nothing
else); ``report_gateway_credentials`` here hands the gateway the one pair given. Only cheap
imports here: the gateway imports every entry point when any provider is first used, so the
generated client, urllib3 and cattrs load in the driver factory instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs
from report_gateway.provider import (
    ConfigurationError,
    Credentials,
    DemoSpec,
    ProviderSettings,
    ProviderSpec,
    RunStatus,
    Scope,
    ScopeError,
    boolean,
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
    "OAUTH_PAIR",
    "PASSWORD_PAIR",
    "PROVIDER",
    "SETTINGS_KEYS",
    "STATUSES",
    "ZuoraSettings",
    "auth_kind",
    "check_scope",
    "header_pair_auth",
    "report_gateway_credentials",
    "report_gateway_providers",
    "status_word",
    "zuora_auth",
]

PROVIDER = "zuora"

#: How long an ambiguous run POST is followed up by polling "last completed run".
DEFAULT_CREATE_LOOKUP_SECONDS = 30.0

#: The OAuth client (REST hosts) and the username/password pair (zconnect hosts).
OAUTH_PAIR = ("client_id", "client_secret")
PASSWORD_PAIR = ("api_access_key_id", "api_secret_access_key")


def _optional_boolean(value: object) -> bool | None:
    return None if value is None else boolean(value)


@attrs.frozen
class ZuoraSettings:
    """The settings of ``zuora``, declared once (env var, default, conversion, secrecy)."""

    client_id: str | None = option(
        env="ZUORA_CLIENT_ID", credential=True, doc="OAuth client id (REST hosts)"
    )
    client_secret: str | None = option(
        env="ZUORA_CLIENT_SECRET", credential=True, doc="OAuth client secret (REST hosts)"
    )
    api_access_key_id: str | None = option(
        env="ZUORA_API_ACCESS_KEY_ID",
        credential=True,
        doc="API access key id, the user name (zconnect hosts)",
    )
    api_secret_access_key: str | None = option(
        env="ZUORA_API_SECRET_ACCESS_KEY",
        credential=True,
        doc="API secret access key, the password (zconnect hosts)",
    )
    base_url: str | None = option(
        doc="API endpoint: a REST host (its /reporting/api/rest/v1 prefix added if missing) "
        "or a zconnect endpoint with /api/rest/v1 (or data_center)"
    )
    data_center: str | None = option(
        env="ZUORA_DATA_CENTER",
        doc="data-center name, like 'EU Production'; its REST host with OAuth, its zconnect "
        "host with the username/password pair (or base_url)",
    )
    entity_id: str | None = option(
        env="ZUORA_ENTITY_ID",
        doc="entity to act in: Zuora-Entity-Ids with OAuth, entityId otherwise",
    )
    entity_name: str | None = option(
        env="ZUORA_ENTITY_NAME", doc="entityName header (username/password pair only)"
    )
    pivoted: bool | None = option(
        convert=_optional_boolean,
        doc="export Summary reports pivoted (true) or not (false); unset: Zuora's default",
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
            # its viewType comes from the template. The OAuth client is the sandbox's
            # documented one, on the REST-host paths.
            demo=DemoSpec(
                report="Customer report",
                search=True,
                settings={
                    "client_id": "5a4db0c5-0000-4000-8000-5a4db0c50001",
                    "client_secret": "sandbox-client-secret",
                    "base_url": "{base_url}/reporting/api/rest/v1",
                },
            ),
            statuses=STATUSES,
            normalize_status=status_word,
            scope_headers={"entity_id": "entityId", "entity_name": "entityName"},
            check_scope=check_scope,
            auth=zuora_auth,
        )
    ]


@hookimpl(trylast=True)
def report_gateway_credentials(provider: str, settings: ProviderSettings) -> Credentials | None:
    """The one credential pair given, for ``zuora`` (the built-in lookup wants every
    credential setting, and Zuora takes one pair of two). Both pairs, or half of one, is a
    ConfigurationError naming the settings; none answers None, so the gateway's
    CredentialsError lists every setting and variable it looked at."""
    if provider != PROVIDER:
        return None
    given = {key: str(settings[key]) for key in (*OAUTH_PAIR, *PASSWORD_PAIR) if settings.get(key)}
    if not given:
        return None
    origins = {key: settings.origin(key) or "settings" for key in given}
    pair = _pair_of(given, source="settings", origins=origins)
    return Credentials(
        {key: given[key] for key in pair},
        source=", ".join(sorted({origins[key] for key in pair})),
        origins={key: origins[key] for key in pair},
    )


def _pair_of(
    given: Mapping[str, str], *, source: str, origins: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """Which pair ``given`` holds; a ConfigurationError for both, half, or neither.

    ``origins`` (key -> where its value came from) lets the both-pairs error say where each
    pair was found, which is what the user has to go and remove."""
    oauth = [key for key in OAUTH_PAIR if given.get(key)]
    password = [key for key in PASSWORD_PAIR if given.get(key)]
    both = " and ".join

    def found_in(keys: Sequence[str]) -> str:
        places = dict.fromkeys((origins or {}).get(key) or source for key in keys)
        return ", ".join(places)

    if oauth and password:
        raise ConfigurationError(
            f"{PROVIDER}: both credential pairs are set: {both(oauth)} (OAuth, REST hosts) "
            f"from {found_in(oauth)}, and {both(password)} (username/password, zconnect "
            f"hosts) from {found_in(password)}; keep one pair, not both"
        )
    for pair, found in ((OAUTH_PAIR, oauth), (PASSWORD_PAIR, password)):
        if found:
            missing = [key for key in pair if key not in found]
            if missing:
                raise ConfigurationError(
                    f"{PROVIDER}: {found[0]} is set but {missing[0]} is not (env "
                    f"{ENV_VARS[missing[0]]}); {both(pair)} go together"
                )
            return pair
    raise ConfigurationError(
        f"{PROVIDER}: {source} hold neither {both(OAUTH_PAIR)} (env ZUORA_CLIENT_ID, "
        f"ZUORA_CLIENT_SECRET) nor {both(PASSWORD_PAIR)} (env ZUORA_API_ACCESS_KEY_ID, "
        "ZUORA_API_SECRET_ACCESS_KEY)"
    )


def auth_kind(credentials: Mapping[str, str]) -> str:
    """``"oauth"`` or ``"password"``: which pair the credentials hold (ConfigurationError
    for both or neither)."""
    source = getattr(credentials, "source", "the credentials")
    origins = getattr(credentials, "origins", None)
    pair = _pair_of(credentials, source=source, origins=origins)
    return "oauth" if pair == OAUTH_PAIR else "password"


def zuora_auth(credentials: Credentials) -> AuthPolicy:
    """OAuth for the client pair (bound to its host by the driver), else the header pair."""
    if auth_kind(credentials) == "oauth":
        from .oauth import OAuthClientCredentials

        return OAuthClientCredentials(credentials["client_id"], credentials["client_secret"])
    return header_pair_auth(credentials)


def status_word(raw_status: str) -> str:
    """Zuora's words are upper case; some tools print them otherwise."""
    return raw_status.strip().upper()


def header_pair_auth(credentials: Credentials) -> AuthPolicy:
    """The zconnect hosts' header pair (they take no Basic and no Bearer)."""
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
