"""Low-level client for the Zuora Reporting API.

`Client` and `models` are generated into `_generated/` from specs/zuora-reporting.yaml;
`DATA_CENTERS` (name -> base URL) is hand-written data beside them.
"""

from __future__ import annotations

from zuora_reporting_client._generated import models
from zuora_reporting_client._generated.client import OPERATIONS, USER_AGENT, Client
from zuora_reporting_client.data_centers import DATA_CENTERS, DEFAULT_DATA_CENTER

__all__ = ["DATA_CENTERS", "DEFAULT_DATA_CENTER", "OPERATIONS", "USER_AGENT", "Client", "models"]
