"""Stripe Reporting v1 as the sandbox serves it: report types, runs, lists, files, errors."""

from __future__ import annotations

import csv
import io
import socket

from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox

from .conftest import (
    JAN_2025,
    STRIPE_AUTH,
    Http,
    basic,
    create_v1,
    finished_v1,
)

TYPES = "/v1/reporting/report_types"
RUNS = "/v1/reporting/report_runs"


def test_report_types_list_and_retrieve(client: Http) -> None:
    listed = client.get(TYPES, headers=STRIPE_AUTH)
    assert listed.status == 200
    body = listed.json()
    assert body["object"] == "list"
    assert body["url"] == TYPES
    assert body["has_more"] is False
    ids = {t["id"] for t in body["data"]}
    assert {
        "balance.summary.1",
        "balance_change_from_activity.itemized.3",
        "payouts.itemized.3",
    } <= ids
    one = client.get(f"{TYPES}/payouts.itemized.3", headers=STRIPE_AUTH).json()
    assert one["object"] == "reporting.report_type"
    assert one["data_available_start"] < one["data_available_end"] == 1_767_225_600
    assert "payout_id" in one["default_columns"]
    assert one["version"] == 3


def test_unknown_report_type_is_a_stripe_404(client: Http) -> None:
    reply = client.get(f"{TYPES}/nope.1", headers=STRIPE_AUTH)
    assert reply.status == 404
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "resource_missing"
    assert "nope.1" in error["message"]
    assert (reply.header("Request-Id") or "").startswith("req_")


def test_auth_missing_wrong_and_basic(client: Http) -> None:
    missing = client.get(TYPES)
    assert missing.status == 401
    assert "did not provide an API key" in missing.json()["error"]["message"]
    wrong = client.get(TYPES, headers={"Authorization": "Bearer sk_live_realkey123456"})
    assert wrong.status == 401
    assert wrong.json()["error"]["code"] == "api_key_invalid"
    assert "realkey123456" not in wrong.body.decode()
    assert client.get(TYPES, headers=basic(STRIPE_TEST_KEY)).status == 200
    assert client.get(TYPES, headers={"Authorization": "Bearer sk_test_anything"}).status == 200


def test_run_goes_pending_to_succeeded_with_a_file(client: Http) -> None:
    created = create_v1(client, "balance_change_from_activity.itemized.3")
    assert created.status == 200
    run = created.json()
    assert run["id"].startswith("frr_")
    assert run["object"] == "reporting.report_run"
    assert run["status"] == "pending"
    assert run["result"] is None
    assert run["succeeded_at"] is None
    assert run["parameters"] == {"interval_end": 1738368000, "interval_start": 1735689600}
    done = finished_v1(client, run["id"])
    assert done["status"] == "succeeded"
    result = done["result"]
    assert result["object"] == "file"
    assert result["purpose"] == "finance_report_run"
    assert result["type"] == "csv"
    assert result["url"] == f"{client.base_url}/v1/files/{result['id']}/contents"
    contents = client.get(result["url"], headers=STRIPE_AUTH)
    assert contents.status == 200
    assert contents.header("Content-Type") == "text/csv"
    assert len(contents.body) == result["size"]
    rows = list(csv.DictReader(io.StringIO(contents.body.decode())))
    assert len(rows) == 200
    assert rows[0]["balance_transaction_id"].startswith("txn_")


def test_columns_are_honoured_and_checked(client: Http) -> None:
    form = [
        ("report_type", "payouts.itemized.3"),
        *JAN_2025.items(),
        ("parameters[columns][0]", "payout_id"),
        ("parameters[columns][1]", "net"),
    ]
    run = client.post(RUNS, headers=STRIPE_AUTH, form=form).json()
    assert run["parameters"]["columns"] == ["payout_id", "net"]
    done = finished_v1(client, run["id"])
    body = client.get(done["result"]["url"], headers=STRIPE_AUTH).body.decode()
    assert body.splitlines()[0] == "payout_id,net"
    bad = client.post(
        RUNS,
        headers=STRIPE_AUTH,
        form=[
            ("report_type", "payouts.itemized.3"),
            *JAN_2025.items(),
            ("parameters[columns][]", "x"),
        ],
    )
    assert bad.status == 400
    assert bad.json()["error"]["param"] == "parameters[columns]"


def test_validation_errors(client: Http) -> None:
    missing = client.post(RUNS, headers=STRIPE_AUTH, form={})
    assert missing.status == 400
    assert missing.json()["error"]["code"] == "parameter_missing"
    assert missing.json()["error"]["param"] == "report_type"
    no_interval = client.post(RUNS, headers=STRIPE_AUTH, form={"report_type": "balance.summary.1"})
    assert no_interval.status == 400
    unknown = client.post(
        RUNS,
        headers=STRIPE_AUTH,
        form={"report_type": "balance.summary.1", "parameters[x]": "1", **JAN_2025},
    )
    assert unknown.json()["error"]["code"] == "parameter_unknown"
    backwards = client.post(
        RUNS,
        headers=STRIPE_AUTH,
        form={
            "report_type": "balance.summary.1",
            "parameters[interval_start]": "1738368000",
            "parameters[interval_end]": "1735689600",
        },
    )
    assert backwards.status == 400


def test_interval_outside_data_availability(client: Http) -> None:
    late = client.post(
        RUNS,
        headers=STRIPE_AUTH,
        form={
            "report_type": "balance.summary.1",
            "parameters[interval_start]": "1735689600",
            "parameters[interval_end]": "1800000000",
        },
    )
    assert late.status == 400
    error = late.json()["error"]
    assert error["message"].startswith(
        "Data for the report type balance.summary.1 is only available"
    )
    assert error["param"] == "parameters[interval_end]"
    early = client.post(
        RUNS,
        headers=STRIPE_AUTH,
        form={
            "report_type": "balance.summary.1",
            "parameters[interval_start]": "1000000000",
            "parameters[interval_end]": "1735689600",
        },
    )
    assert early.status == 400
    assert "only available starting at" in early.json()["error"]["message"]


def test_idempotency_key_returns_the_same_run(client: Http, sandbox: Sandbox) -> None:
    first = create_v1(client, **{"Idempotency-Key": "key-1"})
    again = create_v1(client, **{"Idempotency-Key": "key-1"})
    assert again.status == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.header("Idempotent-Replayed") == "true"
    assert sandbox.stats()["runs_created"]["stripe"] == 1
    other = create_v1(client, "payouts.summary.1", **{"Idempotency-Key": "key-1"})
    assert other.status == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    assert create_v1(client, **{"Idempotency-Key": "key-2"}).json()["id"] != first.json()["id"]
    assert sandbox.stats()["runs_created"]["stripe"] == 2


def test_a_create_whose_client_died_before_its_body_is_never_acted_on(
    client: Http, sandbox: Sandbox
) -> None:
    """A client killed between its headers and its body (a crash test's SIGKILL) must not
    leave a run, nor an answer stored under its idempotency key: the retry of the whole
    request with that key would be refused as "other parameters" (a crash-test flake)."""
    head = (
        "POST /v1/reporting/report_runs HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{sandbox.port}\r\n"
        f"Authorization: Bearer {STRIPE_TEST_KEY}\r\n"
        "Idempotency-Key: key-cut\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 120\r\n\r\n"
        "report_type=balance"
    )
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as sock:
        sock.sendall(head.encode())
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):  # until the sandbox closes it
            pass
    assert sandbox.stats()["runs_created"]["stripe"] == 0
    whole = create_v1(client, **{"Idempotency-Key": "key-cut"})
    assert whole.status == 200
    assert sandbox.stats()["runs_created"]["stripe"] == 1


def test_list_pagination_and_created_filter(client: Http) -> None:
    ids = [create_v1(client).json()["id"] for _ in range(5)]
    newest_first = list(reversed(ids))
    page = client.get(f"{RUNS}?limit=2", headers=STRIPE_AUTH).json()
    assert [r["id"] for r in page["data"]] == newest_first[:2]
    assert page["has_more"] is True
    nxt = client.get(f"{RUNS}?limit=2&starting_after={newest_first[1]}", headers=STRIPE_AUTH).json()
    assert [r["id"] for r in nxt["data"]] == newest_first[2:4]
    last = client.get(
        f"{RUNS}?limit=2&starting_after={newest_first[3]}", headers=STRIPE_AUTH
    ).json()
    assert [r["id"] for r in last["data"]] == newest_first[4:]
    assert last["has_more"] is False
    back = client.get(f"{RUNS}?limit=2&ending_before={newest_first[4]}", headers=STRIPE_AUTH).json()
    assert [r["id"] for r in back["data"]] == newest_first[2:4]
    created = page["data"][0]["created"]
    future = client.get(f"{RUNS}?created[gte]={created + 10}", headers=STRIPE_AUTH).json()
    assert future["data"] == []
    past = client.get(f"{RUNS}?created[lte]={created}&limit=100", headers=STRIPE_AUTH).json()
    assert len(past["data"]) == 5
    assert client.get(f"{RUNS}?limit=0", headers=STRIPE_AUTH).status == 400
    assert client.get(f"{RUNS}?starting_after=frr_nope", headers=STRIPE_AUTH).status == 404


def test_stripe_account_scopes_runs_and_changes_results(client: Http) -> None:
    mine = create_v1(client).json()
    theirs = create_v1(client, **{"Stripe-Account": "acct_connected1"}).json()
    hidden = client.get(f"{RUNS}/{theirs['id']}", headers=STRIPE_AUTH)
    assert hidden.status == 404
    listed = client.get(RUNS, headers={**STRIPE_AUTH, "Stripe-Account": "acct_connected1"}).json()
    assert [r["id"] for r in listed["data"]] == [theirs["id"]]
    a = finished_v1(client, mine["id"])
    b = finished_v1(client, theirs["id"], {"Stripe-Account": "acct_connected1"})
    body_a = client.get(a["result"]["url"], headers=STRIPE_AUTH).body
    body_b = client.get(
        b["result"]["url"], headers={**STRIPE_AUTH, "Stripe-Account": "acct_connected1"}
    ).body
    assert body_a != body_b
    assert client.get(b["result"]["url"], headers=STRIPE_AUTH).status == 404
    assert create_v1(client, **{"Stripe-Account": "bogus"}).status == 403


def test_results_are_deterministic_across_sandboxes(client: Http, sandbox: Sandbox) -> None:
    first = finished_v1(client, create_v1(client).json()["id"])
    body = client.get(first["result"]["url"], headers=STRIPE_AUTH).body
    sandbox.reset()
    second = finished_v1(client, create_v1(client).json()["id"])
    assert client.get(second["result"]["url"], headers=STRIPE_AUTH).body == body


def test_file_contents_need_the_key(client: Http) -> None:
    done = finished_v1(client, create_v1(client).json()["id"])
    assert client.get(done["result"]["url"]).status == 401


def test_unknown_path_is_stripe_shaped(client: Http) -> None:
    reply = client.get("/v1/reporting/nothing", headers=STRIPE_AUTH)
    assert reply.status == 404
    assert "Unrecognized request URL" in reply.json()["error"]["message"]
