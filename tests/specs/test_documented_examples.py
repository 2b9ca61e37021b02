"""Every payload the providers' pages print fits the matching schema of our specs.

Examples live as data in `examples/<provider>/<page-slug>__<operation>[--variant].json`,
each naming the page it comes from. Stripe's own fixtures and the examples inside Stripe's
published preview description are read from the shared references when present.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent / "examples"
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "stripe-openapi"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*/*.json"))

SchemasFor = Callable[[str], Any]
NOT_ANY = "is not valid under any of the given schemas"


def _example_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def test_every_operation_has_at_least_one_documented_example(spec_schemas: SchemasFor) -> None:
    covered: dict[str, set[str]] = {}
    for path in EXAMPLE_FILES:
        covered.setdefault(path.parent.name, set()).add(json.loads(path.read_text())["operation"])
    stripe_v1_without_pages = {
        "list_report_types",
        "retrieve_report_type",
        "download_file_contents",
    }
    for provider in ("stripe", "stripe-v2", "zuora"):
        missing = set(spec_schemas(provider).ops) - covered.get(provider, set())
        # Stripe's seeded pages print no report-type or file example; the fixtures test
        # below covers report types, and the cassettes cover all three.
        if provider == "stripe":
            missing -= stripe_v1_without_pages
        assert not missing, f"{provider}: no example for {sorted(missing)}"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_example_id)
def test_documented_example_fits_its_schema(path: Path, spec_schemas: SchemasFor) -> None:
    example = json.loads(path.read_text(encoding="utf-8"))
    assert example["source"]["url"]
    assert example["source"]["title"]
    schemas = spec_schemas(path.parent.name)
    if "schema" in example:  # a shape the operation's own schema does not describe (200 + error)
        validator = schemas.component(example["schema"])
    elif example["kind"] == "request":
        validator = schemas.request(example["operation"], example["media_type"])
    else:
        validator = schemas.response(example["operation"], example["status"], example["media_type"])
    assert schemas.errors(validator, example["payload"]) == []


def test_zuora_json_string_error_decodes_to_the_detail_schema(spec_schemas: SchemasFor) -> None:
    schemas = spec_schemas("zuora")
    name = "reference-zuora-reporting__run_report--400-json-string.json"
    example = json.loads((EXAMPLES / "zuora" / name).read_text())
    detail = json.loads(example["payload"]["response"])
    assert schemas.errors(schemas.component("ZuoraErrorDetail"), detail) == []
    assert detail["errorCode"] == "ZAN-USAGE-REST-ERROR"


def _shared(name: str) -> dict[str, Any]:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"shared reference {path} is absent (tests run outside the project workspace)")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(
    ("resource", "schema"),
    [
        ("reporting.report_run", "ReportRun"),
        ("reporting.report_type", "ReportType"),
        ("file", "File"),
    ],
)
def test_stripe_fixtures_fit_the_v1_schemas(
    resource: str, schema: str, spec_schemas: SchemasFor
) -> None:
    fixture = _shared("v1_reporting_fixtures.json")["resources"][resource]
    schemas = spec_schemas("stripe")
    assert schemas.errors(schemas.component(schema), fixture) == []


def test_stripe_published_v2_examples_fit_the_spec(spec_schemas: SchemasFor) -> None:
    """Stripe's published preview examples validate as printed, including the report
    example's `"enum_details": false` for an array parameter (a non-object means absent)."""
    fragment = _shared("v2_reporting_fragment.json")
    schemas = spec_schemas("stripe-v2")
    checked = 0
    for path, item in fragment["paths"].items():
        for op in item.values():
            media = op["responses"]["200"]["content"]["application/json"]
            op_id = {
                "/v2/reporting/reports/{id}": "retrieve_report",
                "/v2/reporting/report_runs": "create_report_run",
                "/v2/reporting/report_runs/{id}": "retrieve_report_run",
            }[path]
            for example in media.get("examples", {}).values():
                errors = schemas.errors(schemas.response(op_id, 200), example["value"])
                checked += 1
                assert errors == [], errors
    assert checked == 5


def test_stripe_published_report_example_parses_with_enum_details_false() -> None:
    """The plugin retrieves the report before every create: Stripe's own example must parse."""
    from reporting_runtime.converter import structure
    from stripe_reporting_client.v2 import models

    fragment = _shared("v2_reporting_fragment.json")
    op = fragment["paths"]["/v2/reporting/reports/{id}"]["get"]
    examples = op["responses"]["200"]["content"]["application/json"]["examples"]
    falses = 0
    for example in examples.values():
        report = structure(example["value"], models.Report)
        for name, raw in example["value"]["parameters"].items():
            parameter = report.parameters[name]
            if raw.get("enum_details") is False:
                falses += 1
                assert parameter.enum_details is None
                # The rest of the parameter is read as usual, and what Stripe sent is kept.
                assert parameter.array_details is not None
                assert parameter.array_details.enum_details is not None
                assert parameter.array_details.enum_details.allowed_values
                assert parameter.raw_payload == raw
    assert falses == 1


def test_stripe_v2_details_refuse_a_non_object_other_than_false(spec_schemas: SchemasFor) -> None:
    schemas = spec_schemas("stripe-v2")
    validator = schemas.component("ReportParameter")
    base = {"required": True, "type": "enum"}
    assert schemas.errors(validator, {**base, "enum_details": False}) == []
    assert schemas.errors(validator, {**base, "enum_details": None}) == []
    assert schemas.errors(validator, {**base, "enum_details": "x"})
    assert schemas.errors(validator, {**base, "enum_details": True})


# ---- the check can fail: wrong payloads are refused --------------------------------------


def _run_v1() -> dict[str, Any]:
    path = EXAMPLES / "stripe" / "stripe-api-reporting-report-run__retrieve_report_run.json"
    payload: dict[str, Any] = json.loads(path.read_text())["payload"]
    return payload


def test_stripe_v1_run_with_a_string_timestamp_is_refused(spec_schemas: SchemasFor) -> None:
    schemas = spec_schemas("stripe")
    run = {**_run_v1(), "created": "2023-03-30T19:15:49Z"}
    assert schemas.errors(schemas.response("retrieve_report_run", 200), run)


def test_stripe_v1_list_without_envelope_is_refused(spec_schemas: SchemasFor) -> None:
    schemas = spec_schemas("stripe")
    assert schemas.errors(schemas.response("list_report_runs", 200), [_run_v1()])
    wrong_object = {
        "object": "report_run",
        "data": [],
        "has_more": False,
        "url": "/v1/reporting/report_runs",
    }
    assert schemas.errors(schemas.response("list_report_runs", 200), wrong_object)


def test_stripe_v2_size_must_be_digits_and_status_details_objects(spec_schemas: SchemasFor) -> None:
    schemas = spec_schemas("stripe-v2")
    path = EXAMPLES / "stripe-v2" / "stripe-reports-v2-api__retrieve_report_run.json"
    run = json.loads(path.read_text())["payload"]
    run["result"]["file"]["size"] = "209 bytes"
    assert schemas.errors(schemas.response("retrieve_report_run", 200), run)
    run["result"]["file"]["size"] = "209"
    run["status_details"] = {"failed": "internal_error"}
    assert schemas.errors(schemas.response("retrieve_report_run", 200), run)


def test_stripe_v2_timestamp_with_ten_fraction_digits_is_refused(spec_schemas: SchemasFor) -> None:
    schemas = spec_schemas("stripe-v2")
    name = "stripe-api-v2-reporting-report-runs-create__create_report_run.json"
    path = EXAMPLES / "stripe-v2" / name
    run = json.loads(path.read_text())["payload"]
    run["created"] = "2025-08-26T00:00:00.0000000001Z"
    assert schemas.errors(schemas.response("create_report_run", 200), run)


def test_stripe_v2_create_body_needs_a_report_and_string_values(spec_schemas: SchemasFor) -> None:
    schemas = spec_schemas("stripe-v2")
    validator = schemas.request("create_report_run", "application/json")
    assert schemas.errors(validator, {"report_parameters": {}})
    assert schemas.errors(validator, {"report": "report_123", "report_parameters": {"limit": 5}})


def test_zuora_envelope_without_reports_array_is_refused(spec_schemas: SchemasFor) -> None:
    schemas = spec_schemas("zuora")
    validator = schemas.response("search_reports", 200)
    assert schemas.errors(validator, {"success": True, "response": {"reports": {"id": "x"}}})
    assert schemas.errors(validator, {"reports": []})


def test_zuora_timestamps_accept_epoch_millis_and_offset_strings(spec_schemas: SchemasFor) -> None:
    schemas = spec_schemas("zuora")
    validator = schemas.component("ReportRun")
    base = {"id": "r1", "status": "COMPLETED"}
    assert schemas.errors(validator, {**base, "startedOn": 1453166692000}) == []
    assert schemas.errors(validator, {**base, "startedOn": "2018-04-13T02:11:38.464+0000"}) == []
    assert schemas.errors(validator, {**base, "startedOn": 1453166692.5})
    # Open enum: a status Zuora adds later is kept, not refused; a non-string is refused.
    assert schemas.errors(validator, {**base, "status": "ARCHIVED"}) == []
    assert schemas.errors(validator, {**base, "status": 3})
