"""Stateful loopback emulator of the Stripe and Zuora reporting APIs, with fault injection.

One WSGI application (`SandboxApp`) serves Stripe Reporting v1, Stripe Reports v2 and the
Zuora Reporting API on their real paths; `Sandbox` runs it on a free loopback port in a
thread; `python -m report_gateway_sandbox` runs it in the foreground.
"""

from __future__ import annotations

from report_gateway_sandbox.app import SandboxApp, operations_of
from report_gateway_sandbox.config import FAULT_KINDS, FaultRule, SandboxConfig
from report_gateway_sandbox.credentials import (
    STRIPE_TEST_KEY,
    STRIPE_WEBHOOK_SECRET,
    ZUORA_ACCESS_KEY_ID,
    ZUORA_CLIENT_ID,
    ZUORA_CLIENT_SECRET,
    ZUORA_SECRET_ACCESS_KEY,
)
from report_gateway_sandbox.server import Sandbox, make_server
from report_gateway_sandbox.zuora import ENTITIES as ZUORA_ENTITIES
from report_gateway_sandbox.zuora import REST_PREFIX as ZUORA_REST_PREFIX

__all__ = [
    "FAULT_KINDS",
    "STRIPE_TEST_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "ZUORA_ACCESS_KEY_ID",
    "ZUORA_CLIENT_ID",
    "ZUORA_CLIENT_SECRET",
    "ZUORA_ENTITIES",
    "ZUORA_REST_PREFIX",
    "ZUORA_SECRET_ACCESS_KEY",
    "FaultRule",
    "Sandbox",
    "SandboxApp",
    "SandboxConfig",
    "make_server",
    "operations",
]


def operations() -> list[dict[str, object]]:
    """Every operation the sandbox serves: provider, method, OpenAPI path template, name,
    and whether it belongs in the provider's spec (pre-signed downloads do not)."""
    return operations_of(SandboxApp().routes())
