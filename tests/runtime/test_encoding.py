"""URL, query and body encodings, and how ApiClient applies them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import attrs
import pytest
from reporting_runtime import ApiClient, Operation
from reporting_runtime.encoding import encode_form, encode_query, expand_path
from reporting_runtime.types import OpenEnum, UnixTime
from zuora_reporting_client.errors import ERROR_READER as ZUORA_ERROR_READER


def test_path_parameters_are_percent_encoded_slash_included() -> None:
    assert expand_path("/v1/files/{file}/contents", {"file": "file_1/../x y"}) == (
        "/v1/files/file_1%2F..%2Fx%20y/contents"
    )
    with pytest.raises(ValueError, match="missing path parameter 'file'"):
        expand_path("/v1/files/{file}", {})


def test_deep_query_for_stripe() -> None:
    query = {"created": {"gte": 1680000000, "lt": 1690000000}, "limit": 3, "starting_after": None}
    assert encode_query(query, "deep") == "created[gte]=1680000000&created[lt]=1690000000&limit=3"
    assert encode_query({"expand": ["data.result", "x"]}, "deep") == (
        "expand[]=data.result&expand[]=x"
    )


def test_form_query_repeats_lists_and_spells_booleans() -> None:
    assert encode_query({"query": "Customer report", "pivoted": False, "x": None}) == (
        "query=Customer%20report&pivoted=false"
    )
    assert encode_query({"include": ["result.file.schema", "a"]}) == (
        "include=result.file.schema&include=a"
    )


def test_form_body_in_stripe_deep_object_style() -> None:
    body = {
        "report_type": "balance.summary.1",
        "parameters": {
            "columns": ["category", "net_amount"],
            "interval_start": datetime.fromtimestamp(1680000000, UTC),
            "connected_account": None,
        },
        "flag": True,
        "items": [{"a": 1}],
    }
    assert parse_qsl(encode_form(body).decode()) == [
        ("report_type", "balance.summary.1"),
        ("parameters[columns][]", "category"),
        ("parameters[columns][]", "net_amount"),
        ("parameters[interval_start]", "1680000000"),
        ("flag", "true"),
        ("items[0][a]", "1"),
    ]


class Category(OpenEnum):
    fee = "fee"


@attrs.frozen(kw_only=True)
class Parameters:
    columns: list[str] | None = None
    interval_start: UnixTime | None = None
    reporting_category: Category | None = None
    raw_payload: Mapping[str, Any] | None = attrs.field(
        default=None, repr=False, eq=False, metadata={"raw": True}
    )


@attrs.frozen(kw_only=True)
class CreateRun:
    report_type: str = attrs.field(metadata={"json": "reportType"})
    parameters: Parameters | None = None
    raw_payload: Mapping[str, Any] | None = attrs.field(
        default=None, repr=False, eq=False, metadata={"raw": True}
    )


BODY = CreateRun(
    report_type="balance.summary.1",
    parameters=Parameters(
        columns=["a", "b"],
        interval_start=UnixTime(datetime.fromtimestamp(1680000000, UTC)),
        reporting_category=Category.fee,
    ),
)


def test_attrs_body_form_encoded_with_wire_names(server: Any) -> None:
    op = Operation(operation_id="create", method="POST", path="/runs", body_encoding="form")
    ApiClient(provider="stripe", base_url=server.url).request(op, body=BODY)
    seen = server.seen[0]
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(seen.body.decode()) == [
        ("reportType", "balance.summary.1"),
        ("parameters[columns][]", "a"),
        ("parameters[columns][]", "b"),
        ("parameters[interval_start]", "1680000000"),
        ("parameters[reporting_category]", "fee"),
    ]


def test_attrs_body_json_encoded_without_none(server: Any) -> None:
    op = Operation(operation_id="create", method="POST", path="/runs", body_encoding="json")
    body = CreateRun(report_type="r")
    ApiClient(provider="stripe-v2", base_url=server.url).request(op, body=body)
    assert server.seen[0].headers["Content-Type"] == "application/json"
    assert json.loads(server.seen[0].body) == {"reportType": "r"}


def test_list_of_models_json_body(server: Any) -> None:
    op = Operation(operation_id="run", method="POST", path="/run", body_encoding="json")
    ApiClient(provider="zuora", base_url=server.url, error_reader=ZUORA_ERROR_READER).request(
        op, body=[Parameters(columns=["x"])], query={"viewType": "Summary"}
    )
    assert json.loads(server.seen[0].body) == [{"columns": ["x"]}]
    assert server.seen[0].path == "/run?viewType=Summary"


def test_named_servers_and_base_path_prefix(server: Any) -> None:
    client = ApiClient(
        provider="zuora",
        base_url="http://unused.invalid/x",
        servers={"files": server.url + "/api/rest/v1/"},
    )
    op = Operation(operation_id="f", method="GET", path="/reports/{id}", server="files")
    client.request(op, path={"id": "a b"}, headers={"entityId": "e1", "entityName": None})
    assert server.seen[0].path == "/api/rest/v1/reports/a%20b"
    assert server.seen[0].headers["entityId"] == "e1"
    assert "entityName" not in server.seen[0].headers
    with pytest.raises(ValueError, match="no server named 'nope'"):
        client.request(attrs.evolve(op, server="nope"), path={"id": "x"})


def test_a_body_for_an_operation_without_one_is_refused() -> None:
    client = ApiClient(provider="p", base_url="http://127.0.0.1:9")
    with pytest.raises(TypeError, match="takes no request body"):
        client.request(Operation(operation_id="g", method="GET", path="/"), body={"a": 1})


def test_deep_indexed_query_numbers_array_members() -> None:
    # Stripe's published v2 description: `include` is a deepObject, sent as include[0]=...
    assert encode_query({"include": ["result.file.schema", "a"], "x": None}, "deep-indexed") == (
        "include[0]=result.file.schema&include[1]=a"
    )
    # The bracketed form the v1 endpoints are sent stays as it was.
    assert encode_query({"include": ["result.file.schema"]}, "deep") == (
        "include[]=result.file.schema"
    )
