"""viewType and filters, checked before any run exists (no request is involved here)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from report_gateway import ParameterError
from report_gateway_zuora.parameters import (
    parameter_specs,
    report_view_type,
    validate_parameters,
)

REPORT = "ff8080816293d35b0162bcb3e7780a75"


def check(parameters: dict[str, Any], view_type: str | None = None) -> dict[str, Any]:
    return validate_parameters(REPORT, parameters, view_type=view_type)


@pytest.mark.parametrize("given_view", ["Summary", "summary", "SUMMARY", " Summary "])
def test_view_type_is_case_insensitive_and_normalized(given_view: str) -> None:
    assert check({"viewType": given_view}) == {"viewType": "Summary"}


@given(st.sampled_from(["Summary", "Detail"]), st.lists(st.booleans(), min_size=6, max_size=6))
def test_any_casing_of_a_view_type_normalizes(view: str, upper: list[bool]) -> None:
    cased = "".join(c.upper() if u else c.lower() for c, u in zip(view, upper, strict=False))
    assert check({"viewType": cased + view[len(cased) :]})["viewType"] == view


def test_view_type_is_required_and_names_the_allowed_values() -> None:
    with pytest.raises(ParameterError) as caught:
        check({})
    assert caught.value.parameter == "viewType"
    assert "Summary, Detail" in str(caught.value)


def test_view_type_not_a_view() -> None:
    with pytest.raises(ParameterError, match=r"'Tabular'.*allowed: Summary, Detail"):
        check({"viewType": "Tabular"})
    with pytest.raises(ParameterError, match="must be a string"):
        check({"viewType": 1})


def test_view_type_must_match_a_known_report_type() -> None:
    assert check({"viewType": "detail"}, "Detail") == {"viewType": "Detail"}
    with pytest.raises(ParameterError) as caught:
        check({"viewType": "Summary"}, "Detail")
    assert caught.value.allowed == ("Detail",)
    assert "Detail report" in str(caught.value)


def test_unknown_parameters_are_rejected() -> None:
    with pytest.raises(ParameterError) as caught:
        check({"viewType": "Summary", "interval_start": 1})
    assert caught.value.parameter == "interval_start"
    assert "viewType, filters" in str(caught.value)


def test_filter_shorthand_is_normalized_to_zuoras_objects() -> None:
    filters = [
        {
            "logicalOperator": "AND",
            "filterClauses": [
                {"field": "Account.Currency", "value": "USD", "operator": "="},
                {"field": "Account.Balance", "value": 100, "operator": ">"},
            ],
        },
        {"filterClauses": [{"field": "Account.Status", "value": "", "operator": "is null"}]},
    ]
    assert check({"viewType": "Detail", "filters": filters})["filters"] == [
        {
            "logicalOperator": {"value": "AND", "label": "OPERATOR_AND", "name": "and"},
            "filterClauses": [
                {
                    "field": {"id": "Account.Currency", "name": "Currency"},
                    "value": "USD",
                    "operator": {"name": "=", "value": "="},
                },
                {
                    "field": {"id": "Account.Balance", "name": "Balance"},
                    "value": "100",
                    "operator": {"name": ">", "value": ">"},
                },
            ],
        },
        {
            "filterClauses": [
                {
                    "field": {"id": "Account.Status", "name": "Status"},
                    "value": "",
                    "operator": {"name": "is null", "value": "is null"},
                }
            ]
        },
    ]


def test_ui_phrase_shorthand_becomes_the_documented_name_and_symbol() -> None:
    """docs.zuora.com prints {"name": "is greater than", "value": ">"}: the phrase alone is
    a shorthand for that pair (the sandbox, like Zuora, takes the symbol as the value)."""
    clauses = [
        {"field": "Product.EffectiveStartDate", "value": "2018-03-31", "operator": op}
        for op in ("is greater than", "Is Less Than Or Equal To", "contains")
    ]
    checked = check({"viewType": "Detail", "filters": [{"filterClauses": clauses}]})
    assert [c["operator"] for c in checked["filters"][0]["filterClauses"]] == [
        {"name": "is greater than", "value": ">"},
        {"name": "Is Less Than Or Equal To", "value": "<="},
        {"name": "contains", "value": "contains"},
    ]


def test_developer_zuora_sample_keeps_its_field_and_gets_the_operator_object() -> None:
    """developer.zuora.com's sample: a field with only id and type passes as given; its
    bare "=" is the shorthand, sent as Zuora's operator object."""
    sample = [
        {
            "logicalOperator": {"value": "AND"},
            "filterClauses": [
                {
                    "field": {"id": "Account.Status", "type": "Text"},
                    "operator": "=",
                    "value": "Active",
                }
            ],
        }
    ]
    assert check({"viewType": "Detail", "filters": sample})["filters"] == [
        {
            "logicalOperator": {"value": "AND"},
            "filterClauses": [
                {
                    "field": {"id": "Account.Status", "type": "Text"},
                    "value": "Active",
                    "operator": {"name": "=", "value": "="},
                }
            ],
        }
    ]


#: Zuora's Run a report page (docs.zuora.com), as printed.
DOCUMENTED_FILTERS = [
    {
        "logicalOperator": {"value": "OR", "label": "OPERATOR_OR", "name": "or"},
        "filterClauses": [
            {
                "field": {
                    "name": "Name",
                    "id": "Product.Name",
                    "label": "Name",
                    "type": "text",
                    "dataSourceName": "Product",
                },
                "value": "Hockey",
                "operator": {"name": "contains", "value": "contains"},
            }
        ],
    }
]


def test_documented_filter_objects_pass_unchanged() -> None:
    assert check({"viewType": "Detail", "filters": DOCUMENTED_FILTERS})["filters"] == (
        DOCUMENTED_FILTERS
    )


@pytest.mark.parametrize(
    ("group", "where"),
    [
        ({"logicalOperator": "XOR"}, "filters[0].logicalOperator"),
        ({"logicalOperator": {"label": "OPERATOR_OR"}}, "filters[0].logicalOperator.value"),
        ({"field": {"name": "Name"}}, "filters[0].filterClauses[0].field.id"),
        ({"operator": {"name": "contains"}}, "filters[0].filterClauses[0].operator.value"),
        ({"field": {"id": "A.B", "type": 1}}, "filters[0].filterClauses[0].field.type"),
    ],
)
def test_bad_filter_objects_name_the_member(group: dict[str, Any], where: str) -> None:
    clause: dict[str, Any] = {"field": "A.B", "value": "1", "operator": "="}
    clause.update({k: v for k, v in group.items() if k != "logicalOperator"})
    filters = [{"filterClauses": [clause]}]
    if "logicalOperator" in group:
        filters[0]["logicalOperator"] = group["logicalOperator"]
    with pytest.raises(ParameterError) as caught:
        check({"viewType": "Summary", "filters": filters})
    assert caught.value.parameter == where


@pytest.mark.parametrize(
    ("filters", "where"),
    [
        ("Account.Currency = USD", "filters"),
        ({"filterClauses": []}, "filters"),
        ([["x"]], "filters[0]"),
        ([{"filterClauses": [], "logicalOperator": "AND"}], "filters[0].filterClauses"),
        ([{"clauses": []}], "filters[0].clauses"),
        ([{"logicalOperator": 1, "filterClauses": [{}]}], "filters[0].logicalOperator"),
        ([{"filterClauses": ["x"]}], "filters[0].filterClauses[0]"),
        (
            [{"filterClauses": [{"field": "A.B", "value": "1"}]}],
            "filters[0].filterClauses[0].operator",
        ),
        (
            [{"filterClauses": [{"field": "A.B", "value": None, "operator": "="}]}],
            "filters[0].filterClauses[0].value",
        ),
        (
            [{"filterClauses": [{"field": "", "value": "1", "operator": "="}]}],
            "filters[0].filterClauses[0].field",
        ),
        (
            [{"filterClauses": [{"field": "A", "value": "1", "operator": "=", "op": "x"}]}],
            "filters[0].filterClauses[0].op",
        ),
    ],
)
def test_bad_filters_name_the_exact_place(filters: Any, where: str) -> None:
    with pytest.raises(ParameterError) as caught:
        check({"viewType": "Summary", "filters": filters})
    assert caught.value.parameter == where


def test_template_schema_narrows_to_the_known_view_type() -> None:
    assert parameter_specs(None)["viewType"].allowed_values == ("Summary", "Detail")
    assert parameter_specs(None)["viewType"].default is None
    specs = parameter_specs("Detail")
    assert specs["viewType"].allowed_values == ("Detail",)
    assert specs["viewType"].default == "Detail"
    assert specs["viewType"].required
    assert not specs["filters"].required
    assert specs["filters"].type == "array"


@pytest.mark.parametrize(
    ("definition", "view"),
    [
        ('{"reportType":"Summary","dataSource":"Account"}', "Summary"),
        ('{"reportType":"detail"}', "Detail"),
        ("...", None),
        ("[1, 2]", None),
        ('{"reportType": "Pivot"}', None),
        (None, None),
    ],
)
def test_view_type_read_from_a_definition_when_it_says_so(
    definition: str | None, view: str | None
) -> None:
    assert report_view_type(definition) == view
