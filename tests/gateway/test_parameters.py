"""Parameter checks before a run exists: accepted forms, refusals that name what is allowed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from report_gateway import ParameterError, ParameterSpec, ReportTemplate
from report_gateway.provider import (
    format_rfc3339,
    format_unix,
    parse_timestamp,
    validate_parameters,
)

START = datetime(2020, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)


def _v1_like() -> ReportTemplate:
    def stamp(name: str, after: str | None = None) -> ParameterSpec:
        return ParameterSpec(
            name=name, type="timestamp", required=True, minimum=START, maximum=END, after=after
        )

    return ReportTemplate(
        provider="stripe",
        id="balance.summary.1",
        name="Balance summary",
        parameters={
            "interval_start": stamp("interval_start"),
            "interval_end": stamp("interval_end", after="interval_start"),
            "columns": ParameterSpec(name="columns", type="array", element_type="string"),
            "payout": ParameterSpec(name="payout"),
        },
    )


def _v2_like() -> ReportTemplate:
    # Bounds stored as Stripe's guide prints them: max before min.
    return ReportTemplate(
        provider="stripe-v2",
        id="report_test_123",
        name="example report",
        parameters={
            "interval_start": ParameterSpec(
                name="interval_start",
                type="timestamp",
                required=True,
                minimum=datetime(2025, 7, 5, tzinfo=UTC),
                maximum=datetime(2025, 1, 1, tzinfo=UTC),
            ),
            "columns": ParameterSpec(
                name="columns", type="array", allowed_values=("col_1", "col_2")
            ),
            "organization_report_granularity": ParameterSpec(
                name="organization_report_granularity",
                allowed_values=("concatenated_report", "aggregated_report"),
            ),
        },
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1680000000, datetime(2023, 3, 28, 10, 40, tzinfo=UTC)),
        ("1680000000", datetime(2023, 3, 28, 10, 40, tzinfo=UTC)),
        (1680000000.0, datetime(2023, 3, 28, 10, 40, tzinfo=UTC)),
        ("2025-01-01", datetime(2025, 1, 1, tzinfo=UTC)),
        (date(2025, 1, 1), datetime(2025, 1, 1, tzinfo=UTC)),
        ("2025-01-01T10:30:00", datetime(2025, 1, 1, 10, 30, tzinfo=UTC)),
        ("2025-01-01 10:30:00", datetime(2025, 1, 1, 10, 30, tzinfo=UTC)),
        ("2025-01-01T10:30:00Z", datetime(2025, 1, 1, 10, 30, tzinfo=UTC)),
        ("2025-01-01T12:30:00+02:00", datetime(2025, 1, 1, 10, 30, tzinfo=UTC)),
        (
            "2025-07-03T01:02:29.964240312Z",
            datetime(2025, 7, 3, 1, 2, 29, 964240, tzinfo=UTC),
        ),
        (datetime(2025, 1, 1, 10, 30), datetime(2025, 1, 1, 10, 30, tzinfo=UTC)),
        (
            datetime(2025, 1, 1, 12, 30, tzinfo=timezone(timedelta(hours=2))),
            datetime(2025, 1, 1, 10, 30, tzinfo=UTC),
        ),
        ({"timestamp_value": "2025-06-25T00:00:00.000Z"}, datetime(2025, 6, 25, tzinfo=UTC)),
    ],
)
def test_timestamp_forms(value: object, expected: datetime) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", [True, 1.5, "yesterday", "2025-13-01", None, [1], "", "1e9"])
def test_not_timestamps(value: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_timestamp(value)


def test_wire_forms() -> None:
    moment = datetime(2025, 6, 25, 0, 0, 0, 123456, tzinfo=UTC)
    assert format_rfc3339(moment) == "2025-06-25T00:00:00.123Z"
    assert format_unix(moment) == 1750809600


def test_v1_interval_normalized_to_unix_seconds() -> None:
    clean = validate_parameters(
        _v1_like(),
        {"interval_start": "2025-01-01", "interval_end": "2025-01-02T00:00:00", "columns": []},
        timestamp_format=format_unix,
    )
    assert clean == {"interval_start": 1735689600, "interval_end": 1735776000}


def test_interval_outside_availability_names_the_range_in_iso() -> None:
    with pytest.raises(ParameterError) as caught:
        validate_parameters(
            _v1_like(),
            {"interval_start": 1000000000, "interval_end": "2025-01-01"},
            timestamp_format=format_unix,
        )
    error = caught.value
    assert error.parameter == "interval_start"
    assert "2001-09-09T01:46:40Z" in str(error)
    assert "2020-01-01T00:00:00Z .. 2026-01-01T00:00:00Z" in str(error)
    assert "stripe balance.summary.1" in str(error)


def test_interval_end_after_availability() -> None:
    with pytest.raises(ParameterError, match="interval_end") as caught:
        validate_parameters(
            _v1_like(),
            {"interval_start": "2025-01-01", "interval_end": "2030-01-01"},
            timestamp_format=format_unix,
        )
    assert caught.value.parameter == "interval_end"


def test_start_must_precede_end() -> None:
    with pytest.raises(ParameterError, match="must be after interval_start") as caught:
        validate_parameters(
            _v1_like(),
            {"interval_start": "2025-01-02", "interval_end": "2025-01-01"},
            timestamp_format=format_unix,
        )
    assert caught.value.parameter == "interval_end"


def test_unknown_parameter_lists_the_known_ones() -> None:
    with pytest.raises(ParameterError) as caught:
        validate_parameters(
            _v1_like(),
            {"interval_start": "2025-01-01", "interval_end": "2025-01-02", "intervalEnd": 1},
            timestamp_format=format_unix,
        )
    assert caught.value.parameter == "intervalEnd"
    assert caught.value.allowed == ["columns", "interval_end", "interval_start", "payout"]


def test_missing_required_unless_the_run_is_for_one_payout() -> None:
    with pytest.raises(ParameterError, match="is required") as caught:
        validate_parameters(_v1_like(), {}, timestamp_format=format_unix)
    assert caught.value.parameter == "interval_start"
    clean = validate_parameters(
        _v1_like(),
        {"payout": "po_123"},
        timestamp_format=format_unix,
        optional_when={"interval_start": "payout", "interval_end": "payout"},
    )
    assert clean == {"payout": "po_123"}


@pytest.mark.parametrize(
    ("parameters", "name"),
    [
        ({"columns": b"net_amount"}, "columns"),
        ({"columns": ""}, "columns"),
        ({"columns": ["net_amount", 3]}, "columns"),
        ({"payout": 42}, "payout"),
        ({"interval_start": "soon"}, "interval_start"),
    ],
)
def test_wrong_types(parameters: dict[str, object], name: str) -> None:
    values = {"interval_start": "2025-01-01", "interval_end": "2025-01-02", **parameters}
    with pytest.raises(ParameterError) as caught:
        validate_parameters(_v1_like(), values, timestamp_format=format_unix)
    assert caught.value.parameter == name


def test_v2_swapped_bounds_tolerated_and_rfc3339_out() -> None:
    clean = validate_parameters(
        _v2_like(),
        {"interval_start": "2025-06-25", "columns": ["col_1", "col_2"]},
        timestamp_format=format_rfc3339,
    )
    assert clean == {"interval_start": "2025-06-25T00:00:00.000Z", "columns": ["col_1", "col_2"]}


def test_v2_timestamp_outside_bounds_names_them_in_order() -> None:
    with pytest.raises(ParameterError) as caught:
        validate_parameters(
            _v2_like(), {"interval_start": "2025-08-01"}, timestamp_format=format_rfc3339
        )
    assert "2025-01-01T00:00:00Z .. 2025-07-05T00:00:00Z" in str(caught.value)


def test_v2_enum_and_array_elements() -> None:
    base = {"interval_start": "2025-06-25"}
    with pytest.raises(ParameterError) as caught:
        validate_parameters(
            _v2_like(),
            {**base, "organization_report_granularity": "summed"},
            timestamp_format=format_rfc3339,
        )
    assert caught.value.allowed == ("concatenated_report", "aggregated_report")
    assert "concatenated_report, aggregated_report" in str(caught.value)
    with pytest.raises(ParameterError, match="col_3") as caught:
        validate_parameters(
            _v2_like(), {**base, "columns": ["col_1", "col_3"]}, timestamp_format=format_rfc3339
        )
    assert caught.value.allowed == ("col_1", "col_2")


def test_a_single_string_is_a_one_item_list() -> None:
    # What the command line's `-p columns=net` gives: one name, not a list of one.
    base = {"interval_start": "2025-01-01", "interval_end": "2025-01-02"}
    clean = validate_parameters(
        _v1_like(), {**base, "columns": "net"}, timestamp_format=format_unix
    )
    assert clean["columns"] == ["net"]
    clean = validate_parameters(
        _v2_like(),
        {"interval_start": "2025-06-25", "columns": "col_2"},
        timestamp_format=format_rfc3339,
    )
    assert clean["columns"] == ["col_2"]
    with pytest.raises(ParameterError, match="col_3") as caught:
        validate_parameters(
            _v2_like(),
            {"interval_start": "2025-06-25", "columns": "col_3"},
            timestamp_format=format_rfc3339,
        )
    assert caught.value.allowed == ("col_1", "col_2")


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))
def test_every_accepted_form_reads_back_the_same_moment(moment: datetime) -> None:
    aware = moment.replace(microsecond=0, tzinfo=UTC)
    seconds = format_unix(aware)
    for form in (seconds, str(seconds), aware.isoformat(), moment.replace(microsecond=0)):
        assert parse_timestamp(form) == aware
    assert parse_timestamp(format_rfc3339(aware)) == aware


@given(
    st.one_of(
        st.integers(),
        st.text(max_size=30),
        st.floats(allow_nan=True),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=3),
    )
)
def test_validation_either_accepts_or_names_the_parameter(value: object) -> None:
    values = {"interval_start": value, "interval_end": "2025-12-31"}
    refused: ParameterError | None = None
    clean: dict[str, object] = {}
    try:
        clean = validate_parameters(_v1_like(), values, timestamp_format=format_unix)
    except ParameterError as error:
        refused = error
    if refused is not None:
        assert refused.parameter in ("interval_start", "interval_end")
    else:
        start, end = clean["interval_start"], clean["interval_end"]
        assert isinstance(start, int)
        assert isinstance(end, int)
        assert START.timestamp() <= start < end


def test_order_is_checked_only_where_a_parameter_declares_it() -> None:
    """The neutral helper knows no provider: without ``after`` any order is the API's call."""
    template = ReportTemplate(
        provider="other",
        id="r",
        name="r",
        parameters={
            "interval_start": ParameterSpec(name="interval_start", type="timestamp"),
            "interval_end": ParameterSpec(name="interval_end", type="timestamp"),
        },
    )
    values = {"interval_start": "2025-01-02", "interval_end": "2025-01-01"}
    assert validate_parameters(template, values, timestamp_format=format_unix) == {
        "interval_start": 1735776000,
        "interval_end": 1735689600,
    }


def test_defaults_fill_missing_optional_parameters_when_asked() -> None:
    template = ReportTemplate(
        provider="other",
        id="r",
        name="r",
        parameters={
            "currency": ParameterSpec(
                name="currency", allowed_values=("usd", "eur"), default="usd"
            ),
            "note": ParameterSpec(name="note"),
        },
    )
    assert validate_parameters(template, {}, timestamp_format=format_unix) == {}
    filled = validate_parameters(template, {}, timestamp_format=format_unix, defaults=True)
    assert filled == {"currency": "usd"}
    given = {"currency": "eur"}
    assert (
        validate_parameters(template, given, timestamp_format=format_unix, defaults=True) == given
    )
