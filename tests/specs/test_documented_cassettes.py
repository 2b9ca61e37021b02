"""The hand-assembled cassettes of documented examples are well-formed, say where they come
from, cover every operation of every spec, hold no credentials, and their JSON bodies fit
the specs (so a replay through a generated client exercises real documented shapes)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes"
PROVIDERS = ("stripe", "stripe-v2", "zuora")
CASSETTE_FILES = sorted(p for prov in PROVIDERS for p in (CASSETTES / prov / "docs").glob("*.yaml"))
HOSTS = {
    "stripe": {"api.stripe.com", "files.stripe.com"},
    "stripe-v2": {"api.stripe.com"},
    "zuora": {"zconnectsandbox.zuora.com", "rest.apisandbox.zuora.com"},
}
SchemasFor = Callable[[str], Any]


def _provider(path: Path) -> str:
    return path.parent.parent.name


def _load(path: Path) -> tuple[list[Any], list[dict[str, Any]]]:
    requests, responses = deserialize(path.read_text(encoding="utf-8"), yamlserializer)
    return requests, responses


def _operation_for(schemas: Any, method: str, url: str) -> str:
    """Match a recorded request to the operationId whose path template fits it."""
    path = urlsplit(url).path
    # The root servers' prefixes, and "" for operations on a server of their own (a host
    # root: Zuora's /oauth/token, Stripe's files host).
    base_paths = [urlsplit(s["url"]).path.rstrip("/") for s in schemas.spec["servers"]] + [""]
    for op_id, (op_method, template, _) in schemas.ops.items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if op_method == method and any(re.fullmatch(b + pattern, path) for b in base_paths):
            return op_id
    raise AssertionError(f"no operation for {method} {url}")


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=lambda p: f"{_provider(p)}/{p.stem}")
def test_cassette_is_labelled_and_loads_with_vcrpy(path: Path) -> None:
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("# documented ")
    assert "assembled by hand" in first_line
    requests, responses = _load(path)
    assert requests
    assert len(requests) == len(responses)
    for request in requests:
        assert urlsplit(request.uri).hostname in HOSTS[_provider(path)]


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=lambda p: f"{_provider(p)}/{p.stem}")
def test_cassette_holds_no_credentials(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    # Stripe keys, whole or elided as on Stripe's pages, never appear: only the placeholder.
    assert not re.search(r"\b[sr]k_(test|live)_(?!REDACTED\b)\w+", text)
    assert "BQokikJ" not in text
    requests, _ = _load(path)
    for request in requests:
        auth = request.headers.get("Authorization", "")
        assert auth in (
            "",
            "Bearer sk_test_REDACTED",
            "Bearer REDACTED",
            "Basic c2tfdGVzdF9SRURBQ1RFRDo=",
        )
        for name in ("apiAccessKeyId", "apiSecretAccessKey"):
            assert request.headers.get(name, "REDACTED").endswith("REDACTED")


def test_cassettes_cover_every_operation_of_every_spec(spec_schemas: SchemasFor) -> None:
    for provider in PROVIDERS:
        schemas = spec_schemas(provider)
        seen = set()
        for path in CASSETTE_FILES:
            if _provider(path) == provider:
                requests, _ = _load(path)
                seen |= {_operation_for(schemas, r.method, r.uri) for r in requests}
        assert seen == set(schemas.ops), provider


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=lambda p: f"{_provider(p)}/{p.stem}")
def test_cassette_json_bodies_fit_the_spec(path: Path, spec_schemas: SchemasFor) -> None:
    schemas = spec_schemas(_provider(path))
    requests, responses = _load(path)
    for request, response in zip(requests, responses):
        op_id = _operation_for(schemas, request.method, request.uri)
        status = response["status"]["code"]
        content_type = (response["headers"].get("Content-Type") or [""])[0]
        body = response["body"]["string"]
        if not content_type.startswith("application/json"):
            continue
        payload = json.loads(body)
        if status == 200 and payload.get("success") is False:
            validator = schemas.component("ZuoraError")  # Zuora: HTTP 200 carrying a failure
        else:
            validator = schemas.response(op_id, status)
        assert schemas.errors(validator, payload) == [], f"{op_id} {status}"
        if request.body and request.headers.get("Content-Type") == "application/json":
            req_validator = schemas.request(op_id, "application/json")
            assert schemas.errors(req_validator, json.loads(request.body)) == []


def test_zuora_export_body_is_utf16_tab_separated(spec_schemas: SchemasFor) -> None:
    _, responses = _load(CASSETTES / "zuora" / "docs" / "overview-of-the-zuora-reporting-api.yaml")
    export = responses[-1]
    assert export["headers"]["Content-Type"] == ["text/csv;charset=utf-16"]
    rows = export["body"]["string"].decode("utf-16").splitlines()
    assert rows[0].split("\t") == ["Account: Currency", "Sum of Account: Account Balance"]
    assert rows[1:] == ["EUR\t4,800", "USD\t22,600.95"]
