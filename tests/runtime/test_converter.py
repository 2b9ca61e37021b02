"""The converter's quirks, on models shaped like codegen's output."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reporting_runtime import ResponseFormatError
from reporting_runtime.converter import structure, unstructure
from reporting_runtime.types import (
    FlexibleTime,
    Int64String,
    OpenEnum,
    UnixTime,
    format_rfc3339,
    parse_flexible_time,
    parse_rfc3339,
)


def raw_field() -> Any:
    return attrs.field(default=None, repr=False, eq=False, metadata={"raw": True})


class RunStatus(OpenEnum):
    running = "running"
    succeeded = "succeeded"


@attrs.frozen(kw_only=True)
class DownloadUrl:
    url: str
    expires_at: datetime
    raw_payload: Mapping[str, Any] | None = raw_field()


@attrs.frozen(kw_only=True)
class ResultFile:
    content_type: str
    size: Int64String
    download_url: DownloadUrl
    raw_payload: Mapping[str, Any] | None = raw_field()


@attrs.frozen(kw_only=True)
class StatusDetail:
    error_code: str | None = None
    error_message: str | None = None
    raw_payload: Mapping[str, Any] | None = raw_field()


@attrs.frozen(kw_only=True)
class ReportRun:
    id: str
    created: datetime
    status: RunStatus
    status_details: dict[str, StatusDetail] | None = None
    file: ResultFile | None = None
    report_parameters: dict[str, Any] | None = None
    livemode: bool = False
    raw_payload: Mapping[str, Any] | None = raw_field()


@attrs.frozen(kw_only=True)
class ZuoraRun:
    id: str
    report_id: str = attrs.field(metadata={"json": "reportId"})
    started_on: FlexibleTime = attrs.field(metadata={"json": "startedOn"})
    updated_on: FlexibleTime | None = attrs.field(default=None, metadata={"json": "updatedOn"})
    raw_payload: Mapping[str, Any] | None = raw_field()


@attrs.frozen(kw_only=True)
class StripeRun:
    id: str
    created: UnixTime
    interval_start: UnixTime | None = None
    amount: int | str | None = None
    anything: Any = None
    tags: list[str] = attrs.field(factory=list)
    raw_payload: Mapping[str, Any] | None = raw_field()


V2_RUN = {
    "id": "reprun_123",
    "object": "v2.reporting.report_run",
    "created": "2025-07-03T01:02:29.964240312Z",
    "status": "succeeded",
    "status_details": {"failed": {"error_code": "internal_error", "error_message": "x"}},
    "file": {
        "content_type": "csv",
        "size": "209",
        "download_url": {"url": "https://files.example/f", "expires_at": "2025-07-03T01:07:29Z"},
    },
    "report_parameters": {"interval_start": "2025-01-01T00:00:00Z", "columns": ["a"]},
    "brand_new_field": {"nested": True},
}


def test_report_run_structures_with_every_quirk() -> None:
    run = structure(V2_RUN, ReportRun)
    assert run.created == datetime(2025, 7, 3, 1, 2, 29, 964240, tzinfo=UTC)
    assert run.status is RunStatus.succeeded
    assert run.status_details == {
        "failed": StatusDetail(error_code="internal_error", error_message="x")
    }
    assert run.file is not None
    assert run.file.size == 209
    assert run.file.download_url.expires_at == datetime(2025, 7, 3, 1, 7, 29, tzinfo=UTC)
    assert run.report_parameters == V2_RUN["report_parameters"]
    assert run.livemode is False  # missing optional field -> default


def test_unknown_fields_are_ignored_but_kept_in_raw_payload() -> None:
    run = structure(V2_RUN, ReportRun)
    assert run.raw_payload is V2_RUN
    assert run.raw_payload["brand_new_field"] == {"nested": True}
    assert run.file is not None
    assert run.file.raw_payload == V2_RUN["file"]
    assert "raw_payload" not in repr(run)


def test_open_enum_keeps_an_unknown_value_as_a_cached_member() -> None:
    run = structure({**V2_RUN, "status": "paused_for_review"}, ReportRun)
    assert run.status.value == "paused_for_review"
    assert run.status is RunStatus("paused_for_review")
    assert isinstance(run.status, RunStatus)
    assert not run.status.is_known
    assert RunStatus.running.is_known
    assert list(RunStatus) == [RunStatus.running, RunStatus.succeeded]
    assert run.status == "paused_for_review"


def test_open_enum_still_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="not a valid RunStatus"):
        RunStatus(3)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (1453166692000, datetime(2016, 1, 19, 1, 24, 52, tzinfo=UTC)),
        ("1453166692123", datetime(2016, 1, 19, 1, 24, 52, 123000, tzinfo=UTC)),
        ("2018-04-13T02:11:38.464+0000", datetime(2018, 4, 13, 2, 11, 38, 464000, tzinfo=UTC)),
        ("2018-04-13T01:52:10+0000", datetime(2018, 4, 13, 1, 52, 10, tzinfo=UTC)),
        ("2018-04-13T02:11:38Z", datetime(2018, 4, 13, 2, 11, 38, tzinfo=UTC)),
        (
            "2018-04-13T04:11:38.5+02:00",
            datetime(2018, 4, 13, 2, 11, 38, 500000, tzinfo=UTC),
        ),
    ],
)
def test_flexible_time_reads_every_zuora_spelling(wire: Any, expected: datetime) -> None:
    run = structure({"id": "r", "reportId": "x", "startedOn": wire}, ZuoraRun)
    assert run.started_on == expected
    assert run.report_id == "x"
    assert run.updated_on is None


def test_unix_time_and_unions_and_any() -> None:
    run = structure(
        {"id": "frr", "created": 1680000000, "amount": "12", "anything": [1, {"a": 2}]},
        StripeRun,
    )
    assert run.created == datetime.fromtimestamp(1680000000, UTC)
    assert run.created.tzinfo is not None
    assert run.amount == "12"
    assert structure({"id": "f", "created": 1, "amount": 12}, StripeRun).amount == 12
    assert run.anything == [1, {"a": 2}]
    assert run.interval_start is None


@pytest.mark.parametrize("wire", ["209", 209])
def test_int64_string_accepts_both_readings(wire: Any) -> None:
    data = {
        "content_type": "csv",
        "size": wire,
        "download_url": {"url": "u", "expires_at": "2025-01-01T00:00:00Z"},
    }
    assert structure(data, ResultFile).size == 209


def test_int64_rejects_garbage() -> None:
    data = {
        "content_type": "csv",
        "size": "2x9",
        "download_url": {"url": "u", "expires_at": "2025-01-01T00:00:00Z"},
    }
    with pytest.raises(ResponseFormatError, match="size"):
        structure(data, ResultFile)


def test_unstructure_uses_wire_names_and_formats_and_drops_none() -> None:
    run = ZuoraRun(
        id="r",
        report_id="rep",
        started_on=FlexibleTime(datetime(2018, 4, 13, 2, 11, 38, 464000, tzinfo=UTC)),
    )
    assert unstructure(run) == {
        "id": "r",
        "reportId": "rep",
        "startedOn": "2018-04-13T02:11:38.464000Z",
    }
    stripe = StripeRun(id="f", created=UnixTime(datetime.fromtimestamp(1680000000, UTC)))
    assert unstructure(stripe) == {"id": "f", "created": 1680000000, "tags": []}
    file = structure(
        {
            "content_type": "csv",
            "size": 5,
            "download_url": {"url": "u", "expires_at": "2025-01-01T00:00:00Z"},
        },
        ResultFile,
    )
    assert unstructure(file)["size"] == "5"
    assert unstructure(RunStatus("new_one")) == "new_one"


def test_lists_and_dicts_of_models() -> None:
    detail = {"error_code": "c"}
    assert structure([detail, {}], list[StatusDetail]) == [
        StatusDetail(error_code="c"),
        StatusDetail(),
    ]
    assert structure({"k": detail}, dict[str, StatusDetail])["k"].error_code == "c"
    assert structure(None, StatusDetail | None) is None


def test_a_missing_required_field_is_a_format_error_naming_it() -> None:
    with pytest.raises(ResponseFormatError, match="status") as info:
        structure({"id": "x", "created": "2025-01-01T00:00:00Z"}, ReportRun)
    assert info.value.__cause__ is None


def test_a_non_object_is_a_format_error() -> None:
    with pytest.raises(ResponseFormatError):
        structure("<html>", ReportRun)


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
        ),
    )
)
def test_rfc3339_round_trips(value: datetime) -> None:
    assert parse_rfc3339(format_rfc3339(value)) == value


@given(st.integers(min_value=0, max_value=10**13))
def test_epoch_millis_round_trip(millis: int) -> None:
    parsed = parse_flexible_time(millis)
    assert round(parsed.timestamp() * 1000) == millis
    assert parse_flexible_time(str(millis)) == parsed


@given(
    st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=0, max_value=999),
)
def test_nine_fractional_digits_truncate_to_microseconds(value: datetime, extra: int) -> None:
    text = value.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{extra:03d}Z"
    assert parse_rfc3339(text) == value
    zuora = value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    assert parse_rfc3339(zuora) == value.replace(microsecond=value.microsecond // 1000 * 1000)
