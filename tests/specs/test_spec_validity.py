"""The three specs are valid OpenAPI 3.1 and keep the conventions the generator relies on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

SPECS = Path(__file__).resolve().parents[2] / "specs"
FILES = {
    "stripe": "stripe-reporting-v1.yaml",
    "stripe-v2": "stripe-reporting-v2.yaml",
    "zuora": "zuora-reporting.yaml",
}
METHODS = ("get", "put", "post", "delete", "patch")

# Section 2 of the interface contract: operationIds are the generated method names.
CONTRACT_OPERATIONS = {
    "stripe": {
        "list_report_types",
        "retrieve_report_type",
        "create_report_run",
        "retrieve_report_run",
        "list_report_runs",
        "download_file_contents",
    },
    "stripe-v2": {"retrieve_report", "create_report_run", "retrieve_report_run"},
    "zuora": {
        "search_reports",
        "run_report",
        "get_report_run",
        "get_last_completed_report_run",
        "get_report_data",
        "export_report_run",
        "cancel_report_run",
        "create_token",
    },
}
CONTRACT_SCHEMAS = {
    "stripe": {
        "ReportType",
        "ReportTypeList",
        "ReportRun",
        "ReportRunStatus",
        "ReportRunParameters",
        "File",
        "FileLink",
        "CreateReportRunRequest",
        "CreateReportRunParameters",
        "Error",
        "ErrorBody",
    },
    "stripe-v2": {
        "Report",
        "ReportParameter",
        "ReportRun",
        "ReportRunStatus",
        "StatusDetail",
        "ReportRunResult",
        "ReportRunResultFile",
        "DownloadUrl",
        "CreateReportRunRequest",
        "Error",
    },
    "zuora": {
        "SearchReportsResponse",
        "RunReportResponse",
        "ReportRunResponse",
        "ReportDataResponse",
        "CancelReportRunResponse",
        "ReportRun",
        "ReportRunStatus",
        "FilterGroup",
    },
}
# The idempotency header each API documents (Zuora documents none, so its POSTs are never
# retried); codegen reads it from the spec's root.
IDEMPOTENCY_HEADERS = {"stripe": "Idempotency-Key", "stripe-v2": "Idempotency-Key", "zuora": None}


def _load(provider: str) -> dict[str, Any]:
    with (SPECS / FILES[provider]).open(encoding="utf-8") as fh:
        spec: dict[str, Any] = yaml.safe_load(fh)
    return spec


def _operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        item[m]["operationId"]: item[m]
        for item in spec["paths"].values()
        for m in METHODS
        if m in item
    }


def _header_names(spec: dict[str, Any], op: dict[str, Any]) -> set[str]:
    names = set()
    for param in op.get("parameters", []):
        if "$ref" in param:
            param = spec["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
        if param["in"] == "header":
            names.add(param["name"])
    return names


@pytest.mark.parametrize("provider", sorted(FILES))
def test_spec_is_valid_openapi_3_1(provider: str) -> None:
    OpenAPIV31SpecValidator(_load(provider)).validate()


@pytest.mark.parametrize("provider", sorted(FILES))
def test_operation_ids_are_the_contracts_method_names(provider: str) -> None:
    assert set(_operations(_load(provider))) == CONTRACT_OPERATIONS[provider]


@pytest.mark.parametrize("provider", sorted(FILES))
def test_contract_model_names_exist_as_pascal_case_schemas(provider: str) -> None:
    schemas = _load(provider)["components"]["schemas"]
    assert CONTRACT_SCHEMAS[provider] <= set(schemas)
    assert all(re.fullmatch(r"(?:[A-Z][a-z0-9]*)+", name) for name in schemas), sorted(schemas)


@pytest.mark.parametrize("provider", sorted(FILES))
def test_every_operation_has_summary_and_description_for_docstrings(provider: str) -> None:
    spec = _load(provider)
    assert spec.get("x-idempotency-header") == IDEMPOTENCY_HEADERS[provider]
    for op_id, op in _operations(spec).items():
        assert op.get("summary"), op_id
        assert "\n" not in op["summary"].strip(), op_id
        assert op.get("description"), op_id


@pytest.mark.parametrize("provider", sorted(FILES))
def test_request_bodies_are_named_components(provider: str) -> None:
    for op_id, op in _operations(_load(provider)).items():
        for media in op.get("requestBody", {}).get("content", {}).values():
            schema = media["schema"]
            named = schema.get("$ref") or schema.get("items", {}).get("$ref")
            assert named, op_id
            assert named.startswith("#/components/schemas/"), op_id


def test_stripe_v1_headers_servers_and_form_encoding() -> None:
    spec = _load("stripe")
    ops = _operations(spec)
    for op_id, op in ops.items():
        headers = _header_names(spec, op)
        assert {"Stripe-Version", "Stripe-Account"} <= headers, op_id
        assert ("Idempotency-Key" in headers) == (op_id == "create_report_run"), op_id
    create = ops["create_report_run"]["requestBody"]["content"]
    assert create["application/x-www-form-urlencoded"]["encoding"]["parameters"] == {
        "style": "deepObject",
        "explode": True,
    }
    download = ops["download_file_contents"]
    assert download["servers"] == [
        {
            "url": "https://files.stripe.com",
            "description": download["servers"][0]["description"],
            "x-server-name": "files",
        }
    ]
    assert download["responses"]["200"]["content"]["text/csv"]["schema"]["format"] == "binary"
    assert set(spec["components"]["securitySchemes"]) == {"bearerAuth", "basicAuth"}


def test_stripe_v2_requires_stripe_version_with_the_preview_default() -> None:
    spec = _load("stripe-v2")
    version = spec["components"]["parameters"]["StripeVersion"]
    assert version["required"] is True
    assert version["schema"]["default"] == "2026-01-28.preview"
    for op_id, op in _operations(spec).items():
        assert {"Stripe-Version", "Stripe-Context"} <= _header_names(spec, op), op_id


def test_zuora_servers_security_and_entity_headers() -> None:
    spec = _load("zuora")
    families: dict[str, set[str]] = {}
    for server in spec["servers"]:
        families.setdefault(server["x-endpoint-family"], set()).add(server["url"])
    # Each data center once per family: REST hosts under /reporting/api/rest/v1 (the
    # default family, Zuora's current endpoints), deprecated zconnect under /api/rest/v1.
    assert {len(urls) for urls in families.values()} == {10}
    assert all(url.endswith(".zuora.com/reporting/api/rest/v1") for url in families["rest"])
    assert all("zconnect" in url and url.endswith("/api/rest/v1") for url in families["zconnect"])
    default = [s for s in spec["servers"] if s.get("x-default")]
    assert [s["url"] for s in default] == ["https://rest.zuora.com/reporting/api/rest/v1"]
    # OAuth, or one requirement object holding both keys: they are sent together.
    assert spec["security"] == [{"oauth2": []}, {"apiAccessKeyId": [], "apiSecretAccessKey": []}]
    flows = spec["components"]["securitySchemes"]["oauth2"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == "https://rest.zuora.com/oauth/token"
    ops = _operations(spec)
    for op_id, op in ops.items():
        headers = _header_names(spec, op)
        assert {"Zuora-Entity-Ids", "Zuora-Track-Id"} <= headers, op_id
        assert ("Idempotency-Key" in headers) == (op_id == "run_report"), op_id
        if op_id != "create_token":
            assert {"entityId", "entityName"} <= headers, op_id
            documented = op["x-documented-as"]
            assert documented["rest"].split(" ", 1)[1].startswith("/reporting/api/rest/v1/")
            assert documented["zconnect"].split(" ", 1)[1].startswith("/api/rest/v1/")
    assert "delete" in spec["paths"]["/reportruns/{reportRunId}"]
    token = spec["paths"]["/oauth/token"]
    assert token["servers"][0]["url"] == "https://rest.zuora.com"
    assert token["post"]["security"] == []
    body = token["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert body["schema"] == {"$ref": "#/components/schemas/CreateTokenRequest"}
