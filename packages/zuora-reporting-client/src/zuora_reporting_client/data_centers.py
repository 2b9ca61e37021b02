"""Zuora's data centers and the Reporting API endpoint each one serves.

Data, not code: copied from Zuora's host table (the older "zconnect" hosts, path prefix
`/api/rest/v1`, which take the apiAccessKeyId/apiSecretAccessKey headers). The names are the
`x-server-name`s of specs/zuora-reporting.yaml. Two entries differ from how Zuora prints them:
APAC production is printed with http:// (TLS is used here) and the APAC hosts are printed
without the prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

DEFAULT_DATA_CENTER = "us-cloud-2-production"

DATA_CENTERS: Mapping[str, str] = MappingProxyType(
    {
        "us-cloud-1-production": "https://zconnect.na.zuora.com/api/rest/v1",
        "us-cloud-1-sandbox": "https://zconnect.sandbox.na.zuora.com/api/rest/v1",
        "us-cloud-2-production": "https://zconnect.zuora.com/api/rest/v1",
        "us-cloud-2-sandbox": "https://zconnectsandbox.zuora.com/api/rest/v1",
        "eu-production": "https://zconnect.eu.zuora.com/api/rest/v1",
        "eu-sandbox": "https://zconnect.sandbox.eu.zuora.com/api/rest/v1",
        "us-central-sandbox": "https://zconnect-services0001.test.zuora.com/api/rest/v1",
        "eu-central-sandbox": "https://zconnect-services0002.test.eu.zuora.com/api/rest/v1",
        "apac-sandbox": "https://zconnect-services0003.test.ap.zuora.com/api/rest/v1",
        "apac-production": "https://zconnect-prod05.ap.zuora.com/api/rest/v1",
    }
)
"""Data-center name -> base URL to pass as `Client(base_url=...)`."""
