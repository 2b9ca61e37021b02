"""Low-level client for Stripe Reports v2 (reports, report runs with pre-signed result URLs).

`Client` and `models` are generated into `_generated/` from specs/stripe-reporting-v2.yaml;
anything hand-written for this API belongs in this package beside that folder.
"""

from __future__ import annotations

from stripe_reporting_client.v2._generated import models
from stripe_reporting_client.v2._generated.client import OPERATIONS, USER_AGENT, Client

__all__ = ["OPERATIONS", "USER_AGENT", "Client", "models"]
