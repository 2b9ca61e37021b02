"""The Zuora Reporting API as the sandbox serves it: envelope, statuses, data, export."""

from __future__ import annotations

import json

from report_gateway_sandbox import ZUORA_ENTITIES, Sandbox

from .conftest import (
    CUSTOMER_REPORT,
    INVOICE_DETAIL,
    ZUORA,
    ZUORA_AUTH,
    Http,
    finished_zuora,
    run_zuora,
    wait_until,
)

EUROPE = next(eid for eid, name in ZUORA_ENTITIES.items() if name == "EuropeanBU")


def _error_message(body: dict[str, object]) -> str:
    """The message inside Zuora's JSON-in-a-string `response`."""
    assert body["success"] is False
    inner = json.loads(str(body["response"]))
    assert inner["errorCode"]
    return str(inner["message"])


def test_search_by_name_is_case_insensitive(client: Http) -> None:
    reply = client.get(f"{ZUORA}/reports/search?query=customer%20report", headers=ZUORA_AUTH)
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json;charset=UTF-8"
    body = reply.json()
    assert body["success"] is True
    (report,) = body["response"]["reports"]
    assert report["id"] == CUSTOMER_REPORT
    assert report["name"] == "Customer report"
    assert report["createdOn"].endswith("+0000")
    assert body["response"]["count"] == 1
    details = client.get(f"{ZUORA}/reports/search?query=DETAIL", headers=ZUORA_AUTH).json()
    assert {r["name"] for r in details["response"]["reports"]} == {
        "Invoice detail",
        "Payment detail",
    }
    missing = client.get(f"{ZUORA}/reports/search", headers=ZUORA_AUTH)
    assert missing.status == 400


def test_bad_credentials_are_login_failed(client: Http, sandbox: Sandbox) -> None:
    reply = client.get(
        f"{ZUORA}/reports/search?query=x",
        headers={"apiAccessKeyId": "someone", "apiSecretAccessKey": "wrong"},
    )
    assert reply.status == 401
    assert reply.json() == {"message": "Token could not be decrypted.", "errorCode": "loginFailed"}
    sandbox.configure(zuora_access_key_id="me@example.com", zuora_secret_access_key="s3cret")
    assert client.get(f"{ZUORA}/reports/search?query=x", headers=ZUORA_AUTH).status == 401
    ok = {"apiAccessKeyId": "me@example.com", "apiSecretAccessKey": "s3cret"}
    assert client.get(f"{ZUORA}/reports/search?query=x", headers=ok).status == 200


def test_statuses_progress_to_completed(client: Http, sandbox: Sandbox) -> None:
    sandbox.configure(run_seconds=1.0)
    run_id = run_zuora(client)
    seen: list[str] = []

    def completed() -> bool:
        body = client.get(f"{ZUORA}/reportruns/{run_id}", headers=ZUORA_AUTH).json()["response"]
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        return bool(body["status"] == "COMPLETED")

    wait_until(completed)
    assert seen[0] == "STARTED"
    assert seen[-1] == "COMPLETED"
    assert set(seen) <= {"STARTED", "QUERYDATA", "PROCESSINGDATA", "COMPLETED"}
    assert seen == sorted(seen, key=["STARTED", "QUERYDATA", "PROCESSINGDATA", "COMPLETED"].index)
    run = client.get(f"{ZUORA}/reportruns/{run_id}", headers=ZUORA_AUTH).json()["response"]
    assert run["reportType"] == "Detail"
    assert run["reportId"] == INVOICE_DETAIL
    assert run["startedOn"].endswith("+0000")
    assert "." in run["startedOn"]


def test_view_type_must_match(client: Http) -> None:
    wrong = client.post(
        f"{ZUORA}/reports/{CUSTOMER_REPORT}/reportrun?viewType=Detail", headers=ZUORA_AUTH
    )
    assert wrong.status == 400
    assert "Summary" in _error_message(wrong.json())
    absent = client.post(f"{ZUORA}/reports/{CUSTOMER_REPORT}/reportrun", headers=ZUORA_AUTH)
    assert absent.status == 400
    unknown = client.post(f"{ZUORA}/reports/nope/reportrun?viewType=Detail", headers=ZUORA_AUTH)
    assert unknown.status == 404


def test_filters_body_is_checked_and_changes_results(client: Http) -> None:
    base = run_zuora(client)
    filters = [
        {
            "logicalOperator": "AND",
            "filterClauses": [{"field": "Account.Currency", "value": "EUR", "operator": "EQ"}],
        }
    ]
    filtered = client.post(
        f"{ZUORA}/reports/{INVOICE_DETAIL}/reportrun?viewType=Detail",
        headers=ZUORA_AUTH,
        json_body=filters,
    ).json()["response"]["reportRunId"]
    bad = client.post(
        f"{ZUORA}/reports/{INVOICE_DETAIL}/reportrun?viewType=Detail",
        headers=ZUORA_AUTH,
        json_body={"not": "a list"},
    )
    assert bad.status == 400
    finished_zuora(client, base)
    finished_zuora(client, filtered)
    a = client.get(f"{ZUORA}/reportruns/export/{base}", headers=ZUORA_AUTH).body
    b = client.get(f"{ZUORA}/reportruns/export/{filtered}", headers=ZUORA_AUTH).body
    assert a != b


def test_export_is_utf16_tab_separated(client: Http) -> None:
    run_id = run_zuora(client)
    early = client.get(f"{ZUORA}/reportruns/export/{run_id}", headers=ZUORA_AUTH)
    assert early.status == 400
    assert early.json()["errorCode"] == "ZAN-USAGE-REST-ERROR"
    finished_zuora(client, run_id)
    reply = client.get(f"{ZUORA}/reportruns/export/{run_id}", headers=ZUORA_AUTH)
    assert reply.status == 200
    assert reply.header("Content-Type") == "text/csv;charset=utf-16"
    assert reply.body[:2] == b"\xff\xfe"
    text = reply.body.decode("utf-16")
    lines = text.splitlines()
    assert lines[0].split("\t")[0] == "Invoice: Invoice Number"
    assert len(lines) == 201
    assert all(len(line.split("\t")) == 6 for line in lines)


def test_report_data_pages(client: Http) -> None:
    run_id = run_zuora(client)
    finished_zuora(client, run_id)
    url = f"{ZUORA}/reportruns/reportdata/{run_id}"
    first = client.get(f"{url}?offset=1&pageSize=50", headers=ZUORA_AUTH).json()["response"]
    assert first["size"] == 50
    assert first["total"] == 201
    row = first["page"][0]
    assert set(row) == {
        "Invoice.InvoiceNumber",
        "Invoice.InvoiceDate",
        "Account.Name",
        "Account.Currency",
        "Invoice.Amount",
        "Invoice.Balance",
    }
    rows = []
    for offset in range(1, first["total"], 50):
        page = client.get(f"{url}?offset={offset}&pageSize=50", headers=ZUORA_AUTH).json()
        rows += page["response"]["page"]
    assert len(rows) == 200
    export = client.get(f"{ZUORA}/reportruns/export/{run_id}", headers=ZUORA_AUTH).body
    last_line = export.decode("utf-16").splitlines()[-1].split("\t")
    assert list(rows[-1].values()) == last_line
    assert client.get(f"{url}?offset=1", headers=ZUORA_AUTH).status == 400


def test_cancel_and_cancel_after_completion(client: Http, sandbox: Sandbox) -> None:
    sandbox.configure(run_seconds=30)
    run_id = run_zuora(client)
    reply = client.request("DELETE", f"{ZUORA}/reportruns/{run_id}", headers=ZUORA_AUTH)
    assert reply.json() == {"success": True, "response": "The report run has been canceled"}
    status = client.get(f"{ZUORA}/reportruns/{run_id}", headers=ZUORA_AUTH).json()
    assert status["response"]["status"] == "CANCELLED"
    sandbox.configure(run_seconds=0.1)
    done = run_zuora(client)
    finished_zuora(client, done)
    late = client.request("DELETE", f"{ZUORA}/reportruns/{done}", headers=ZUORA_AUTH)
    assert late.status == 200
    assert "cannot be canceled" in _error_message(late.json())


def test_latest_completed_run(client: Http) -> None:
    none_yet = client.get(f"{ZUORA}/reports/{INVOICE_DETAIL}/reportruns/latest", headers=ZUORA_AUTH)
    assert none_yet.status == 200
    assert "has not run this report" in _error_message(none_yet.json())
    run_id = run_zuora(client)
    finished_zuora(client, run_id)
    latest = client.get(
        f"{ZUORA}/reports/{INVOICE_DETAIL}/reportruns/latest", headers=ZUORA_AUTH
    ).json()["response"]
    assert latest["id"] == run_id
    assert latest["status"] == "COMPLETED"
    assert isinstance(latest["startedOn"], int)
    assert latest["startedOn"] > 1_600_000_000_000


def test_entities_scope_runs_and_results(client: Http) -> None:
    both = client.get(
        f"{ZUORA}/reports/search?query=x",
        headers={**ZUORA_AUTH, "entityId": EUROPE, "entityName": "EuropeanBU"},
    )
    assert both.status == 400
    assert "entityId" in _error_message(both.json())
    unknown = client.get(
        f"{ZUORA}/reports/search?query=x", headers={**ZUORA_AUTH, "entityName": "Atlantis"}
    )
    assert unknown.status == 400
    home = run_zuora(client)
    europe = run_zuora(client, entityName="EuropeanBU")
    assert client.get(f"{ZUORA}/reportruns/{europe}", headers=ZUORA_AUTH).status == 404
    finished_zuora(client, home)
    finished_zuora(client, europe, entityId=EUROPE)
    a = client.get(f"{ZUORA}/reportruns/export/{home}", headers=ZUORA_AUTH).body
    b = client.get(
        f"{ZUORA}/reportruns/export/{europe}", headers={**ZUORA_AUTH, "entityId": EUROPE}
    ).body
    assert a != b


def test_request_and_track_ids(client: Http) -> None:
    reply = client.get(
        f"{ZUORA}/reports/search?query=x", headers={**ZUORA_AUTH, "Zuora-Track-Id": "job-42"}
    )
    assert reply.header("Zuora-Track-Id") == "job-42"
    assert len(reply.header("Zuora-Request-Id") or "") == 36
    assert reply.header("Request-Id") is None
