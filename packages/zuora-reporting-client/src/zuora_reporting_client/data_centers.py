"""Zuora's data centers and the Reporting API endpoints each one serves.

Data, not code: copied from Zuora's host tables. Each data center has two endpoint families
serving the same operations (see specs/zuora-reporting.yaml, `x-endpoint-family`):

- ``"rest"`` (the default): the REST host as Zuora's Reporting section prints it
  (``https://rest.zuora.com``), operations under ``/reporting/api/rest/v1``, OAuth bearer
  tokens from ``POST /oauth/token`` at the host root, ``Zuora-Entity-Ids`` for entities.
- ``"zconnect"`` (deprecated by Zuora, still served; pick it explicitly): the zconnect host,
  operations under ``/api/rest/v1``, only the apiAccessKeyId/apiSecretAccessKey pair.

Pick a family by name: ``base_url("eu-sandbox")`` is the REST endpoint,
``base_url("eu-sandbox", endpoint_family="zconnect")`` the zconnect one; ``client_urls``
gives both arguments a generated ``Client`` needs (``base_url`` and ``oauth_base_url``), from
a data-center name or from a REST host a user typed.

Two zconnect entries differ from how Zuora prints them: APAC production is printed with
http:// (TLS is used here) and the APAC hosts are printed without the prefix.

``DATA_CENTERS`` (name -> zconnect base URL) is the table as it was before the REST family:
the username/password path still resolves through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "DATA_CENTERS",
    "DEFAULT_DATA_CENTER",
    "ENDPOINT_FAMILIES",
    "PATH_PREFIXES",
    "TOKEN_PATH",
    "ZUORA_DATA_CENTERS",
    "DataCenter",
    "EndpointFamily",
    "base_url",
    "client_urls",
]

EndpointFamily = Literal["rest", "zconnect"]
ENDPOINT_FAMILIES: tuple[EndpointFamily, ...] = ("rest", "zconnect")

PATH_PREFIXES: Mapping[EndpointFamily, str] = MappingProxyType(
    {"rest": "/reporting/api/rest/v1", "zconnect": "/api/rest/v1"}
)
"""What each family puts between the host and the operation paths of the spec."""

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a credential
"""create_token's path, at the REST host root (not under the Reporting prefix)."""

DEFAULT_DATA_CENTER = "us-cloud-2-production"


@dataclass(frozen=True)
class DataCenter:
    """One row of Zuora's tables: the data center's REST host and its zconnect host."""

    name: str
    description: str
    rest_host: str
    zconnect_host: str

    def host(self, endpoint_family: EndpointFamily = "rest") -> str:
        if endpoint_family == "rest":
            return self.rest_host
        if endpoint_family == "zconnect":
            return self.zconnect_host
        raise ValueError(f"unknown Zuora endpoint family {endpoint_family!r}")

    def base_url(self, endpoint_family: EndpointFamily = "rest") -> str:
        """The `Client(base_url=...)` for this family: host and path prefix."""
        return self.host(endpoint_family) + PATH_PREFIXES[endpoint_family]

    @property
    def token_url(self) -> str:
        return self.rest_host + TOKEN_PATH


def _row(name: str, description: str, rest: str, zconnect: str) -> tuple[str, DataCenter]:
    return name, DataCenter(name, description, f"https://{rest}", f"https://{zconnect}")


ZUORA_DATA_CENTERS: Mapping[str, DataCenter] = MappingProxyType(
    dict(
        [
            _row(
                "us-cloud-1-production",
                "Production, US Cloud Data Center 1",
                "rest.na.zuora.com",
                "zconnect.na.zuora.com",
            ),
            _row(
                "us-cloud-1-sandbox",
                "API Sandbox, US Cloud Data Center 1",
                "rest.sandbox.na.zuora.com",
                "zconnect.sandbox.na.zuora.com",
            ),
            _row(
                "us-cloud-2-production",
                "Production, US Cloud Data Center 2",
                "rest.zuora.com",
                "zconnect.zuora.com",
            ),
            _row(
                "us-cloud-2-sandbox",
                "API Sandbox, US Cloud Data Center 2",
                "rest.apisandbox.zuora.com",
                "zconnectsandbox.zuora.com",
            ),
            _row(
                "eu-production",
                "Production, EU Data Center",
                "rest.eu.zuora.com",
                "zconnect.eu.zuora.com",
            ),
            _row(
                "eu-sandbox",
                "API Sandbox, EU Data Center",
                "rest.sandbox.eu.zuora.com",
                "zconnect.sandbox.eu.zuora.com",
            ),
            _row(
                "us-central-sandbox",
                "US Central Sandbox",
                "rest.test.zuora.com",
                "zconnect-services0001.test.zuora.com",
            ),
            _row(
                "eu-central-sandbox",
                "EU Central Sandbox",
                "rest.test.eu.zuora.com",
                "zconnect-services0002.test.eu.zuora.com",
            ),
            _row(
                "apac-sandbox",
                "APAC Developer & Central Sandbox",
                "rest.test.ap.zuora.com",
                "zconnect-services0003.test.ap.zuora.com",
            ),
            _row(
                "apac-production",
                "APAC Production",
                "rest.ap.zuora.com",
                "zconnect-prod05.ap.zuora.com",
            ),
        ]
    )
)
"""Data-center name -> its two hosts."""

DATA_CENTERS: Mapping[str, str] = MappingProxyType(
    {name: dc.base_url("zconnect") for name, dc in ZUORA_DATA_CENTERS.items()}
)
"""Data-center name -> zconnect base URL (the deprecated family, username/password only)."""


def base_url(name: str, endpoint_family: EndpointFamily = "rest") -> str:
    """The API endpoint of a data center in one family; REST unless asked otherwise."""
    try:
        center = ZUORA_DATA_CENTERS[name]
    except KeyError:
        raise KeyError(
            f"unknown Zuora data center {name!r}; known: {', '.join(ZUORA_DATA_CENTERS)}"
        ) from None
    return center.base_url(endpoint_family)


def client_urls(host: str) -> dict[str, str]:
    """`Client(**client_urls(host))` for a REST host as Zuora prints it
    (``https://rest.zuora.com``, a trailing slash or the Reporting prefix tolerated): the
    operations under the REST prefix, create_token at the host root."""
    root = host.rstrip("/")
    prefix = PATH_PREFIXES["rest"]
    if root.endswith(prefix):
        root = root[: -len(prefix)]
    return {"base_url": root + prefix, "oauth_base_url": root}
