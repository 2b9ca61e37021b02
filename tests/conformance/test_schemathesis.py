"""Schemathesis generates requests from specs/*.yaml; every answer the sandbox gives must
conform: no 5xx, a documented status, a documented content type, a body matching its schema.

Bounded on purpose (a few examples per operation, no shrinking): this is a property check
of the sandbox against the specs, not a fuzzing campaign. Most generated ids are unknown,
so it mostly exercises the error answers; tests/conformance/test_responses.py covers the
success answers deliberately.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from report_gateway_sandbox import (
    STRIPE_TEST_KEY,
    ZUORA_ACCESS_KEY_ID,
    ZUORA_SECRET_ACCESS_KEY,
    Sandbox,
    SandboxConfig,
)

from .conftest import SPEC_FILES

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
# Issue 11: Zuora's token operation is in the spec before the sandbox emulates OAuth (a later
# change on the sandbox); drop this entry when the sandbox serves it.
NOT_YET_SERVED = {("zuora", "POST /oauth/token")}
OPERATIONS = [
    (provider, op)
    for provider, schema in SCHEMAS.items()
    for op in (result.ok() for result in schema.get_all_operations())
    if (provider, op.label) not in NOT_YET_SERVED
]


@pytest.fixture(scope="module")
def fuzz_sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(run_seconds=0.2, result_rows=3)) as sb:
        yield sb


def _target(sandbox: Sandbox, provider: str) -> tuple[str, dict[str, str]]:
    if provider == "zuora":
        return sandbox.zuora_base_url, {
            "apiAccessKeyId": ZUORA_ACCESS_KEY_ID,
            "apiSecretAccessKey": ZUORA_SECRET_ACCESS_KEY,
        }
    return sandbox.url, {"Authorization": f"Bearer {STRIPE_TEST_KEY}"}


@pytest.mark.parametrize(
    ("provider", "operation"),
    OPERATIONS,
    ids=[f"{provider}:{op.label}" for provider, op in OPERATIONS],
)
def test_generated_requests_get_conforming_answers(
    provider: str, operation: Any, fuzz_sandbox: Sandbox
) -> None:
    base_url, auth = _target(fuzz_sandbox, provider)

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

    answers_conform()
