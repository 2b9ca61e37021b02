"""Low-level client for the Zuora Reporting API.

`Client` and `models` are generated into `_generated/` from specs/zuora-reporting.yaml;
the data-center table (`ZUORA_DATA_CENTERS`, `base_url`, `client_urls`; the zconnect-only
`DATA_CENTERS`) is hand-written data beside them.
"""

from __future__ import annotations

from zuora_reporting_client._generated import models
from zuora_reporting_client._generated.client import OPERATIONS, USER_AGENT, Client
from zuora_reporting_client.data_centers import (
    DATA_CENTERS,
    DEFAULT_DATA_CENTER,
    ENDPOINT_FAMILIES,
    PATH_PREFIXES,
    ZUORA_DATA_CENTERS,
    DataCenter,
    EndpointFamily,
    base_url,
    client_urls,
)

__all__ = [
    "DATA_CENTERS",
    "DEFAULT_DATA_CENTER",
    "ENDPOINT_FAMILIES",
    "OPERATIONS",
    "PATH_PREFIXES",
    "USER_AGENT",
    "ZUORA_DATA_CENTERS",
    "Client",
    "DataCenter",
    "EndpointFamily",
    "base_url",
    "client_urls",
    "models",
]
