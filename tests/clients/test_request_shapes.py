"""What the generated clients put on the wire for the spec features of issue 11: Zuora's two
endpoint families, its token operation and headers, Stripe v2's deepObject `include`.

Requests are built, not sent (`build_request` is the step before the pipeline)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

from stripe_reporting_client import v2
from zuora_reporting_client import Client, base_url, client_urls, models
from zuora_reporting_client._generated.client import (
    CREATE_TOKEN,
    GET_REPORT_RUN,
    RUN_REPORT,
)


def test_stripe_v2_include_is_sent_as_a_deep_object() -> None:
    client = v2.Client(api_key="sk_test_REDACTED")
    request = client.build_request(
        v2.OPERATIONS["retrieve_report_run"],
        path={"id": "reprun_1"},
        query={"include": ["result.file.schema"]},
    )
    assert request.url == (
        "https://api.stripe.com/v2/reporting/report_runs/reprun_1?include[0]=result.file.schema"
    )


def test_zuora_rest_family_paths_sit_under_the_reporting_prefix() -> None:
    client = Client(**client_urls("https://rest.apisandbox.zuora.com"))
    run = client.build_request(
        RUN_REPORT,
        path={"reportId": "ff80"},
        query={"viewType": "Summary"},
        headers={"Idempotency-Key": "k-1", "Zuora-Entity-Ids": "e-1", "Zuora-Track-Id": "t-1"},
    )
    assert run.url == (
        "https://rest.apisandbox.zuora.com/reporting/api/rest/v1/reports/ff80/reportrun"
        "?viewType=Summary"
    )
    assert run.header("Idempotency-Key") == "k-1"
    assert run.header("Zuora-Entity-Ids") == "e-1"
    assert run.header("Zuora-Track-Id") == "t-1"
    polled = client.build_request(GET_REPORT_RUN, path={"reportRunId": "r1"})
    assert polled.url == "https://rest.apisandbox.zuora.com/reporting/api/rest/v1/reportruns/r1"


def test_zuora_zconnect_family_keeps_todays_paths() -> None:
    client = Client(base_url("us-cloud-2-sandbox", "zconnect"))
    polled = client.build_request(GET_REPORT_RUN, path={"reportRunId": "r1"})
    assert polled.url == "https://zconnectsandbox.zuora.com/api/rest/v1/reportruns/r1"


def test_zuora_token_request_is_a_form_at_the_host_root() -> None:
    client = Client(**client_urls("https://rest.eu.zuora.com/"))
    request = client.build_request(
        CREATE_TOKEN,
        body=models.CreateTokenRequest(
            client_id="id-1",
            client_secret="secret-1",
            grant_type=models.CreateTokenRequestGrantType.CLIENT_CREDENTIALS,
        ),
    )
    assert request.method == "POST"
    assert request.url == "https://rest.eu.zuora.com/oauth/token"
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    assert request.body is not None
    assert dict(parse_qsl(request.body.decode())) == {
        "client_id": "id-1",
        "client_secret": "secret-1",
        "grant_type": "client_credentials",
    }
    # No credential travels with the token call when the client holds none.
    assert request.header("Authorization") is None
    assert urlsplit(request.url).path == "/oauth/token"
    # The secret is kept out of the model's repr (x-secret in the spec).
    assert "secret-1" not in repr(
        models.CreateTokenRequest(
            client_id="id-1",
            client_secret="secret-1",
            grant_type=models.CreateTokenRequestGrantType.CLIENT_CREDENTIALS,
        )
    )


def test_zuora_filter_objects_reach_the_body_as_documented() -> None:
    documented = [
        {
            "logicalOperator": {"value": "OR", "label": "OPERATOR_OR", "name": "or"},
            "filterClauses": [
                {
                    "field": {"name": "Name", "id": "Product.Name", "type": "text"},
                    "value": "Hockey",
                    "operator": {"name": "contains", "value": "contains"},
                }
            ],
        }
    ]
    client = Client(**client_urls("https://rest.zuora.com"))
    request = client.build_request(
        RUN_REPORT, path={"reportId": "r"}, query={"viewType": "Detail"}, body=documented
    )
    assert request.body is not None
    assert json.loads(request.body) == documented
