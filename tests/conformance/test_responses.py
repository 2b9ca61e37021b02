"""Every operation the sandbox serves answers as specs/*.yaml say the provider does.

For each operation in ``report_gateway_sandbox.operations()`` a real request is sent for the
success case and for the errors a client meets most (bad credentials, unknown ids, invalid
parameters, rate limits and server errors injected as faults). JSON bodies are validated
against the response schema the spec documents for that status; files are checked for the
documented content type. An operation with no success case or no error case here fails
``test_every_operation_is_covered``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from report_gateway_sandbox import (
    ZUORA_REST_PREFIX,
    FaultRule,
    Sandbox,
    SandboxConfig,
    operations,
)

from .conftest import RUN_SECONDS, TOKEN_FORM, Answer, ProviderSpec, Wire

V1 = "/v1/reporting"
V2 = "/v2/reporting"
ZUORA = "/api/rest/v1"
INTERVAL = {"parameters[interval_start]": "1735689600", "parameters[interval_end]": "1738368000"}
V2_PARAMETERS = {
    "interval_start": "2025-01-01T00:00:00.000Z",
    "interval_end": "2025-02-01T00:00:00.000Z",
}


@dataclass
class World:
    """Runs created once per module: finished ones to read and download, ids to look up."""

    stripe_run: str
    stripe_file: str
    v2_run: str
    v2_download: str
    zuora_report: str
    zuora_view: str
    zuora_run: str


def _settle() -> None:
    time.sleep(RUN_SECONDS + 0.3)


@pytest.fixture(scope="module")
def world(wire: Wire) -> World:
    stripe = wire.send(
        "stripe",
        "POST",
        f"{V1}/report_runs",
        form={"report_type": "balance.summary.1", **INTERVAL},
    )
    v2 = wire.send(
        "stripe-v2",
        "POST",
        f"{V2}/report_runs",
        json_body={"report": "report_balance_summary", "report_parameters": V2_PARAMETERS},
    )
    wire.token()  # the REST family's bearer token, before any fault rule is added
    found = wire.send("zuora", "GET", f"{ZUORA}/reports/search", query={"query": "Customer"})
    report = found.json()["response"]["reports"][0]
    view = report.get("reportType") or "Summary"
    zuora = wire.send(
        "zuora", "POST", f"{ZUORA}/reports/{report['id']}/reportrun", query={"viewType": view}
    )
    assert (stripe.status, v2.status, zuora.status) == (200, 200, 200)
    _settle()
    stripe_run = wire.send("stripe", "GET", f"{V1}/report_runs/{stripe.json()['id']}").json()
    v2_run = wire.send("stripe-v2", "GET", f"{V2}/report_runs/{v2.json()['id']}").json()
    assert stripe_run["status"] == "succeeded"
    assert v2_run["status"] == "succeeded"
    return World(
        stripe_run=stripe_run["id"],
        stripe_file=stripe_run["result"]["id"],
        v2_run=v2_run["id"],
        v2_download=v2_run["result"]["file"]["download_url"]["url"],
        zuora_report=report["id"],
        zuora_view=view,
        zuora_run=zuora.json()["response"]["reportRunId"],
    )


Call = Callable[[Wire, World], Answer]


@dataclass(frozen=True)
class Case:
    operation: str  # "<provider>:<name>" as operations() lists it
    label: str
    status: int
    call: Call

    @property
    def id(self) -> str:
        return f"{self.operation}:{self.label}"


@dataclass(frozen=True)
class Family:
    """One of Zuora's endpoint families as the wire reaches it: the operation key's prefix
    (``operations()`` names both families' operations alike), the wire's credentials, the
    path prefix, and the entity header that names an entity the caller cannot reach."""

    key: str
    credentials: str
    prefix: str
    foreign_entity: dict[str, str]


ZCONNECT = Family("zuora", "zuora", ZUORA, {"entityId": "no-such-entity"})
REST = Family("zuora-rest", "zuora-rest", ZUORA_REST_PREFIX, {"Zuora-Entity-Ids": "0" * 32})


def _zuora_new_run(wire: Wire, world: World, family: Family) -> str:
    answer = wire.send(
        family.credentials,
        "POST",
        f"{family.prefix}/reports/{world.zuora_report}/reportrun",
        query={"viewType": world.zuora_view},
    )
    return str(answer.json()["response"]["reportRunId"])


def _zuora_cases(f: Family) -> list[Case]:
    """The same cases on either family: both serve the same operations on one shared state
    (the sandbox's OAuth client is its user), so the world's runs are found on both."""
    z, p = f.credentials, f.prefix
    return [
        Case(
            f"{f.key}:search_reports",
            "ok",
            200,
            lambda w, _: w.send(z, "GET", f"{p}/reports/search", query={"query": "report"}),
        ),
        Case(
            f"{f.key}:search_reports",
            "bad-credentials",
            401,
            lambda w, _: w.send(
                z, "GET", f"{p}/reports/search", query={"query": "report"}, valid=False
            ),
        ),
        Case(
            f"{f.key}:search_reports",
            "unknown-entity",
            400,
            lambda w, _: w.send(
                z,
                "GET",
                f"{p}/reports/search",
                query={"query": "report"},
                headers=f.foreign_entity,
            ),
        ),
        Case(
            f"{f.key}:run_report",
            "ok",
            200,
            lambda w, world: w.send(
                z,
                "POST",
                f"{p}/reports/{world.zuora_report}/reportrun",
                query={"viewType": world.zuora_view},
            ),
        ),
        Case(
            f"{f.key}:run_report",
            "bad-view-type",
            400,
            lambda w, world: w.send(
                z,
                "POST",
                f"{p}/reports/{world.zuora_report}/reportrun",
                query={"viewType": "Sideways"},
            ),
        ),
        Case(
            f"{f.key}:run_report",
            "bad-filters",
            400,
            lambda w, world: w.send(
                z,
                "POST",
                f"{p}/reports/{world.zuora_report}/reportrun",
                query={"viewType": world.zuora_view},
                json_body=[{"filterClauses": [{"field": {}, "value": "x", "operator": "="}]}],
            ),
        ),
        Case(
            f"{f.key}:run_report",
            "unknown-report",
            404,
            lambda w, _: w.send(
                z, "POST", f"{p}/reports/0000/reportrun", query={"viewType": "Summary"}
            ),
        ),
        Case(
            f"{f.key}:get_last_completed_report_run",
            "ok",
            200,
            lambda w, world: w.send(
                z, "GET", f"{p}/reports/{world.zuora_report}/reportruns/latest"
            ),
        ),
        Case(
            f"{f.key}:get_last_completed_report_run",
            "unknown-report",
            404,
            lambda w, _: w.send(z, "GET", f"{p}/reports/0000/reportruns/latest"),
        ),
        Case(
            f"{f.key}:get_report_data",
            "ok",
            200,
            lambda w, world: w.send(
                z,
                "GET",
                f"{p}/reportruns/reportdata/{world.zuora_run}",
                query={"offset": "0", "pageSize": "2"},
            ),
        ),
        Case(
            f"{f.key}:get_report_data",
            "bad-page",
            400,
            lambda w, world: w.send(
                z,
                "GET",
                f"{p}/reportruns/reportdata/{world.zuora_run}",
                query={"offset": "0", "pageSize": "0"},
            ),
        ),
        Case(
            f"{f.key}:get_report_data",
            "unknown-run",
            404,
            lambda w, _: w.send(
                z,
                "GET",
                f"{p}/reportruns/reportdata/0000",
                query={"offset": "0", "pageSize": "2"},
            ),
        ),
        Case(
            f"{f.key}:export_report_run",
            "ok",
            200,
            lambda w, world: w.send(z, "GET", f"{p}/reportruns/export/{world.zuora_run}"),
        ),
        Case(
            f"{f.key}:export_report_run",
            "unknown-run",
            404,
            lambda w, _: w.send(z, "GET", f"{p}/reportruns/export/0000"),
        ),
        Case(
            f"{f.key}:export_report_run",
            "not-completed",
            400,
            lambda w, world: w.send(
                z, "GET", f"{p}/reportruns/export/{_zuora_new_run(w, world, f)}"
            ),
        ),
        Case(
            f"{f.key}:get_report_run",
            "ok",
            200,
            lambda w, world: w.send(z, "GET", f"{p}/reportruns/{world.zuora_run}"),
        ),
        Case(
            f"{f.key}:get_report_run",
            "unknown-run",
            404,
            lambda w, _: w.send(z, "GET", f"{p}/reportruns/0000"),
        ),
        Case(
            f"{f.key}:cancel_report_run",
            "ok",
            200,
            lambda w, world: w.send(z, "DELETE", f"{p}/reportruns/{_zuora_new_run(w, world, f)}"),
        ),
        Case(
            f"{f.key}:cancel_report_run",
            "unknown-run",
            404,
            lambda w, _: w.send(z, "DELETE", f"{p}/reportruns/0000"),
        ),
        Case(
            f"{f.key}:cancel_report_run",
            "already-completed",
            200,
            lambda w, world: w.send(z, "DELETE", f"{p}/reportruns/{world.zuora_run}"),
        ),
    ]


CASES: list[Case] = [
    # -- Stripe Reporting v1 ------------------------------------------------------------------
    Case(
        "stripe:list_report_types",
        "ok",
        200,
        lambda w, _: w.send("stripe", "GET", f"{V1}/report_types"),
    ),
    Case(
        "stripe:list_report_types",
        "bad-key",
        401,
        lambda w, _: w.send("stripe", "GET", f"{V1}/report_types", valid=False),
    ),
    Case(
        "stripe:retrieve_report_type",
        "ok",
        200,
        lambda w, _: w.send("stripe", "GET", f"{V1}/report_types/balance.summary.1"),
    ),
    Case(
        "stripe:retrieve_report_type",
        "unknown",
        404,
        lambda w, _: w.send("stripe", "GET", f"{V1}/report_types/no.such.report"),
    ),
    Case(
        "stripe:retrieve_report_type",
        "bad-account",
        403,
        lambda w, _: w.send(
            "stripe",
            "GET",
            f"{V1}/report_types/balance.summary.1",
            headers={"Stripe-Account": "nope"},
        ),
    ),
    Case(
        "stripe:create_report_run",
        "ok",
        200,
        lambda w, _: w.send(
            "stripe",
            "POST",
            f"{V1}/report_runs",
            form={"report_type": "balance.summary.1", **INTERVAL},
        ),
    ),
    Case(
        "stripe:create_report_run",
        "missing-interval",
        400,
        lambda w, _: w.send(
            "stripe", "POST", f"{V1}/report_runs", form={"report_type": "balance.summary.1"}
        ),
    ),
    Case(
        "stripe:create_report_run",
        "unknown-type",
        400,
        lambda w, _: w.send(
            "stripe", "POST", f"{V1}/report_runs", form={"report_type": "no.such.report"}
        ),
    ),
    Case(
        "stripe:create_report_run",
        "bad-key",
        401,
        lambda w, _: w.send(
            "stripe",
            "POST",
            f"{V1}/report_runs",
            form={"report_type": "balance.summary.1", **INTERVAL},
            valid=False,
        ),
    ),
    Case(
        "stripe:list_report_runs",
        "ok",
        200,
        lambda w, _: w.send("stripe", "GET", f"{V1}/report_runs", query={"limit": "3"}),
    ),
    Case(
        "stripe:list_report_runs",
        "bad-limit",
        400,
        lambda w, _: w.send("stripe", "GET", f"{V1}/report_runs", query={"limit": "many"}),
    ),
    Case(
        "stripe:retrieve_report_run",
        "ok",
        200,
        lambda w, world: w.send("stripe", "GET", f"{V1}/report_runs/{world.stripe_run}"),
    ),
    Case(
        "stripe:retrieve_report_run",
        "unknown",
        404,
        lambda w, _: w.send("stripe", "GET", f"{V1}/report_runs/frr_doesnotexist"),
    ),
    Case(
        "stripe:download_file_contents",
        "ok",
        200,
        lambda w, world: w.send("stripe", "GET", f"/v1/files/{world.stripe_file}/contents"),
    ),
    Case(
        "stripe:download_file_contents",
        "unknown",
        404,
        lambda w, _: w.send("stripe", "GET", "/v1/files/file_doesnotexist/contents"),
    ),
    Case(
        "stripe:download_file_contents",
        "bad-key",
        401,
        lambda w, world: w.send(
            "stripe", "GET", f"/v1/files/{world.stripe_file}/contents", valid=False
        ),
    ),
    # -- Stripe Reports v2 --------------------------------------------------------------------
    Case(
        "stripe-v2:retrieve_report",
        "ok",
        200,
        lambda w, _: w.send("stripe-v2", "GET", f"{V2}/reports/report_balance_summary"),
    ),
    Case(
        "stripe-v2:retrieve_report",
        "unknown",
        404,
        lambda w, _: w.send("stripe-v2", "GET", f"{V2}/reports/report_nothing"),
    ),
    Case(
        "stripe-v2:retrieve_report",
        "bad-key",
        401,
        lambda w, _: w.send(
            "stripe-v2", "GET", f"{V2}/reports/report_balance_summary", valid=False
        ),
    ),
    Case(
        "stripe-v2:create_report_run",
        "ok",
        200,
        lambda w, _: w.send(
            "stripe-v2",
            "POST",
            f"{V2}/report_runs",
            json_body={"report": "report_balance_summary", "report_parameters": V2_PARAMETERS},
        ),
    ),
    Case(
        "stripe-v2:create_report_run",
        "invalid-fields",
        400,
        lambda w, _: w.send(
            "stripe-v2",
            "POST",
            f"{V2}/report_runs",
            json_body={
                "report": "report_balance_summary",
                "report_parameters": {"interval_start": "yesterday"},
            },
        ),
    ),
    Case(
        "stripe-v2:create_report_run",
        "unknown-report",  # the report is a field of the body: invalid_fields
        400,
        lambda w, _: w.send(
            "stripe-v2",
            "POST",
            f"{V2}/report_runs",
            json_body={"report": "report_nothing", "report_parameters": V2_PARAMETERS},
        ),
    ),
    Case(
        "stripe-v2:retrieve_report_run",
        "ok",
        200,
        lambda w, world: w.send("stripe-v2", "GET", f"{V2}/report_runs/{world.v2_run}"),
    ),
    Case(
        "stripe-v2:retrieve_report_run",
        "unknown",
        404,
        lambda w, _: w.send("stripe-v2", "GET", f"{V2}/report_runs/reprun_nothing"),
    ),
    Case(
        "stripe-v2:download_presigned",
        "ok",
        200,
        lambda w, world: w.send("presigned", "GET", "", url=world.v2_download),
    ),
    Case(
        "stripe-v2:download_presigned",
        "bad-signature",
        403,
        lambda w, world: w.send(
            "presigned",
            "GET",
            "",
            url=world.v2_download.split("signature=")[0] + "signature=" + "0" * 64,
        ),
    ),
    # -- Zuora: the zconnect family (header pair) and the REST family (bearer token) ------
    *_zuora_cases(ZCONNECT),
    *_zuora_cases(REST),
    # -- Zuora: the token operation (REST hosts, at the host root) -----------------------------
    Case(
        "zuora-rest:create_oauth_token",
        "ok",
        200,
        lambda w, _: w.send("zuora-oauth", "POST", "/oauth/token", form=TOKEN_FORM),
    ),
    Case(
        "zuora-rest:create_oauth_token",
        "bad-secret",
        401,
        lambda w, _: w.send(
            "zuora-oauth",
            "POST",
            "/oauth/token",
            form={**TOKEN_FORM, "client_secret": "not-the-sandbox-secret"},
        ),
    ),
    Case(
        "zuora-rest:create_oauth_token",
        "missing-grant-type",
        400,
        lambda w, _: w.send(
            "zuora-oauth",
            "POST",
            "/oauth/token",
            form={k: v for k, v in TOKEN_FORM.items() if k != "grant_type"},
        ),
    ),
    Case(
        "zuora-rest:create_oauth_token",
        "json-body",
        400,
        lambda w, _: w.send("zuora-oauth", "POST", "/oauth/token", json_body=TOKEN_FORM),
    ),
    Case(
        "zuora-rest:create_oauth_token",
        "unknown-entity",
        400,
        lambda w, _: w.send(
            "zuora-oauth",
            "POST",
            "/oauth/token",
            form=TOKEN_FORM,
            headers={"Zuora-Entity-Ids": "0" * 32},
        ),
    ),
]

OPERATIONS = operations()
#: Operations by "<provider>:<name>"; Zuora's REST family as "zuora-rest:<name>" (both
#: families name their operations alike).
BY_NAME: dict[str, dict[str, Any]] = {
    f"{op['provider']}{'-rest' if op['family'] == 'rest' else ''}:{op['name']}": op
    for op in OPERATIONS
}


def _check(specs: dict[str, ProviderSpec], operation: str, answer: Answer) -> None:
    op = BY_NAME[operation]
    provider = str(op["provider"])
    if not op["in_spec"]:
        # A pre-signed download is S3's, not Stripe's API: files as CSV, errors as XML.
        expected = "text/csv" if answer.status == 200 else "application/xml"
        assert answer.content_type.split(";")[0] == expected
        assert answer.body
        return
    specs[provider].check(
        str(op["method"]), str(op["path"]), answer.status, answer.content_type, answer.body
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_response_matches_spec(
    case: Case, wire: Wire, world: World, specs: dict[str, ProviderSpec]
) -> None:
    answer = case.call(wire, world)
    assert answer.status == case.status, answer.body[:300]
    _check(specs, case.operation, answer)


FAULTS = [
    (name, kind)
    for name, op in BY_NAME.items()
    for kind in ("rate_limit", "server_error")
    if op["in_spec"]
]


@pytest.mark.parametrize(("operation", "kind"), FAULTS, ids=[f"{n}:{k}" for n, k in FAULTS])
def test_injected_errors_match_spec(
    operation: str,
    kind: str,
    sandbox: Sandbox,
    wire: Wire,
    world: World,
    specs: dict[str, ProviderSpec],
) -> None:
    """429 and 5xx as a fault rule produces them, on every operation of the specs."""
    success = next(c for c in CASES if c.operation == operation and c.status == 200)
    op = BY_NAME[operation]
    path = re.sub(r"\{[^}]+\}", "*", str(op["path"]))
    rule = FaultRule(kind=kind, path=path, method=str(op["method"]), count=1)  # type: ignore[arg-type]
    sandbox.add_fault(rule)
    try:
        answer = success.call(wire, world)
    finally:
        sandbox.clear_faults()
    assert answer.status == (429 if kind == "rate_limit" else 503)
    if kind == "rate_limit":
        assert answer.headers.get("Retry-After")
    _check(specs, operation, answer)


def test_v2_concurrency_limit_matches_spec(specs: dict[str, ProviderSpec]) -> None:
    """Over the limit of running runs, Stripe v2 refuses with report_run_rate_limit_exceeded."""
    with Sandbox(SandboxConfig(run_seconds=30.0, v2_concurrency_limit=1)) as own:
        own_wire = Wire(own)
        body = {"report": "report_balance_summary", "report_parameters": V2_PARAMETERS}
        first = own_wire.send("stripe-v2", "POST", f"{V2}/report_runs", json_body=body)
        second = own_wire.send("stripe-v2", "POST", f"{V2}/report_runs", json_body=body)
    assert first.status == 200
    assert second.status == 429
    assert second.json()["error"]["code"] == "report_run_rate_limit_exceeded"
    _check(specs, "stripe-v2:create_report_run", second)


def test_every_operation_is_covered() -> None:
    """Each served operation has a success case and an error case above."""
    missing = []
    for name in BY_NAME:
        statuses = {c.status for c in CASES if c.operation == name}
        if not any(200 <= s < 300 for s in statuses):
            missing.append(f"{name}: no success case")
        if not any(s >= 400 for s in statuses):
            missing.append(f"{name}: no error case")
    unknown = sorted({c.operation for c in CASES} - set(BY_NAME))
    assert missing == [], "operations not covered: " + "; ".join(missing)
    assert unknown == [], f"cases for operations the sandbox does not serve: {unknown}"


def test_every_spec_operation_is_served(specs: dict[str, ProviderSpec]) -> None:
    """The other direction: nothing the specs describe is missing from the sandbox. Zuora's
    operations are served on both endpoint families; its token operation, which names its
    own server (the REST host root), once at the root."""
    served = {(str(op["provider"]), str(op["method"]), str(op["path"])) for op in OPERATIONS}
    absent = []
    for provider, spec in specs.items():
        for path, item in spec.spec["paths"].items():
            if "servers" in item:
                prefixes = [""]
            else:
                prefixes = [ZUORA, ZUORA_REST_PREFIX] if provider == "zuora" else [""]
            for method in ("get", "post", "delete", "put", "patch"):
                for prefix in prefixes:
                    if method in item and (provider, method.upper(), prefix + path) not in served:
                        absent.append(f"{provider} {method.upper()} {prefix}{path}")
    assert absent == []


def test_the_check_rejects_what_the_spec_does_not_allow(specs: dict[str, ProviderSpec]) -> None:
    """The checker is not vacuous: a wrong type, a wrong media type, an undocumented status."""
    spec = specs["stripe"]
    path = f"{V1}/report_runs/{{report_run}}"
    with pytest.raises(AssertionError, match="status"):
        spec.check("GET", path, 200, "application/json", b'{"id": "frr_1", "status": 5}')
    with pytest.raises(AssertionError, match="Content-Type"):
        spec.check("GET", path, 200, "text/html", b"<html></html>")
    with pytest.raises(AssertionError, match="not a documented response"):
        specs["stripe-v2"].check("GET", f"{V2}/reports/{{id}}", 418, "application/json", b"{}")
