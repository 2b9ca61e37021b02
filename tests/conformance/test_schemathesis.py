"""Schemathesis generates requests from specs/*.yaml; every answer the sandbox gives must
conform: no 5xx, a documented status, a documented content type, a body matching its schema.

Bounded on purpose (a few examples per operation, no shrinking): this is a property check
of the sandbox against the specs, not a fuzzing campaign. Most generated ids are unknown,
so it mostly exercises the error answers; tests/conformance/test_responses.py covers the
success answers deliberately. Zuora's operations run on both endpoint families (the zconnect
hosts' header pair, the REST hosts' bearer token from the sandbox's own ``/oauth/token``);
its token operation runs at the host root, where its server in the spec puts it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from report_gateway_sandbox import (
    STRIPE_TEST_KEY,
    ZUORA_ACCESS_KEY_ID,
    ZUORA_REST_PREFIX,
    ZUORA_SECRET_ACCESS_KEY,
    Sandbox,
    SandboxConfig,
)

from .conftest import SPEC_FILES, Wire

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _open_enums(node: Any) -> Any:
    """The project's `x-open-enum: true` means unknown values are kept: no `enum` rule."""
    if isinstance(node, dict):
        out = {k: _open_enums(v) for k, v in node.items()}
        if out.get("x-open-enum") is True:
            out.pop("enum", None)
        return out
    if isinstance(node, list):
        return [_open_enums(v) for v in node]
    return node


def _schema(provider: str) -> Any:
    raw = yaml.safe_load(SPEC_FILES[provider].read_text("utf-8"))
    return schemathesis.openapi.from_dict(_open_enums(copy.deepcopy(raw)))


SCHEMAS = {provider: _schema(provider) for provider in SPEC_FILES}
TOKEN_OPERATION = "POST /oauth/token"


def _families(provider: str, label: str) -> list[str]:
    """Where an operation is sent: Zuora's on both endpoint families, its token operation
    once (it has a server of its own, the REST host root); Stripe's as they are."""
    if provider != "zuora":
        return [provider]
    if label == TOKEN_OPERATION:
        return ["zuora-oauth"]
    return ["zuora", "zuora-rest"]


OPERATIONS = [
    (target, op)
    for provider, schema in SCHEMAS.items()
    for op in (result.ok() for result in schema.get_all_operations())
    for target in _families(provider, op.label)
]


@pytest.fixture(scope="module")
def fuzz_sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(run_seconds=0.2, result_rows=3)) as sb:
        yield sb


@pytest.fixture(scope="module")
def bearer(fuzz_sandbox: Sandbox) -> str:
    """A token for the REST family from the sandbox's token endpoint (its default client)."""
    return Wire(fuzz_sandbox).token()


def _target(sandbox: Sandbox, target: str, bearer: str) -> tuple[str, dict[str, str]]:
    if target == "zuora":
        return sandbox.zuora_base_url, {
            "apiAccessKeyId": ZUORA_ACCESS_KEY_ID,
            "apiSecretAccessKey": ZUORA_SECRET_ACCESS_KEY,
        }
    if target == "zuora-rest":
        return sandbox.url + ZUORA_REST_PREFIX, {"Authorization": f"Bearer {bearer}"}
    if target == "zuora-oauth":
        return sandbox.url, {}  # the client's credentials are the (generated) form body
    return sandbox.url, {"Authorization": f"Bearer {STRIPE_TEST_KEY}"}


@pytest.mark.parametrize(
    ("target", "operation"),
    OPERATIONS,
    ids=[f"{target}:{op.label}" for target, op in OPERATIONS],
)
def test_generated_requests_get_conforming_answers(
    target: str, operation: Any, fuzz_sandbox: Sandbox, bearer: str
) -> None:
    base_url, auth = _target(fuzz_sandbox, target, bearer)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def answers_conform(case: Any) -> None:
        response = case.call(base_url=base_url, headers=auth, timeout=10)
        case.validate_response(response, checks=CHECKS)

    before = len(fuzz_sandbox.stats()["request_log"])
    answers_conform()
    # The answers came from the operation on the intended family (not a route the sandbox
    # does not know), and the REST family's were not all refusals of the bearer token.
    prefix = urlsplit(base_url).path
    seen = [
        entry
        for entry in fuzz_sandbox.stats()["request_log"][before:]
        if entry["path"].startswith(prefix + "/") and entry["operation"]
    ]
    assert seen, f"no request reached {operation.label} under {prefix or '/'}"
    if target == "zuora-rest":
        assert any(entry["status"] != 401 for entry in seen)
