"""``ReportGatewayHook``: a ``Gateway`` built from an Airflow connection of type
``report_gateway``.

The connection's extra holds the settings per provider, as ``Gateway(settings=...)`` takes
them, plus an optional ``gateway`` table of gateway-wide options::

    {"stripe-v2": {"base_url": "https://api.stripe.com"},
     "gateway": {"max_active_runs": 20}}

Secrets go where Airflow masks them: the connection's password (and login, for a provider
with two credentials) fills the credential settings the extra leaves out; or they sit in
the extra under their option names (``api_key``, ``api_secret_access_key``), which Airflow's
secrets masker hides by name. Zuora declares two pairs and takes one, so login and password
fill one pair: the OAuth client (``client_id``, ``client_secret``) unless the extra's
``zuora`` table says ``"auth": "password"`` (``api_access_key_id``,
``api_secret_access_key``, the zconnect hosts) or already holds part of that pair. Every
credential value is also registered with the masker here, so it is redacted from task logs
under any name. Settings the connection leaves out still come from the worker's profile
file and environment (``Gateway``'s layering).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException
from report_gateway import Gateway
from report_gateway.aio import AsyncGateway

__all__ = ["CREDENTIAL_FAMILIES", "GATEWAY_OPTIONS", "ReportGatewayHook", "gateway_arguments"]

#: Keys of the extra's ``gateway`` table: ``Gateway`` keywords.
GATEWAY_OPTIONS = frozenset(
    {"max_active_runs", "slot_timeout", "ca_bundle", "user_agent", "profile", "config_file"}
)

#: Providers that take one credential pair of several: the extra's ``auth`` key (popped
#: before the settings reach ``Gateway``) names the pair login/password fill; the first is
#: the default. A provider not listed has one set: every credential option it declares.
CREDENTIAL_FAMILIES: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "zuora": {
        "oauth": ("client_id", "client_secret"),
        "password": ("api_access_key_id", "api_secret_access_key"),
    },
}
AUTH_KEY = "auth"

# One AsyncGateway per connection (and its settings) per process: the triggerer runs every
# deferred task's trigger in one event loop, and they share its bounded thread pool and
# connection pool instead of each making their own.
_ASYNC_GATEWAYS: dict[tuple[str, str], AsyncGateway] = {}
_ASYNC_LOCK = threading.Lock()


def _mask(value: object) -> None:
    """Register ``value`` with the Task SDK's secrets masker: the task process's log and the
    supervisor's (which writes the task log files) then show ``***`` for it. (``airflow
    dags test`` runs tasks in-process and prints their logs unmasked, as Airflow does for
    every secret there.)"""
    if isinstance(value, str) and value:
        from airflow.sdk.log import mask_secret

        mask_secret(value)


def gateway_arguments(connection: Connection) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The ``settings`` and gateway keywords a connection describes (secrets filled in)."""
    extra = connection.extra_dejson
    if not isinstance(extra, Mapping):
        raise ValueError(f"connection {connection.conn_id!r}: extra must be a JSON object")
    options = dict(extra.get("gateway") or {})
    unknown = sorted(set(options) - GATEWAY_OPTIONS)
    if unknown:
        raise ValueError(
            f"connection {connection.conn_id!r}: unknown gateway option(s) {unknown}; "
            f"known: {sorted(GATEWAY_OPTIONS)}"
        )
    settings: dict[str, dict[str, Any]] = {}
    for provider, values in extra.items():
        if provider == "gateway":
            continue
        if not isinstance(values, Mapping):
            raise ValueError(
                f"connection {connection.conn_id!r}: extra[{provider!r}] must be an object "
                "of that provider's settings"
            )
        settings[provider] = {
            key: value
            for key, value in values.items()
            if not (key == AUTH_KEY and provider in CREDENTIAL_FAMILIES)
        }
    return settings, options


def _credential_pair(provider: str, declared: list[str], extra: Mapping[str, Any]) -> list[str]:
    """The credential options login/password may fill for ``provider``: the family the
    extra's ``auth`` names, else the one the extra already set part of, else the first."""
    families = CREDENTIAL_FAMILIES.get(provider)
    if not families:
        return declared
    chosen = extra.get(AUTH_KEY)
    if chosen is not None:
        if chosen not in families:
            raise ValueError(
                f"extra[{provider!r}][{AUTH_KEY!r}] is {chosen!r}; one of {sorted(families)}"
            )
        return list(families[chosen])
    for keys in families.values():
        if any(extra.get(key) for key in keys):
            return list(keys)
    return list(next(iter(families.values())))


def _fill_credentials(
    gateway: Gateway, settings: dict[str, dict[str, Any]], conn: Connection
) -> None:
    """Put login/password into the credential settings each provider leaves unset."""
    given = [value for value in (conn.login, conn.password) if value]
    extra = conn.extra_dejson
    for provider, values in settings.items():
        options = gateway.spec(provider).options
        declared = [o.key for o in options if o.credential]
        table = extra.get(provider) or {}
        try:
            pair = _credential_pair(provider, declared, table)
        except ValueError as exc:
            raise ValueError(f"connection {conn.conn_id!r}: {exc}") from None
        missing = [key for key in pair if not values.get(key)]
        if missing and given:
            # One credential: the password. Two (key id and secret): login, then password.
            fill = given[-len(missing) :] if len(given) >= len(missing) else []
            values.update(zip(missing, fill, strict=False))
        for option in options:
            if option.credential or option.secret:
                _mask(values.get(option.key))


class ReportGatewayHook(BaseHook):
    """Builds a ``Gateway`` (``get_conn``) or the shared ``AsyncGateway`` of this process
    (``async_gateway``) from a ``report_gateway`` connection."""

    conn_name_attr = "report_gateway_conn_id"
    default_conn_name = "report_gateway_default"
    conn_type = "report_gateway"
    hook_name = "Report Gateway"

    def __init__(self, report_gateway_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report_gateway_conn_id = report_gateway_conn_id
        self._gateway: Gateway | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["host", "port", "schema"],
            "relabeling": {
                "login": "Login (Zuora: client id, or API access key id)",
                "password": "Secret (API key, client secret or secret access key)",
            },
            "placeholders": {
                "extra": json.dumps(
                    {
                        "stripe-v2": {"base_url": "https://api.stripe.com"},
                        "gateway": {"max_active_runs": 20},
                    }
                ),
            },
        }

    @staticmethod
    def build(connection: Connection) -> Gateway:
        """A new ``Gateway`` from ``connection`` (the caller closes it)."""
        settings, options = gateway_arguments(connection)
        probe = Gateway(settings, **options)
        try:
            _fill_credentials(probe, settings, connection)
        finally:
            probe.close()
        return Gateway(settings, **options)

    def get_conn(self) -> Gateway:
        """This hook's ``Gateway``, built on first use."""
        if self._gateway is None:
            self._gateway = self.build(self.get_connection(self.report_gateway_conn_id))
        return self._gateway

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()
            self._gateway = None

    @classmethod
    async def connection_async(cls, conn_id: str) -> Connection:
        """The connection, from the trigger's event loop. The Task SDK's async lookup does
        not reach every place a connection can be stored: under ``airflow dags test`` it
        misses one stored in the metadata database (``airflow connections add``) that the
        task itself found, so a miss is asked again through the synchronous lookup, in a
        thread, before it counts."""
        try:
            return await cls.aget_connection(conn_id)
        except AirflowNotFoundException:
            return await asyncio.to_thread(cls.get_connection, conn_id)

    @classmethod
    async def async_gateway(cls, conn_id: str) -> AsyncGateway:
        """The process's ``AsyncGateway`` for ``conn_id``, made on first use (and made
        again if the connection's settings changed)."""
        connection = await cls.connection_async(conn_id)
        fingerprint = hashlib.sha256(
            json.dumps(
                [connection.extra_dejson, connection.login, connection.password],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()
        key = (conn_id, fingerprint)
        with _ASYNC_LOCK:
            shared = _ASYNC_GATEWAYS.get(key)
        if shared is not None:
            return shared
        gateway = await asyncio.to_thread(cls.build, connection)
        with _ASYNC_LOCK:
            shared = _ASYNC_GATEWAYS.get(key)
            if shared is None:
                shared = _ASYNC_GATEWAYS[key] = AsyncGateway(gateway, max_transfers=1)
                return shared
        gateway.close()  # another trigger made it first
        return shared
