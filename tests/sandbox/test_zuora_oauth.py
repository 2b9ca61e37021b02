"""Zuora's REST-host family as the sandbox serves it: the OAuth token, bearer auth and its
expiry, Zuora-Entity-Ids, idempotent Run a report, and the documented filter objects."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest
from report_gateway_sandbox import (
    ZUORA_CLIENT_ID,
    ZUORA_CLIENT_SECRET,
    ZUORA_ENTITIES,
    FaultRule,
    Sandbox,
)

from .conftest import CUSTOMER_REPORT, INVOICE_DETAIL, ZUORA, ZUORA_AUTH, Http, Reply

REST = "/reporting/api/rest/v1"
CLIENT = {
    "client_id": ZUORA_CLIENT_ID,
    "client_secret": ZUORA_CLIENT_SECRET,
    "grant_type": "client_credentials",
}
EUROPE = next(eid for eid, name in ZUORA_ENTITIES.items() if name == "EuropeanBU")
RUN_INVOICES = f"{REST}/reports/{INVOICE_DETAIL}/reportrun?viewType=Detail"
OR = {"value": "OR", "label": "OPERATOR_OR", "name": "or"}
CONTAINS = {"name": "contains", "value": "contains"}


def token(client: Http, **headers: str) -> dict[str, Any]:
    reply = client.post("/oauth/token", form=CLIENT, headers=headers)
    assert reply.status == 200, reply.body
    answer: dict[str, Any] = reply.json()
    return answer


def bearer(client: Http, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(client, **headers)['access_token']}"}


def reasons(reply: Reply) -> list[dict[str, Any]]:
    """Zuora's v1 error shape: success false, a processId, and code/message pairs."""
    body = reply.json()
    assert body["success"] is False
    assert body["processId"]
    found: list[dict[str, Any]] = body["reasons"]
    return found


def test_token_is_issued_for_the_configured_client(client: Http, sandbox: Sandbox) -> None:
    reply = client.post("/oauth/token", form=CLIENT, headers={"Zuora-Track-Id": "t-1"})
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json;charset=UTF-8"
    assert reply.header("Zuora-Track-Id") == "t-1"
    answer = reply.json()
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope", "jti"}
    assert answer["token_type"] == "bearer"
    assert answer["expires_in"] == 3599
    assert answer["access_token"] != answer["jti"]
    assert "entity.8ad09be4-8db5-aba7-018d-b604776d4854" in answer["scope"].split()
    assert sandbox.stats()["tokens_issued"] == {"zuora": 1}
    sandbox.configure(zuora_client_id="my-client", zuora_client_secret="my-secret")
    assert client.post("/oauth/token", form=CLIENT).status == 401
    own = {**CLIENT, "client_id": "my-client", "client_secret": "my-secret"}
    assert client.post("/oauth/token", form=own).status == 200
    assert sandbox.stats()["tokens_issued"] == {"zuora": 2}


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({**CLIENT, "client_secret": "wrong"}, 401, 90000011),
        ({**CLIENT, "client_id": "someone-else"}, 401, 90000011),
        ({**CLIENT, "grant_type": "password"}, 400, 90000020),
        ({"client_id": ZUORA_CLIENT_ID, "client_secret": ZUORA_CLIENT_SECRET}, 400, 90000022),
    ],
    ids=["secret", "client", "grant", "no-grant"],
)
def test_token_refusals_come_in_zuoras_error_shape(
    client: Http, sandbox: Sandbox, form: dict[str, str], status: int, code: int
) -> None:
    reply = client.post("/oauth/token", form=form)
    assert reply.status == status
    ((reason,),) = [reasons(reply)]
    assert reason["code"] == code
    assert ZUORA_CLIENT_SECRET not in reply.body.decode()
    as_json = client.post("/oauth/token", json_body=CLIENT)
    assert as_json.status == 400
    assert sandbox.stats()["tokens_issued"] == {"zuora": 0}


def test_rest_family_serves_the_same_operations_with_a_bearer_token(client: Http) -> None:
    auth = bearer(client)
    found = client.get(f"{REST}/reports/search?query=customer", headers=auth)
    assert found.status == 200
    assert found.json()["response"]["reports"][0]["id"] == CUSTOMER_REPORT
    created = client.post(RUN_INVOICES, headers=auth)
    assert created.status == 200
    run_id = created.json()["response"]["reportRunId"]
    # One tenant, one user: the run is seen on both families.
    on_rest = client.get(f"{REST}/reportruns/{run_id}", headers=auth).json()["response"]
    on_zconnect = client.get(f"{ZUORA}/reportruns/{run_id}", headers=ZUORA_AUTH).json()
    assert on_rest["id"] == on_zconnect["response"]["id"] == run_id


def test_each_family_takes_only_its_own_credentials(client: Http) -> None:
    auth = bearer(client)
    search = "/reports/search?query=customer"
    pair_on_rest = client.get(REST + search, headers=ZUORA_AUTH)
    assert pair_on_rest.status == 401
    assert reasons(pair_on_rest)[0]["code"] == 90000011
    bearer_on_zconnect = client.get(ZUORA + search, headers=auth)
    assert bearer_on_zconnect.status == 401
    assert bearer_on_zconnect.json()["errorCode"] == "loginFailed"
    both_on_zconnect = client.get(ZUORA + search, headers={**auth, **ZUORA_AUTH})
    assert both_on_zconnect.status == 401
    assert client.get(REST + search, headers={"Authorization": "Bearer nope"}).status == 401


def test_expired_tokens_are_refused(client: Http, sandbox: Sandbox) -> None:
    search = f"{REST}/reports/search?query=customer"
    auth = bearer(client)
    assert client.get(search, headers=auth).status == 200
    assert client.post("/_sandbox/zuora/expire_tokens").json() == {"expired": 1}
    expired = client.get(search, headers=auth)
    assert expired.status == 401
    assert reasons(expired)[0]["code"] == 90000011
    assert client.get(search, headers=bearer(client)).status == 200
    # The configured life: 0 issues tokens that are already expired.
    sandbox.configure(zuora_token_seconds=0)
    short = token(client)
    assert short["expires_in"] == 0
    headers = {"Authorization": f"Bearer {short['access_token']}"}
    assert client.get(search, headers=headers).status == 401


def test_zuora_entity_ids_selects_the_entity(client: Http) -> None:
    auth = bearer(client)
    europe = {**auth, "Zuora-Entity-Ids": EUROPE}
    run_id = client.post(RUN_INVOICES, headers=europe).json()["response"]["reportRunId"]
    assert client.get(f"{REST}/reportruns/{run_id}", headers=europe).status == 200
    assert client.get(f"{REST}/reportruns/{run_id}", headers=auth).status == 404
    dashed = f"{EUROPE[:8]}-{EUROPE[8:12]}-{EUROPE[12:16]}-{EUROPE[16:20]}-{EUROPE[20:]}"
    uuid_form = {**auth, "Zuora-Entity-Ids": dashed}
    assert client.get(f"{REST}/reportruns/{run_id}", headers=uuid_form).status == 200
    unknown = client.get(
        f"{REST}/reportruns/{run_id}", headers={**auth, "Zuora-Entity-Ids": "0" * 32}
    )
    assert unknown.status == 400
    assert "not accessible" in reasons(unknown)[0]["message"]
    # A token asked for one entity works only there, and there by default.
    europe_only = bearer(client, **{"Zuora-Entity-Ids": EUROPE})
    assert client.get(f"{REST}/reportruns/{run_id}", headers=europe_only).status == 200
    home = next(iter(ZUORA_ENTITIES))
    elsewhere = {**europe_only, "Zuora-Entity-Ids": home}
    assert client.get(f"{REST}/reportruns/{run_id}", headers=elsewhere).status == 400


def test_idempotency_key_makes_one_run(client: Http, sandbox: Sandbox) -> None:
    auth = {**bearer(client), "Idempotency-Key": "run-once"}
    body = [{"logicalOperator": OR, "filterClauses": []}]
    first = client.post(RUN_INVOICES, headers=auth, json_body=body)
    again = client.post(RUN_INVOICES, headers=auth, json_body=body)
    assert first.status == again.status == 200
    assert first.body == again.body
    assert again.header("Content-Type") == "application/json;charset=UTF-8"
    assert sandbox.stats()["runs_created"]["zuora"] == 1
    other = client.post(RUN_INVOICES, headers=auth, json_body=[])
    assert other.status == 422
    assert reasons(other)[0]["code"] == 90000020
    fresh = client.post(RUN_INVOICES, headers={**auth, "Idempotency-Key": "other"})
    assert fresh.json()["response"]["reportRunId"] != first.json()["response"]["reportRunId"]
    assert sandbox.stats()["runs_created"]["zuora"] == 2


def test_a_lost_answer_retried_with_its_key_makes_one_run(client: Http, sandbox: Sandbox) -> None:
    """The create happened, its answer was cut: the same key gets the same run back."""
    sandbox.add_fault(FaultRule(kind="drop_connection", path=f"{REST}/reports/*", count=1))
    auth = {**bearer(client), "Idempotency-Key": "lost-answer"}
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        client.post(RUN_INVOICES, headers=auth)
    retried = client.post(RUN_INVOICES, headers=auth)
    assert retried.status == 200
    assert sandbox.stats()["runs_created"]["zuora"] == 1


def test_zconnect_ignores_idempotency_keys(client: Http, sandbox: Sandbox) -> None:
    headers = {**ZUORA_AUTH, "Idempotency-Key": "same"}
    run = f"{ZUORA}/reports/{INVOICE_DETAIL}/reportrun?viewType=Detail"
    assert client.post(run, headers=headers).status == 200
    assert client.post(run, headers=headers).status == 200
    assert sandbox.stats()["runs_created"]["zuora"] == 2


def _refusal(reply: Reply) -> str:
    assert reply.status == 400, reply.body
    body = reply.json()
    assert body["success"] is False
    inner = json.loads(body["response"])
    assert inner["errorCode"] == "ZAN-USAGE-REST-ERROR"
    return str(inner["message"])


#: The two request samples Zuora prints for Run a report (tests/specs/examples/zuora):
#: docs.zuora.com's objects (a whole field description, "is greater than" for ">") and
#: developer.zuora.com's sample (a field with only id and type, the operator a bare "=").
EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "examples" / "zuora"
DOCUMENTED_FILTERS = {
    name: json.loads((EXAMPLES / f"{name}.json").read_text("utf-8"))["payload"]
    for name in (
        "run-a-report__run_report--request-filters",
        "older-api-run-a-report__run_report--request-string-operator",
    )
}


@pytest.mark.parametrize("page", sorted(DOCUMENTED_FILTERS))
def test_documented_filters_are_accepted_on_both_families(
    client: Http, sandbox: Sandbox, page: str
) -> None:
    body = DOCUMENTED_FILTERS[page]
    rest = client.post(RUN_INVOICES, headers=bearer(client), json_body=body)
    assert rest.status == 200, rest.body
    zconnect = client.post(
        f"{ZUORA}/reports/{INVOICE_DETAIL}/reportrun?viewType=Detail",
        headers=ZUORA_AUTH,
        json_body=body,
    )
    assert zconnect.status == 200, zconnect.body
    run = sandbox.app.zuora.runs[rest.json()["response"]["reportRunId"]]
    assert run.filters == body  # kept as sent


@pytest.mark.parametrize(
    "operator",
    [
        {"name": "is greater than", "value": ">"},
        {"name": "is less than or equal to", "value": "<="},
        {"name": "does not contain", "value": "does not contain"},
        {"value": "!="},
        "is not null",
        ">=",
    ],
)
def test_operator_names_and_values_the_reporting_ui_uses_are_known(
    client: Http, operator: Any
) -> None:
    clause = {"field": {"id": "Invoice.Amount"}, "value": "10", "operator": operator}
    reply = client.post(
        RUN_INVOICES, headers=bearer(client), json_body=[{"filterClauses": [clause]}]
    )
    assert reply.status == 200, reply.body


@pytest.mark.parametrize(
    ("group", "where"),
    [
        ({"logicalOperator": "OR", "filterClauses": []}, "logicalOperator"),
        ({"filterClauses": [{"field": "Account.Name", "operator": CONTAINS}]}, "field"),
        (
            {"filterClauses": [{"field": {"name": "Name", "type": "text"}, "operator": "="}]},
            "field must be an object with an id",
        ),
        ({"filterClauses": [{"field": {"id": ""}, "operator": "="}]}, "field"),
        ({"filterClauses": [{"field": {"id": "A.B", "type": 1}, "operator": "="}]}, "type"),
        (
            {"filterClauses": [{"field": {"id": "A.B"}, "operator": {"name": "resembles"}}]},
            "'resembles' is not a known operator",
        ),
        (
            {"filterClauses": [{"field": {"id": "A.B"}, "operator": {"name": "contains"}}]},
            "must have a value",
        ),
        (
            {
                "filterClauses": [
                    {"field": {"id": "A.B"}, "operator": {"name": "is greater than", "value": "<"}}
                ]
            },
            "does not match its value",
        ),
        ({"filterClauses": [{"field": {"id": "A.B"}, "operator": 5}]}, "operator"),
        ({"logicalOperator": {"value": "XOR"}, "filterClauses": []}, "not AND or OR"),
        (
            {"logicalOperator": {"value": "OR", "label": "OPERATOR_AND"}, "filterClauses": []},
            "label",
        ),
    ],
    ids=[
        "string-logical",
        "string-field",
        "field-without-id",
        "empty-id",
        "typed-member",
        "unknown",
        "no-value",
        "name-value-mismatch",
        "number-operator",
        "xor",
        "label",
    ],
)
def test_rest_family_refuses_filters_in_other_shapes(
    client: Http, sandbox: Sandbox, group: dict[str, Any], where: str
) -> None:
    reply = client.post(RUN_INVOICES, headers=bearer(client), json_body=[group])
    assert where in _refusal(reply)
    assert sandbox.stats()["runs_created"]["zuora"] == 0


def test_zconnect_family_still_takes_plain_strings(client: Http) -> None:
    run = f"{ZUORA}/reports/{INVOICE_DETAIL}/reportrun?viewType=Detail"
    strings = [
        {
            "logicalOperator": "AND",
            "filterClauses": [{"field": "Account.Currency", "value": "USD", "operator": "="}],
        }
    ]
    assert client.post(run, headers=ZUORA_AUTH, json_body=strings).status == 200
    unknown = [{"filterClauses": [{"field": "A.B", "value": "1", "operator": "resembles"}]}]
    assert "not a known operator" in _refusal(
        client.post(run, headers=ZUORA_AUTH, json_body=unknown)
    )
