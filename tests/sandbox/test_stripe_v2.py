"""Stripe Reports v2 as the sandbox serves it: schemas, runs, pre-signed URLs, limits."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from report_gateway_sandbox import Sandbox

from .conftest import V2_HEADERS, V2_INTERVAL, Http, create_v2, finished_v2, wait_until

RUNS = "/v2/reporting/report_runs"


def test_report_has_a_parameter_schema(client: Http) -> None:
    reply = client.get("/v2/reporting/reports/report_itemized_balance_change", headers=V2_HEADERS)
    assert reply.status == 200
    report = reply.json()
    assert report["object"] == "v2.reporting.report"
    params = report["parameters"]
    assert params["interval_start"]["type"] == "timestamp"
    assert params["interval_start"]["required"] is True
    details = params["interval_start"]["timestamp_details"]
    assert details["min"] < details["max"]
    assert params["columns"]["array_details"]["element_type"] == "enum"
    assert "gross" in params["columns"]["array_details"]["enum_details"]["allowed_values"]
    summary = client.get("/v2/reporting/reports/report_balance_summary", headers=V2_HEADERS).json()
    assert summary["parameters"]["organization_report_granularity"]["enum_details"] == {
        "allowed_values": ["concatenated_report", "aggregated_report"]
    }
    connected = client.get(
        "/v2/reporting/reports/report_connected_account_activity", headers=V2_HEADERS
    ).json()
    assert connected["parameters"]["connected_account"]["type"] == "string"
    missing = client.get("/v2/reporting/reports/report_nope", headers=V2_HEADERS)
    assert missing.status == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_stripe_version_and_key_are_required(client: Http) -> None:
    no_version = client.get(
        "/v2/reporting/reports/report_balance_summary",
        headers={"Authorization": V2_HEADERS["Authorization"]},
    )
    assert no_version.status == 400
    assert "Stripe-Version" in no_version.json()["error"]["message"]
    no_key = client.get(
        "/v2/reporting/reports/report_balance_summary",
        headers={"Stripe-Version": "2026-01-28.preview"},
    )
    assert no_key.status == 401


def test_run_goes_running_to_succeeded_and_downloads_without_a_key(client: Http) -> None:
    created = create_v2(client)
    assert created.status == 200
    run = created.json()
    assert run["id"].startswith("reprun_")
    assert run["status"] == "running"
    assert run["result"] is None
    assert run["status_details"] == {}
    assert run["result_options"] == {"compress_file": False}
    assert run["created"].endswith("Z")
    assert len(run["created"].split(".")[1]) == 10
    done = finished_v2(client, run["id"])
    assert done["status"] == "succeeded"
    file = done["result"]["file"]
    assert done["result"]["type"] == "file"
    assert file["content_type"] == "csv"
    assert isinstance(file["size"], str)
    assert "schema" not in file
    url = file["download_url"]["url"]
    assert url.startswith(f"{client.base_url}/_files/v2/")
    body = client.get(url)  # no Authorization header at all
    assert body.status == 200
    assert len(body.body) == int(file["size"])
    assert body.body.startswith(b"category,description,net_amount,currency\n")


def test_include_schema(client: Http) -> None:
    run = create_v2(client).json()
    finished_v2(client, run["id"])
    full = client.get(
        f"{RUNS}/{run['id']}?include[0]=result.file.schema", headers=V2_HEADERS
    ).json()
    schema = full["result"]["file"]["schema"]
    assert {"name": "net_amount", "type": "double"} in schema


def test_compressed_result_is_a_zip(client: Http) -> None:
    body = {
        "report": "report_itemized_balance_change",
        "report_parameters": {**V2_INTERVAL, "columns": ["balance_transaction_id", "net"]},
        "result_options": {"compress_file": True},
    }
    run = create_v2(client, body).json()
    done = finished_v2(client, run["id"])
    file = done["result"]["file"]
    assert file["content_type"] == "zip"
    reply = client.get(file["download_url"]["url"])
    assert reply.header("Content-Type") == "application/zip"
    assert len(reply.body) == int(file["size"])
    archive = zipfile.ZipFile(io.BytesIO(reply.body))
    assert archive.testzip() is None
    (name,) = archive.namelist()
    text = archive.read(name).decode()
    assert text.splitlines()[0] == "balance_transaction_id,net"
    assert len(text.splitlines()) == 201


def test_download_url_expires(client: Http, sandbox: Sandbox) -> None:
    sandbox.configure(url_ttl_seconds=60)
    run = create_v2(client).json()
    done = finished_v2(client, run["id"])
    url = done["result"]["file"]["download_url"]["url"]
    assert client.get(url).status == 200
    sandbox.advance_clock(61)
    expired = client.get(url)
    assert expired.status == 403
    assert b"Request has expired" in expired.body
    fresh = client.get(f"{RUNS}/{run['id']}", headers=V2_HEADERS).json()
    assert client.get(fresh["result"]["file"]["download_url"]["url"]).status == 200


def test_tampered_url_is_refused(client: Http) -> None:
    run = create_v2(client).json()
    url = finished_v2(client, run["id"])["result"]["file"]["download_url"]["url"]
    assert client.get(url.replace("expires=", "expires=9")).status == 403
    assert client.get(url.split("?")[0]).status == 403


def test_concurrency_limit_answers_429(client: Http, sandbox: Sandbox) -> None:
    sandbox.configure(v2_concurrency_limit=2, run_seconds=0.5)
    assert create_v2(client).status == 200
    assert create_v2(client).status == 200
    third = create_v2(client)
    assert third.status == 429
    error = third.json()["error"]
    assert error["code"] == "report_run_rate_limit_exceeded"
    assert error["type"] == "rate_limit"
    wait_until(lambda: create_v2(client).status == 200)


def _invalid(
    client: Http, params: dict[str, Any], report: str = "report_itemized_balance_change"
) -> str:
    reply = create_v2(client, {"report": report, "report_parameters": params})
    assert reply.status == 400, reply.body
    error = reply.json()["error"]
    assert error["code"] == "invalid_fields"
    message: str = error["message"]
    return message


def test_invalid_parameters(client: Http) -> None:
    assert "interval_end" in _invalid(client, {"interval_start": V2_INTERVAL["interval_start"]})
    assert "nope" in _invalid(client, {**V2_INTERVAL, "nope": "x"})
    assert "columns" in _invalid(client, {**V2_INTERVAL, "columns": ["bogus"]})
    assert "interval_start" in _invalid(client, {**V2_INTERVAL, "interval_start": "yesterday"})
    assert "interval_start" in _invalid(
        client, {**V2_INTERVAL, "interval_start": "2001-01-01T00:00:00Z"}
    )
    assert "organization_report_granularity" in _invalid(
        client, {**V2_INTERVAL, "organization_report_granularity": "both"}, "report_balance_summary"
    )
    unknown = create_v2(client, {"report": "report_nope", "report_parameters": {}})
    assert unknown.status == 400


def test_wrapped_values_are_accepted(client: Http) -> None:
    params = {k: {"timestamp_value": v} for k, v in V2_INTERVAL.items()}
    reply = create_v2(client, {"report": "report_balance_summary", "report_parameters": params})
    assert reply.status == 200
    assert reply.json()["report_parameters"] == V2_INTERVAL


def test_stripe_context_scopes_runs_and_results(client: Http) -> None:
    plain = create_v2(client).json()
    scoped = create_v2(client, **{"Stripe-Context": "acct_direct1"}).json()
    assert client.get(f"{RUNS}/{scoped['id']}", headers=V2_HEADERS).status == 404
    a = finished_v2(client, plain["id"])
    b = finished_v2(client, scoped["id"], {"Stripe-Context": "acct_direct1"})
    body_a = client.get(a["result"]["file"]["download_url"]["url"]).body
    body_b = client.get(b["result"]["file"]["download_url"]["url"]).body
    assert body_a != body_b


def test_idempotency(client: Http, sandbox: Sandbox) -> None:
    first = create_v2(client, **{"Idempotency-Key": "v2-key"})
    again = create_v2(client, **{"Idempotency-Key": "v2-key"})
    assert again.json()["id"] == first.json()["id"]
    other = create_v2(
        client,
        {
            "report": "report_balance_summary",
            "report_parameters": V2_INTERVAL,
            "result_options": {"compress_file": True},
        },
        **{"Idempotency-Key": "v2-key"},
    )
    assert other.status == 400
    assert sandbox.stats()["runs_created"]["stripe-v2"] == 1


def test_file_size_above_limit_fails_the_run(client: Http, sandbox: Sandbox) -> None:
    sandbox.configure(result_bytes=2_000, v2_max_file_bytes=1_000)
    done = finished_v2(client, create_v2(client).json()["id"])
    assert done["status"] == "failed"
    assert done["status_details"]["failed"]["error_code"] == "file_size_above_limit"
    assert done["result"] is None


@pytest.mark.parametrize(
    "version",
    ["2026-01-28", "latest", "2026-02-30.preview", "2026-01-28.tulip", "2099-01-01.preview"],
    ids=["no-release", "word", "bad-date", "unknown-release", "future"],
)
def test_unknown_or_malformed_stripe_version_is_refused(client: Http, version: str) -> None:
    reply = client.get(
        "/v2/reporting/reports/report_balance_summary",
        headers={**V2_HEADERS, "Stripe-Version": version},
    )
    assert reply.status == 400
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_stripe_version"
    assert version in error["message"]
    assert reply.header("Stripe-Version") != version
    known = client.get("/v2/reporting/reports/report_balance_summary", headers=V2_HEADERS)
    assert known.header("Stripe-Version") == V2_HEADERS["Stripe-Version"]


def test_unknown_query_parameters_are_refused(client: Http) -> None:
    run_id = create_v2(client).json()["id"]
    finished_v2(client, run_id)
    for path in (
        f"{RUNS}/{run_id}?expand[]=result",
        f"{RUNS}/{run_id}?includes=result.file.schema",
        "/v2/reporting/reports/report_balance_summary?include[0]=result.file.schema",
    ):
        reply = client.get(path, headers=V2_HEADERS)
        assert reply.status == 400, path
        error = reply.json()["error"]
        assert error["code"] == "parameter_unknown"
        assert "Received unknown parameter" in error["message"]
    posted = client.post(
        f"{RUNS}?dry_run=true",
        headers=V2_HEADERS,
        json_body={"report": "report_balance_summary", "report_parameters": V2_INTERVAL},
    )
    assert posted.status == 400
    assert posted.json()["error"]["code"] == "parameter_unknown"


@pytest.mark.parametrize(
    "query",
    ["include[0]=result.file.schema", "include[]=result.file.schema", "include=result.file.schema"],
    ids=["deep-object", "brackets", "plain"],
)
def test_include_is_read_in_each_form(client: Http, query: str) -> None:
    run_id = create_v2(client).json()["id"]
    finished_v2(client, run_id)
    plain = client.get(f"{RUNS}/{run_id}", headers=V2_HEADERS).json()
    assert "schema" not in plain["result"]["file"]
    reply = client.get(f"{RUNS}/{run_id}?{query}", headers=V2_HEADERS)
    assert reply.status == 200
    assert reply.json()["result"]["file"]["schema"][0]["name"] == "category"


def test_a_report_shaped_like_stripes_published_example(client: Http) -> None:
    """Stripe's Retrieve a Report example sends `"enum_details": false` and null details."""
    reply = client.get("/v2/reporting/reports/report_payouts_reconciliation", headers=V2_HEADERS)
    assert reply.status == 200
    params = reply.json()["parameters"]
    assert params["columns"]["enum_details"] is False
    assert params["columns"]["timestamp_details"] is None
    assert params["columns"]["array_details"]["enum_details"]["allowed_values"]
    assert params["interval_start"]["enum_details"] is None
    assert params["interval_start"]["array_details"] is None
    body = {
        "report": "report_payouts_reconciliation",
        "report_parameters": {**V2_INTERVAL, "columns": ["gross", "net"]},
    }
    run = create_v2(client, body)
    assert run.status == 200, run.body
    assert finished_v2(client, run.json()["id"])["status"] == "succeeded"
