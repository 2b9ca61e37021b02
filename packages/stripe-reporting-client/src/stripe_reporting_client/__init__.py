"""Generated low-level clients for Stripe Reporting v1 and Reports v2."""
