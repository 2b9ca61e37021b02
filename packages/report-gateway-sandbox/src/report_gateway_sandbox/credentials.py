"""The test credentials the sandbox accepts out of the box.

Like Stripe's own mock server, any key starting with `sk_test_` is accepted for the Stripe
APIs; STRIPE_TEST_KEY is simply a ready-made one. Zuora credentials (the username/password
pair of the zconnect paths, the OAuth client of the REST-host paths) must match the
configured ones, whose defaults are these (the sandbox is loopback-only test tooling: they
guard nothing). Zuora prints client ids as 36 characters, so the default is one.
"""

from __future__ import annotations

STRIPE_TEST_KEY = "sk_test_sandbox_4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_KEY_PREFIX = "sk_test_"
ZUORA_ACCESS_KEY_ID = "sandbox-user@example.com"
ZUORA_SECRET_ACCESS_KEY = "sandbox-password"  # noqa: S105
ZUORA_CLIENT_ID = "5a4db0c5-0000-4000-8000-5a4db0c50001"
ZUORA_CLIENT_SECRET = "sandbox-client-secret"  # noqa: S105
#: Signs the webhook events the sandbox sends (`webhook_url`), as an endpoint secret would.
STRIPE_WEBHOOK_SECRET = "whsec_sandbox_7Fj2kQ9xLmN4pR8sT1vW"  # noqa: S105
