"""The sandbox on loopback, a bare HTTP client for it, and the specs' response schemas.

Requests here go through urllib3 alone (no generated client, no gateway): what is checked
is what the sandbox puts on the wire, against what specs/*.yaml say the provider sends.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema
import pytest
import urllib3
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from report_gateway_sandbox import (
    STRIPE_TEST_KEY,
    ZUORA_ACCESS_KEY_ID,
    ZUORA_CLIENT_ID,
    ZUORA_CLIENT_SECRET,
    ZUORA_REST_PREFIX,
    ZUORA_SECRET_ACCESS_KEY,
    Sandbox,
    SandboxConfig,
)

REPO = Path(__file__).resolve().parents[2]
SPEC_FILES = {
    "stripe": REPO / "specs" / "stripe-reporting-v1.yaml",
    "stripe-v2": REPO / "specs" / "stripe-reporting-v2.yaml",
    "zuora": REPO / "specs" / "zuora-reporting.yaml",
}
#: The sandbox serves Zuora under the path its servers carry (one per endpoint family: the
#: REST hosts' and the zconnect hosts'); the spec's paths omit it. The token operation sits
#: at the host root, as in the spec.
PATH_PREFIXES: dict[str, tuple[str, ...]] = {
    "stripe": (),
    "stripe-v2": (),
    "zuora": (ZUORA_REST_PREFIX, "/api/rest/v1"),
}
#: The token operation's form, with the sandbox's default OAuth client.
TOKEN_FORM = {
    "client_id": ZUORA_CLIENT_ID,
    "client_secret": ZUORA_CLIENT_SECRET,
    "grant_type": "client_credentials",
}
SPEC_URI = "urn:report-gateway:conformance-spec"
RUN_SECONDS = 0.4

_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE
)
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time")
def _provider_date_time(value: object) -> bool:
    """RFC 3339 as the providers print it (up to nine fractional digits, `+0000` too)."""
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


def _open_enums(node: Any) -> Any:
    """`x-open-enum: true` tells clients to keep unknown values, so `enum` is not a rule."""
    if isinstance(node, dict):
        out = {k: _open_enums(v) for k, v in node.items()}
        if out.get("x-open-enum") is True:
            out.pop("enum", None)
        return out
    if isinstance(node, list):
        return [_open_enums(v) for v in node]
    return node


def _pointer_token(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _media(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


@dataclass
class Checked:
    """What one response was checked against: for messages and the coverage list."""

    status_key: str
    media_type: str | None
    schema_checked: bool


class ProviderSpec:
    """One spec: finds the response object for (method, path, status) and validates bodies."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.spec: dict[str, Any] = yaml.safe_load(SPEC_FILES[provider].read_text("utf-8"))
        lenient = _open_enums(copy.deepcopy(self.spec))
        resource = Resource.from_contents(lenient, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)

    def has(self, method: str, path: str) -> bool:
        item = self.spec["paths"].get(self._spec_path(path))
        return bool(item) and method.lower() in item

    def _spec_path(self, path: str) -> str:
        for prefix in PATH_PREFIXES[self.provider]:
            if path.startswith(prefix + "/"):
                return path[len(prefix) :]
        return path

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.spec
            for raw in node["$ref"].lstrip("#/").split("/"):
                target = target[raw.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def response_pointer(self, method: str, path: str, status: int) -> tuple[str, str]:
        """(JSON pointer of the response object, the status key it was found under)."""
        spec_path = self._spec_path(path)
        operation = self.spec["paths"][spec_path][method.lower()]
        responses = operation["responses"]
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in responses:
                base = f"#/paths/{_pointer_token(spec_path)}/{method.lower()}/responses/{key}"
                ref = responses[key].get("$ref")
                return (ref if ref else base), key
        raise AssertionError(
            f"{self.provider} {method} {spec_path}: HTTP {status} is not a documented response "
            f"(documented: {sorted(responses)})"
        )

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes) -> Checked:
        pointer, key = self.response_pointer(method, path, status)
        response = self._deref({"$ref": pointer})
        content: Mapping[str, Any] = response.get("content") or {}
        if not content:
            assert not body, f"HTTP {status} documents no body, got {body[:80]!r}"
            return Checked(key, None, False)
        if not body and self.provider == "zuora" and status == 401:
            # The spec's Error response: "A bare 401 has no body at all".
            return Checked(key, None, False)
        wanted = {_media(m): m for m in content}
        got = _media(content_type)
        assert got in wanted, (
            f"HTTP {status} sent Content-Type {content_type!r}; documented: {sorted(content)}"
        )
        declared = wanted[got]
        if ";" in declared:  # e.g. Zuora's text/csv;charset=utf-16: the charset matters
            assert content_type.replace(" ", "").lower() == declared.replace(" ", "").lower()
        if "json" not in got:
            assert body, "a file or page with no bytes"
            return Checked(key, declared, False)
        media = content[declared]
        if "schema" not in media:
            return Checked(key, declared, False)
        pointer_to_schema = f"{pointer}/content/{_pointer_token(declared)}/schema"
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"{SPEC_URI}{pointer_to_schema}"},
            registry=self.registry,
            format_checker=FORMATS,
        )
        document = json.loads(body)
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:10]
        )
        return Checked(key, declared, True)


@pytest.fixture(scope="session")
def specs() -> dict[str, ProviderSpec]:
    return {name: ProviderSpec(name) for name in SPEC_FILES}


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def json(self) -> Any:
        return json.loads(self.body)


class Wire:
    """Bare HTTP to the sandbox with each provider's credentials (or wrong ones).

    Zuora comes as three "providers" here, one per kind of credential: ``zuora`` (the zconnect
    hosts' header pair), ``zuora-rest`` (the REST hosts' bearer token, fetched once from the
    sandbox's ``/oauth/token`` with its default OAuth client) and ``zuora-oauth`` (the token
    operation itself, which takes its credentials in the form and no auth header).
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(10))
        self._token: str | None = None

    def token(self) -> str:
        """A bearer token for the REST family, asked for once (the sandbox's tokens last an
        hour by default)."""
        if self._token is None:
            answer = self.send("zuora-oauth", "POST", "/oauth/token", form=TOKEN_FORM)
            assert answer.status == 200, answer.body[:300]
            self._token = str(answer.json()["access_token"])
        return self._token

    def auth(self, provider: str, *, valid: bool = True) -> dict[str, str]:
        if provider in ("stripe", "stripe-v2"):
            key = STRIPE_TEST_KEY if valid else "sk_live_not_a_sandbox_key"
            headers = {"Authorization": f"Bearer {key}"}
            if provider == "stripe-v2":
                headers["Stripe-Version"] = "2026-01-28.preview"
            return headers
        if provider == "zuora":
            return {
                "apiAccessKeyId": ZUORA_ACCESS_KEY_ID,
                "apiSecretAccessKey": ZUORA_SECRET_ACCESS_KEY if valid else "wrong-secret",
            }
        if provider == "zuora-rest":
            token = self.token() if valid else "0" * 32
            return {"Authorization": f"Bearer {token}"}
        return {}

    def send(
        self,
        provider: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        json_body: Any = None,
        valid: bool = True,
        headers: Mapping[str, str] | None = None,
        url: str | None = None,
    ) -> Answer:
        all_headers = {**self.auth(provider, valid=valid), **(headers or {})}
        body: bytes | None = None
        if form is not None:
            body = urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers["Content-Type"] = "application/json"
        target = url or self.sandbox.url + path
        if query:
            target += "?" + urlencode(query)
        response = self.http.request(
            method, target, body=body, headers=all_headers, preload_content=True
        )
        return Answer(response.status, dict(response.headers), response.data)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(run_seconds=RUN_SECONDS, result_rows=3)) as sb:
        yield sb


@pytest.fixture(scope="module")
def wire(sandbox: Sandbox) -> Wire:
    return Wire(sandbox)
