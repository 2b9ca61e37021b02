"""Stateful loopback emulator of the Stripe and Zuora reporting APIs, with fault injection."""
