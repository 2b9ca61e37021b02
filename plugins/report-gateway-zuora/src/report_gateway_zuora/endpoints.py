"""Which Zuora host a driver talks to: a ``base_url``, or a data-center name from the table.

The table itself is data owned by the client (``zuora_reporting_client.DATA_CENTERS``); this
module only reads names the way people write them ("US Cloud 2 Sandbox", "eu_sandbox") and
the older names Zuora's pages still use ("US API Sandbox" is US Cloud 2's sandbox).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from report_gateway.provider import ConfigurationError

__all__ = ["ALIASES", "canonical_name", "resolve_base_url"]

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


def canonical_name(name: str, known: Mapping[str, str]) -> str | None:
    """The table's name for ``name`` (case, spaces and underscores ignored), or None."""
    key = _SEPARATORS.sub("-", name.strip().lower()).strip("-")
    if key in known:
        return key
    alias = ALIASES.get(key)
    return alias if alias in known else None


def resolve_base_url(settings: Mapping[str, Any]) -> str:
    """The API endpoint (with its ``/api/rest/v1`` prefix) for these settings.

    ``base_url`` wins only when alone: both given is a mistake worth stopping on, since the
    two could name different data centers and credentials are per data center.
    """
    from zuora_reporting_client import DATA_CENTERS, DEFAULT_DATA_CENTER

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
        return DATA_CENTERS[DEFAULT_DATA_CENTER]
    name = canonical_name(str(data_center), DATA_CENTERS)
    if name is None:
        raise ConfigurationError(
            f"zuora: unknown data_center {data_center!r}; valid names: "
            f"{', '.join(DATA_CENTERS)} (or set base_url to the API endpoint)"
        )
    return DATA_CENTERS[name]
