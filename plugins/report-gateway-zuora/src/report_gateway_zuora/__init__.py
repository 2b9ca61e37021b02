"""report-gateway provider plugin: the Zuora Reporting API (zuora)."""
