"""report-gateway provider plugin: Stripe Reporting v1 (stripe) and Reports v2 (stripe-v2)."""
