"""Loading the hand-written specs and turning their schemas into jsonschema validators.

The specs are OpenAPI 3.1, whose schema dialect is JSON Schema 2020-12, so jsonschema can
check payloads against them directly once `$ref`s resolve inside the spec document. Two
project conventions need a lenient reading: `x-open-enum: true` means a client keeps
values outside `enum` (so the check drops `enum` there), and custom formats
(`unix-time`, `zuora-time`, `int64`) are carried by their types, not asserted.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO = Path(__file__).resolve().parents[2]
SPECS_DIR = REPO / "specs"
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
CASSETTES_DIR = REPO / "tests" / "cassettes"
SHARED_REFERENCE = REPO.parent / "shared" / "reference"

SPEC_FILES = {
    "stripe": "stripe-reporting-v1.yaml",
    "stripe-v2": "stripe-reporting-v2.yaml",
    "zuora": "zuora-reporting.yaml",
}
SPEC_URI = "urn:report-gateway:spec"

# RFC 3339 as the providers print it: up to nine fractional digits, `Z`, `+00:00` or `+0000`.
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE
)
FORMAT_CHECKER = jsonschema.FormatChecker(formats=())


@FORMAT_CHECKER.checks("date-time")
def _is_provider_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def load_spec(provider: str) -> dict[str, Any]:
    with (SPECS_DIR / SPEC_FILES[provider]).open(encoding="utf-8") as fh:
        spec: dict[str, Any] = yaml.safe_load(fh)
    return spec


def _open_enums(node: Any) -> Any:
    """Drop `enum` where the spec marks it open: the client keeps unknown values."""
    if isinstance(node, dict):
        out = {k: _open_enums(v) for k, v in node.items()}
        if out.get("x-open-enum") is True:
            out.pop("enum", None)
        return out
    if isinstance(node, list):
        return [_open_enums(v) for v in node]
    return node


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _resolve(spec: dict[str, Any], pointer: str) -> Any:
    node: Any = spec
    for raw in pointer.lstrip("#/").split("/"):
        node = node[raw.replace("~1", "/").replace("~0", "~")]
    return node


def operations(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (METHOD, path, operation object)."""
    found = {}
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                op = item[method]
                found[op["operationId"]] = (method.upper(), path, op)
    return found


class SpecSchemas:
    """Validators for one spec's request and response schemas, found by operation."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.spec = load_spec(provider)
        lenient = _open_enums(copy.deepcopy(self.spec))
        resource = Resource.from_contents(lenient, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self.ops = operations(self.spec)

    def validator(self, pointer: str) -> jsonschema.Draft202012Validator:
        return jsonschema.Draft202012Validator(
            {"$ref": f"{SPEC_URI}{pointer}"},
            registry=self.registry,
            format_checker=FORMAT_CHECKER,
        )

    def component(self, name: str) -> jsonschema.Draft202012Validator:
        return self.validator(f"#/components/schemas/{_escape(name)}")

    def _op_pointer(self, operation_id: str) -> str:
        method, path, _ = self.ops[operation_id]
        return f"#/paths/{_escape(path)}/{method.lower()}"

    def request(self, operation_id: str, media_type: str) -> jsonschema.Draft202012Validator:
        pointer = f"{self._op_pointer(operation_id)}/requestBody"
        body = _resolve(self.spec, pointer)
        assert media_type in body["content"], f"{operation_id} takes no {media_type} body"
        return self.validator(f"{pointer}/content/{_escape(media_type)}/schema")

    def response_pointer(self, operation_id: str, status: int, media_type: str) -> str:
        responses_ptr = f"{self._op_pointer(operation_id)}/responses"
        responses = _resolve(self.spec, responses_ptr)
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in responses:
                pointer = f"{responses_ptr}/{key}"
                break
        else:
            raise AssertionError(f"{operation_id} documents no response for HTTP {status}")
        response = _resolve(self.spec, pointer)
        if "$ref" in response:
            pointer = response["$ref"]
            response = _resolve(self.spec, pointer)
        content = response.get("content", {})
        assert media_type in content, (
            f"{operation_id} HTTP {status}: no {media_type!r} (has {sorted(content)})"
        )
        return f"{pointer}/content/{_escape(media_type)}/schema"

    @staticmethod
    def errors(validator: jsonschema.Draft202012Validator, payload: Any) -> list[str]:
        """Readable validation errors (empty when the payload fits)."""
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(payload)
        ]

    def response(
        self, operation_id: str, status: int, media_type: str = "application/json"
    ) -> jsonschema.Draft202012Validator:
        return self.validator(self.response_pointer(operation_id, status, media_type))


@pytest.fixture(scope="session")
def spec_schemas() -> Callable[[str], SpecSchemas]:
    cache: dict[str, SpecSchemas] = {}

    def get(provider: str) -> SpecSchemas:
        if provider not in cache:
            cache[provider] = SpecSchemas(provider)
        return cache[provider]

    return get
