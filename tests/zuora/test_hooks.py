"""The zuora plugin's hooks and settings: what a user configures and what the gateway asks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pytest
from report_gateway import (
    ConfigurationError,
    CredentialsError,
    Gateway,
    RunStatus,
    Scope,
    ScopeError,
)
from report_gateway.config import Credentials
from zuora_reporting_client import DATA_CENTERS

ALL_STATUSES = {
    "STARTED": RunStatus.RUNNING,
    "QUERYDATA": RunStatus.RUNNING,
    "PROCESSINGDATA": RunStatus.RUNNING,
    "COMPLETED": RunStatus.SUCCEEDED,
    "CANCELLED": RunStatus.CANCELED,
    "CANCELED": RunStatus.CANCELED,
    "INVALID": RunStatus.FAILED,
    "ERROR": RunStatus.FAILED,
}


def test_entry_point_names_the_plugin_module() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="report_gateway")}
    assert found.get("zuora") == "report_gateway_zuora.plugin"


def test_gateway_finds_the_plugin_through_its_entry_point(environ: dict[str, str]) -> None:
    env = {**environ, "REPORT_GATEWAY_LOAD_PLUGINS": "zuora"}
    with Gateway(environ=env) as gateway:
        assert gateway.providers() == ["zuora"]
        (info,) = [p for p in gateway.plugins() if p.name == "zuora"]
        assert (info.distribution, info.version) == ("report-gateway-zuora", "0.1.0")
        assert "report_gateway_providers" in info.hooks


def test_importing_the_plugin_loads_no_client() -> None:
    code = (
        "import sys, report_gateway_zuora.plugin as p; p.report_gateway_providers(); "
        "print(sorted(m for m in ('urllib3', 'cattrs', 'zuora_reporting_client', "
        "'reporting_runtime') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_provider_spec(plugin: ModuleType) -> None:
    (spec,) = plugin.report_gateway_providers()
    assert spec.name == "zuora"
    assert spec.credential_keys == (
        "client_id",
        "client_secret",
        "api_access_key_id",
        "api_secret_access_key",
    )
    assert dict(spec.env_vars) == {
        "client_id": "ZUORA_CLIENT_ID",
        "client_secret": "ZUORA_CLIENT_SECRET",
        "api_access_key_id": "ZUORA_API_ACCESS_KEY_ID",
        "api_secret_access_key": "ZUORA_API_SECRET_ACCESS_KEY",
        "data_center": "ZUORA_DATA_CENTER",
        "entity_id": "ZUORA_ENTITY_ID",
        "entity_name": "ZUORA_ENTITY_NAME",
    }
    assert {"base_url", "data_center", "entity_id", "entity_name"} <= set(spec.settings_keys)


@pytest.mark.parametrize(("word", "status"), sorted(ALL_STATUSES.items()))
def test_every_documented_status_maps(plugin: ModuleType, word: str, status: RunStatus) -> None:
    (spec,) = plugin.report_gateway_providers()
    assert spec.status_of(word) is status
    assert spec.status_of(word.lower()) is status


def test_unknown_status_and_other_providers_are_left_alone(plugin: ModuleType) -> None:
    (spec,) = plugin.report_gateway_providers()
    assert spec.status_of("ARCHIVED") is None
    assert spec.name == "zuora"  # the table is zuora's alone: no other provider reads it


def test_scope_headers(plugin: ModuleType) -> None:
    (spec,) = plugin.report_gateway_providers()
    hook = spec.headers_for
    assert hook(Scope()) == {}
    assert hook(Scope(entity_id="8ad0")) == {"entityId": "8ad0"}
    assert hook(Scope(entity_name="EuropeanBU")) == {"entityName": "EuropeanBU"}
    with pytest.raises(ScopeError, match="not both"):
        hook(Scope(entity_id="8ad0", entity_name="EuropeanBU"))
    with pytest.raises(ScopeError, match="account"):
        hook(Scope(account="acct_1"))
    with pytest.raises(ScopeError, match="context"):
        hook(Scope(context="org_1"))


def test_auth_is_the_header_pair_and_hides_the_secret(plugin: ModuleType) -> None:
    secret = "s3cr3t-zuora-password"
    (spec,) = plugin.report_gateway_providers()
    auth = spec.make_auth(Credentials({"api_access_key_id": "me", "api_secret_access_key": secret}))
    assert dict(auth.auth_headers()) == {"apiAccessKeyId": "me", "apiSecretAccessKey": secret}
    assert secret not in repr(auth)
    with pytest.raises(ConfigurationError, match="ZUORA_API_SECRET_ACCESS_KEY"):
        spec.make_auth(Credentials({"api_access_key_id": "me"}, source="x"))


def _base_url(make_gateway: Callable[..., Gateway], **settings: Any) -> str:
    gateway = make_gateway({"api_access_key_id": "me", "api_secret_access_key": "pw", **settings})
    base: str = gateway.driver("zuora").client.base_url  # type: ignore[attr-defined]
    return base


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("us-cloud-2-sandbox", "zconnectsandbox.zuora.com"),
        ("US Cloud 2 Sandbox", "zconnectsandbox.zuora.com"),
        ("us_cloud_1_production", "zconnect.na.zuora.com"),
        ("US API Sandbox", "zconnectsandbox.zuora.com"),
        ("EU", "zconnect.eu.zuora.com"),
        ("eu-central-sandbox", "zconnect-services0002.test.eu.zuora.com"),
        ("APAC", "zconnect-prod05.ap.zuora.com"),
    ],
)
def test_data_center_names_resolve_to_their_host(
    make_gateway: Callable[..., Gateway], name: str, host: str
) -> None:
    assert _base_url(make_gateway, data_center=name) == f"https://{host}/api/rest/v1"


def test_every_table_name_resolves(make_gateway: Callable[..., Gateway]) -> None:
    for name, url in DATA_CENTERS.items():
        assert _base_url(make_gateway, data_center=name.upper()) == url


def test_no_host_setting_means_zuoras_default(make_gateway: Callable[..., Gateway]) -> None:
    assert _base_url(make_gateway) == DATA_CENTERS["us-cloud-2-production"]


def test_base_url_is_taken_as_given(make_gateway: Callable[..., Gateway]) -> None:
    url = "https://zconnect.example.test/api/rest/v1"
    assert _base_url(make_gateway, base_url=url + "/") == url


def test_unknown_data_center_lists_the_valid_names(make_gateway: Callable[..., Gateway]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _base_url(make_gateway, data_center="mars-1")
    message = str(caught.value)
    assert "mars-1" in message
    assert all(name in message for name in DATA_CENTERS)


def test_base_url_and_data_center_together_are_refused(
    make_gateway: Callable[..., Gateway],
) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        _base_url(make_gateway, data_center="eu-sandbox", base_url="https://x.test/api/rest/v1")


def test_data_center_and_keys_from_the_environment(
    make_gateway: Callable[..., Gateway], environ: dict[str, str]
) -> None:
    environ.update(
        ZUORA_API_ACCESS_KEY_ID="me",
        ZUORA_API_SECRET_ACCESS_KEY="pw",
        ZUORA_DATA_CENTER="eu-sandbox",
    )
    gateway = make_gateway()
    assert gateway.driver("zuora").client.base_url == DATA_CENTERS["eu-sandbox"]  # type: ignore[attr-defined]


def test_missing_credentials_name_the_env_vars(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway({"data_center": "eu-sandbox"})
    with pytest.raises(CredentialsError) as caught:
        gateway.search("zuora", "Customer report")
    message = str(caught.value)
    assert "ZUORA_API_ACCESS_KEY_ID" in message
    assert "ZUORA_API_SECRET_ACCESS_KEY" in message


def test_entity_id_and_name_both_in_settings_is_a_configuration_error(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway(
        {
            "api_access_key_id": "me",
            "api_secret_access_key": "pw",
            "entity_id": "a",
            "entity_name": "b",
        }
    )
    with pytest.raises(ConfigurationError, match="entity_id and entity_name"):
        gateway.search("zuora", "x")


def test_bad_lookup_window_setting(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway(
        {"api_access_key_id": "me", "api_secret_access_key": "pw", "create_lookup_seconds": "x"}
    )
    with pytest.raises(ConfigurationError, match="create_lookup_seconds"):
        gateway.driver("zuora")
