"""Generated low-level client for the Zuora Reporting API."""
