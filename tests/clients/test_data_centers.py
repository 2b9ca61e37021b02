"""The hand-written data-center table and the spec's server list name the same endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from zuora_reporting_client import (
    DATA_CENTERS,
    DEFAULT_DATA_CENTER,
    ZUORA_DATA_CENTERS,
    Client,
    base_url,
    client_urls,
)
from zuora_reporting_client._generated.client import DEFAULT_BASE_URL

SPEC = Path(__file__).resolve().parents[2] / "specs" / "zuora-reporting.yaml"


def test_data_centers_match_the_spec_servers() -> None:
    servers = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["servers"]
    from_spec = {(s["x-server-name"], s["x-endpoint-family"]): s["url"] for s in servers}
    from_table = {
        (name, family): center.base_url(family)
        for name, center in ZUORA_DATA_CENTERS.items()
        for family in ("rest", "zconnect")
    }
    assert from_table == from_spec


def test_rest_is_the_default_family_and_zconnect_an_explicit_choice() -> None:
    assert base_url("eu-sandbox") == "https://rest.sandbox.eu.zuora.com/reporting/api/rest/v1"
    assert (
        base_url("eu-sandbox", endpoint_family="zconnect")
        == "https://zconnect.sandbox.eu.zuora.com/api/rest/v1"
    )
    # The older name -> zconnect table stays for the username/password path.
    assert DATA_CENTERS["eu-sandbox"] == base_url("eu-sandbox", "zconnect")
    assert ZUORA_DATA_CENTERS["us-cloud-2-sandbox"].token_url == (
        "https://rest.apisandbox.zuora.com/oauth/token"
    )
    with pytest.raises(KeyError, match="mars-1"):
        base_url("mars-1")
    with pytest.raises(ValueError, match="family"):
        ZUORA_DATA_CENTERS["eu-sandbox"].base_url("soap")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "host",
    [
        "https://rest.zuora.com",
        "https://rest.zuora.com/",
        "https://rest.zuora.com/reporting/api/rest/v1",
    ],
)
def test_client_urls_from_a_rest_host_as_zuora_prints_it(host: str) -> None:
    urls = client_urls(host)
    assert urls == {
        "base_url": "https://rest.zuora.com/reporting/api/rest/v1",
        "oauth_base_url": "https://rest.zuora.com",
    }
    client = Client(**urls)
    assert client.base_url == urls["base_url"]
    assert client.servers == {"oauth": "https://rest.zuora.com"}


def test_default_data_center_is_the_client_default() -> None:
    assert base_url(DEFAULT_DATA_CENTER) == DEFAULT_BASE_URL
    assert all(url.startswith("https://") for url in DATA_CENTERS.values())
    assert all(
        center.rest_host.startswith("https://rest.") for center in ZUORA_DATA_CENTERS.values()
    )
    assert Client.__init__.__defaults__ == (DEFAULT_BASE_URL,)
