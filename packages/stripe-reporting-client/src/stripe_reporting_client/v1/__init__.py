"""Low-level client for Stripe Reporting v1: report types, report runs, result files.

`Client` and `models` are generated into `_generated/` from specs/stripe-reporting-v1.yaml;
anything hand-written for this API belongs in this package beside that folder.
"""

from __future__ import annotations

from stripe_reporting_client.v1._generated import models
from stripe_reporting_client.v1._generated.client import OPERATIONS, USER_AGENT, Client

__all__ = ["OPERATIONS", "USER_AGENT", "Client", "models"]
