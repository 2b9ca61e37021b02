"""Which Zuora host a driver talks to: a ``base_url``, or a data-center name from the table.

The table itself is data owned by the client (``zuora_reporting_client.ZUORA_DATA_CENTERS``);
this module only reads names the way people write them ("US Cloud 2 Sandbox", "eu_sandbox")
and the older names Zuora's pages still use ("US API Sandbox" is US Cloud 2's sandbox).

The credential pair picks the endpoint family, as Zuora documents them ("OAuth only works
with new endpoints"; the zconnect hosts accept only username and password): OAuth resolves
a data center to its REST host (operations under ``/reporting/api/rest/v1``, tokens at the
host root), the username/password pair to its zconnect host (``/api/rest/v1``). A
``base_url`` wins over both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from report_gateway.provider import ConfigurationError

if TYPE_CHECKING:
    from zuora_reporting_client import EndpointFamily

__all__ = ["ALIASES", "Endpoints", "canonical_name", "resolve_base_url", "resolve_endpoints"]

#: Other spellings -> a name of ``zuora_reporting_client.DATA_CENTERS``.
ALIASES: Mapping[str, str] = {
    "us-cloud-1": "us-cloud-1-production",
    "us-cloud-2": "us-cloud-2-production",
    "na": "us-cloud-1-production",
    "na-sandbox": "us-cloud-1-sandbox",
    "us": "us-cloud-2-production",
    "us-production": "us-cloud-2-production",
    "us-sandbox": "us-cloud-2-sandbox",
    "us-api-sandbox": "us-cloud-2-sandbox",
    "apisandbox": "us-cloud-2-sandbox",
    "eu": "eu-production",
    "apac": "apac-production",
    "ap": "apac-production",
    "ap-sandbox": "apac-sandbox",
}

_SEPARATORS = re.compile(r"[\s_.-]+")


def canonical_name(name: str, known: Mapping[str, Any]) -> str | None:
    """The table's name for ``name`` (case, spaces and underscores ignored), or None."""
    key = _SEPARATORS.sub("-", name.strip().lower()).strip("-")
    if key in known:
        return key
    alias = ALIASES.get(key)
    return alias if alias in known else None


class Endpoints(NamedTuple):
    """A client's ``base_url`` and, for OAuth, where ``create_token`` lives (the host root)."""

    base_url: str
    oauth_base_url: str | None


_REST_PREFIX = "/reporting/api/rest/v1"
_ZCONNECT_PREFIX = "/api/rest/v1"


def resolve_endpoints(settings: Mapping[str, Any], *, oauth: bool) -> Endpoints:
    """The endpoints for these settings and this credential pair (see the module docstring).

    With OAuth a ``base_url`` is a REST host: given without the Reporting prefix it gets it
    (``https://rest.zuora.com`` -> ``.../reporting/api/rest/v1``), and a zconnect endpoint
    (``.../api/rest/v1`` without ``/reporting``) is refused, since it takes no token.
    """
    if not oauth:
        return Endpoints(resolve_base_url(settings, endpoint_family="zconnect"), None)
    base_url = settings.get("base_url")
    if base_url and not settings.get("data_center"):
        root = str(base_url).rstrip("/")
        if root.endswith(_ZCONNECT_PREFIX) and not root.endswith(_REST_PREFIX):
            raise ConfigurationError(
                f"zuora: base_url {base_url!r} is a zconnect endpoint, which takes only the "
                "username/password pair; with client_id/client_secret give the REST host "
                "(https://rest.zuora.com, say, or with its /reporting/api/rest/v1 prefix)"
            )
        from zuora_reporting_client import client_urls

        urls = client_urls(root)
        return Endpoints(urls["base_url"], urls["oauth_base_url"])
    api = resolve_base_url(settings, endpoint_family="rest")
    return Endpoints(api, api.removesuffix(_REST_PREFIX))


def resolve_base_url(settings: Mapping[str, Any], *, endpoint_family: str = "zconnect") -> str:
    """The API endpoint (with its family's prefix) for these settings.

    ``base_url`` wins only when alone: both given is a mistake worth stopping on, since the
    two could name different data centers and credentials are per data center.
    """
    from zuora_reporting_client import DEFAULT_DATA_CENTER, ZUORA_DATA_CENTERS

    family: EndpointFamily = "rest" if endpoint_family == "rest" else "zconnect"
    base_url = settings.get("base_url")
    data_center = settings.get("data_center")
    if base_url and data_center:
        raise ConfigurationError(
            "zuora: set base_url or data_center, not both "
            f"(base_url={base_url!r}, data_center={data_center!r})"
        )
    if base_url:
        return str(base_url).rstrip("/")
    if not data_center:
        return ZUORA_DATA_CENTERS[DEFAULT_DATA_CENTER].base_url(family)
    name = canonical_name(str(data_center), ZUORA_DATA_CENTERS)
    if name is None:
        raise ConfigurationError(
            f"zuora: unknown data_center {data_center!r}; valid names: "
            f"{', '.join(ZUORA_DATA_CENTERS)} (or set base_url to the API endpoint)"
        )
    return ZUORA_DATA_CENTERS[name].base_url(family)
