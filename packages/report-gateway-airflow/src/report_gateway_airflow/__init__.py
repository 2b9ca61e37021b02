"""Apache Airflow provider for report-gateway.

``ReportRunOperator`` starts a provider report run (once per task instance, whatever the
retries), defers to ``ReportRunTrigger`` while the provider works, and downloads the result
on a worker when it is done. ``ReportGatewayHook`` builds a ``Gateway`` from a connection of
type ``report_gateway``. Airflow itself is imported only by the submodules, so reading
``get_provider_info`` (what Airflow's providers manager does for every installed provider)
loads nothing heavy.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager reads through the ``apache_airflow_provider``
    entry point: the package, its connection type and where its classes live."""
    return {
        "package-name": "report-gateway-airflow",
        "name": "Report Gateway",
        "description": (
            "Run Stripe, Stripe v2 and Zuora reports (and any report-gateway provider) from "
            "Airflow, deferring while the provider works."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Report Gateway",
                "external-doc-url": "https://github.com/report-gateway/report-gateway",
                "tags": ["service"],
            }
        ],
        "operators": [
            {
                "integration-name": "Report Gateway",
                "python-modules": ["report_gateway_airflow.operators"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Report Gateway",
                "python-modules": ["report_gateway_airflow.hooks"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Report Gateway",
                "python-modules": ["report_gateway_airflow.triggers"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "report_gateway",
                "hook-class-name": "report_gateway_airflow.hooks.ReportGatewayHook",
                "hook-name": "Report Gateway",
            }
        ],
    }
