"""``-p NAME=VALUE``: strings as written, ISO dates untouched, lists by comma or repetition."""

from __future__ import annotations

import pytest
from report_gateway.cli.exits import UsageError
from report_gateway.cli.params import parse_parameters, parse_settings


def test_values_stay_strings_and_iso_dates_pass_as_written() -> None:
    assert parse_parameters(
        [
            "interval_start=2025-01-01",
            "interval_end=2025-02-01T12:30:00+01:00",
            "payout=po_123",
            "limit=10",
        ]
    ) == {
        "interval_start": "2025-01-01",
        "interval_end": "2025-02-01T12:30:00+01:00",
        "payout": "po_123",
        "limit": "10",
    }


def test_comma_and_repetition_make_lists() -> None:
    assert parse_parameters(["columns=a,b"]) == {"columns": ["a", "b"]}
    assert parse_parameters(["columns=a", "columns=b"]) == {"columns": ["a", "b"]}
    assert parse_parameters(["columns=a,b", "columns=c"]) == {"columns": ["a", "b", "c"]}
    assert parse_parameters(["columns= a , b ,"]) == {"columns": ["a", "b"]}


def test_json_values_for_one_item_lists_commas_and_structures() -> None:
    assert parse_parameters(['columns:=["net"]']) == {"columns": ["net"]}
    assert parse_parameters(['note:="a, b"']) == {"note": "a, b"}
    filters = '[{"logicalOperator": "AND", "filterClauses": []}]'
    assert parse_parameters([f"filters:={filters}"]) == {
        "filters": [{"logicalOperator": "AND", "filterClauses": []}]
    }


def test_equals_sign_inside_a_value_is_kept() -> None:
    assert parse_parameters(["expr=a=b"]) == {"expr": "a=b"}
    assert parse_parameters(["empty="]) == {"empty": ""}


@pytest.mark.parametrize("item", ["novalue", "=x", "bad:={not json"])
def test_malformed_items_are_usage_errors(item: str) -> None:
    with pytest.raises(UsageError, match="-p"):
        parse_parameters([item])


def test_settings_keep_values_and_reject_malformed() -> None:
    assert parse_settings(["base_url=http://127.0.0.1:1/x?a=b", "polls=3"]) == {
        "base_url": "http://127.0.0.1:1/x?a=b",
        "polls": "3",
    }
    with pytest.raises(UsageError, match="--set"):
        parse_settings(["oops"])
