"""Generated models and the runtime converter agree: wire names, quirk types, open enums, raw.

Payloads are the providers' documented shapes; each test structures one into the generated
model, checks the typed fields a user reads, and unstructures it back to the wire form.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reporting_runtime import converter
from reporting_runtime.types import UnixTime
from stripe_reporting_client.v1 import models as v1
from stripe_reporting_client.v2 import models as v2
from zuora_reporting_client import models as zuora

STRIPE_V1_RUN: dict[str, Any] = {
    "id": "frr_1MrQwrLkdIwHu7ixUov4x2b3",
    "object": "reporting.report_run",
    "created": 1680203749,
    "error": None,
    "livemode": False,
    "parameters": {"interval_end": 1680100000, "interval_start": 1680000000},
    "report_type": "balance.summary.1",
    "result": {
        "id": "file_1MrQx0",
        "object": "file",
        "created": 1680203760,
        "expires_at": 1711739760,
        "filename": "file_1MrQx0.csv",
        "purpose": "finance_report_run",
        "size": 1234,
        "title": None,
        "type": "csv",
        "url": "https://files.stripe.com/v1/files/file_1MrQx0/contents",
    },
    "status": "queued_for_later",  # a status Stripe might add: kept, not a crash
    "succeeded_at": None,
    "a_field_from_the_future": {"nested": True},
}


def test_stripe_v1_run_round_trips_with_unknown_status_kept() -> None:
    run = converter.structure(STRIPE_V1_RUN, v1.ReportRun)

    assert run.status.value == "queued_for_later"
    assert isinstance(run.status, v1.ReportRunStatus)
    assert not run.status.is_known
    assert v1.ReportRunStatus("succeeded") is v1.ReportRunStatus.SUCCEEDED
    assert run.created == datetime(2023, 3, 30, 19, 15, 49, tzinfo=UTC)
    assert run.parameters.interval_start == datetime.fromtimestamp(1680000000, UTC)
    assert run.result is not None
    assert run.result.size == 1234
    assert run.result.purpose is v1.FilePurpose.FINANCE_REPORT_RUN
    assert run.raw_payload == STRIPE_V1_RUN  # unknown fields live on in the raw payload
    assert "raw_payload" not in repr(run)

    wire = converter.unstructure(run)
    expected = {k: v for k, v in STRIPE_V1_RUN.items() if v is not None}
    del expected["a_field_from_the_future"]
    expected["result"] = {k: v for k, v in STRIPE_V1_RUN["result"].items() if v is not None}
    assert wire == expected


def test_stripe_v1_request_body_unstructures_to_wire_names() -> None:
    body = v1.CreateReportRunRequest(
        report_type="balance.summary.1",
        parameters=v1.CreateReportRunParameters(
            interval_start=UnixTime(datetime(2023, 3, 28, 10, 40, tzinfo=UTC)),
            columns=["category", "net"],
        ),
    )
    assert converter.unstructure(body) == {
        "report_type": "balance.summary.1",
        "parameters": {"interval_start": 1680000000, "columns": ["category", "net"]},
    }


def test_stripe_v2_run_reads_int64_string_and_nanosecond_timestamps() -> None:
    payload = {
        "id": "reprun_61SqZ",
        "object": "v2.reporting.report_run",
        "created": "2025-07-03T01:02:29.964240312Z",
        "livemode": False,
        "report": "report_61SqZ",
        "report_name": "Balance summary",
        "report_parameters": {"interval_start": "2025-06-01T00:00:00.000Z"},
        "status": "succeeded",
        "status_details": {},
        "result": {
            "type": "file",
            "file": {
                "content_type": "csv",
                "size": "209",
                "download_url": {
                    "url": "https://reports.stripe.example/presigned",
                    "expires_at": "2025-07-03T01:07:30.000Z",
                },
            },
        },
    }
    run = converter.structure(payload, v2.ReportRun)
    assert run.status is v2.ReportRunStatus.SUCCEEDED
    assert run.created == datetime(2025, 7, 3, 1, 2, 29, 964240, tzinfo=UTC)
    assert run.result is not None
    assert run.result.file is not None
    assert run.result.file.size == 209
    assert run.result.file.content_type is v2.ResultFileContentType.CSV

    wire = converter.unstructure(run)
    assert wire["result"]["file"]["size"] == "209"
    assert wire["created"] == "2025-07-03T01:02:29.964240Z"


def test_zuora_run_keeps_camel_case_on_the_wire_and_reads_both_time_forms() -> None:
    payload = {
        "success": True,
        "response": {
            "id": "402881ad6b8f5e84016b8f7e0a6b0002",
            "reportId": "402881ad6b8f5e84016b8f7d47860000",
            "reportType": "Detail",
            "status": "COMPLETED",
            "startedOn": 1453166692000,
            "updatedOn": "2018-04-13T02:11:38.464+0000",
            "reportDefinition": "{}",
        },
    }
    envelope = converter.structure(payload, zuora.ReportRunResponse)
    run = envelope.response
    assert run.status is zuora.ReportRunStatus.COMPLETED
    assert run.report_id == "402881ad6b8f5e84016b8f7d47860000"
    assert run.started_on == datetime(2016, 1, 19, 1, 24, 52, tzinfo=UTC)
    assert run.updated_on == datetime(2018, 4, 13, 2, 11, 38, 464000, tzinfo=UTC)

    wire = converter.unstructure(envelope)
    assert set(wire["response"]) == {
        "id",
        "reportId",
        "reportType",
        "status",
        "startedOn",
        "updatedOn",
        "reportDefinition",
    }


def test_zuora_unknown_status_is_kept() -> None:
    run = converter.structure({"id": "r1", "status": "QUEUED"}, zuora.ReportRun)
    assert run.status.value == "QUEUED"
    assert converter.unstructure(run)["status"] == "QUEUED"
