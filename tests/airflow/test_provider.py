"""The provider package as Airflow sees it: entry point, connection type, trigger round trip."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import entry_points
from typing import Any

import pytest
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox

from .conftest import ROWS, connection

V1_REPORT = "balance_change_from_activity.itemized.3"
INTERVAL = {"interval_start": 1_700_000_000, "interval_end": 1_700_086_400}


def test_airflow_finds_the_provider_and_its_connection_type(airflow_home: Any) -> None:
    (found,) = [
        e for e in entry_points(group="apache_airflow_provider") if "report_gateway" in e.value
    ]
    info = found.load()()
    assert info["package-name"] == "report-gateway-airflow"
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "report-gateway-airflow" in manager.providers
    hooks = manager.hooks
    assert hooks["report_gateway"] is not None
    assert hooks["report_gateway"].hook_class_name.endswith("ReportGatewayHook")


def test_the_idempotency_key_is_the_task_instance_identity() -> None:
    from report_gateway_airflow.operators import idempotency_key

    key = idempotency_key("dag", "task", "manual__2023", 3)
    assert key == idempotency_key("dag", "task", "manual__2023", 3)
    others = {
        idempotency_key("dag2", "task", "manual__2023", 3),
        idempotency_key("dag", "task2", "manual__2023", 3),
        idempotency_key("dag", "task", "manual__2024", 3),
        idempotency_key("dag", "task", "manual__2023", 4),
    }
    assert key not in others
    assert len(others) == 4
    assert len(key) <= 64


def test_password_fills_the_providers_credential(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from report_gateway_airflow.hooks import ReportGatewayHook

    monkeypatch.setenv("AIRFLOW_CONN_REPORT_GATEWAY_DEFAULT", json.dumps(connection(sandbox)))
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    hook = ReportGatewayHook()
    gateway = hook.get_conn()
    try:
        assert gateway.settings("stripe-v2")["api_key"] == STRIPE_TEST_KEY
        assert gateway.providers()
    finally:
        hook.close()


def test_the_hook_registers_every_credential_with_the_task_log_masker(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Task SDK's masker is what task log files pass through (task process and
    supervisor): a key the hook resolved, under any option name, comes out as ***."""
    from airflow.sdk._shared.secrets_masker import redact
    from report_gateway_airflow.hooks import ReportGatewayHook

    secret = "sk_test_extraOnly0123456789abcdef"
    conn = connection(sandbox)
    del conn["password"]
    conn["extra"]["stripe-v2"]["api_key"] = secret
    monkeypatch.setenv("AIRFLOW_CONN_MASKED", json.dumps(conn))
    assert secret in redact(f"Authorization: Bearer {secret}")  # not known yet
    hook = ReportGatewayHook("masked")
    try:
        hook.get_conn()
    finally:
        hook.close()
    line = redact(f"Authorization: Bearer {secret}; held {[secret]}")
    assert secret not in str(line)
    assert "***" in str(line)


def test_the_trigger_round_trips_and_fires_when_the_run_ends(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serialized as Airflow stores it, rebuilt from the class path, run in an event loop."""
    from airflow.sdk._shared.module_loading import import_string
    from airflow.sdk.serde import deserialize, serialize
    from report_gateway import Scope
    from report_gateway_airflow.hooks import ReportGatewayHook
    from report_gateway_airflow.triggers import ReportRunTrigger

    monkeypatch.setenv("AIRFLOW_CONN_REPORT_GATEWAY_DEFAULT", json.dumps(connection(sandbox)))
    hook = ReportGatewayHook()
    run = hook.get_conn().start("stripe", V1_REPORT, INTERVAL, scope=Scope(account="acct_rt"))
    hook.close()

    trigger = ReportRunTrigger(
        provider="stripe", run_id=run.id, scope={"account": "acct_rt"}, poll_interval=0.1
    )
    classpath, kwargs = trigger.serialize()
    stored = json.loads(json.dumps(serialize(kwargs)))
    rebuilt = import_string(classpath)(**deserialize(stored))
    assert rebuilt.serialize() == (classpath, kwargs)

    async def first_event() -> Any:
        async for event in rebuilt.run():
            return event.payload
        return None

    payload = asyncio.run(first_event())
    assert payload == {"status": "success", "provider": "stripe", "run_id": run.id, "message": ""}


ZUORA_ENV = (
    "ZUORA_CLIENT_ID",
    "ZUORA_CLIENT_SECRET",
    "ZUORA_API_ACCESS_KEY_ID",
    "ZUORA_API_SECRET_ACCESS_KEY",
)


@pytest.mark.parametrize(
    ("table", "filled"),
    [
        ({}, ("client_id", "client_secret")),
        ({"auth": "oauth"}, ("client_id", "client_secret")),
        ({"auth": "password"}, ("api_access_key_id", "api_secret_access_key")),
        ({"api_access_key_id": "zuser"}, ("api_access_key_id", "api_secret_access_key")),
    ],
)
def test_login_and_password_fill_one_zuora_credential_pair(
    monkeypatch: pytest.MonkeyPatch, table: dict[str, str], filled: tuple[str, str]
) -> None:
    """Zuora declares two pairs (OAuth; username/password) and takes one: login and
    password fill the pair the extra picks, the OAuth client by default."""
    from airflow.sdk import Connection
    from report_gateway_airflow.hooks import ReportGatewayHook
    from report_gateway_zuora.plugin import report_gateway_credentials

    for name in ZUORA_ENV:
        monkeypatch.delenv(name, raising=False)
    conn = Connection(
        conn_id="zuora_conn",
        conn_type="report_gateway",
        login="zuser",
        password="zsecret-0123456789",
        extra=json.dumps({"zuora": table}),
    )
    gateway = ReportGatewayHook.build(conn)
    try:
        settings = gateway.settings("zuora")
        assert (settings.get(filled[0]), settings.get(filled[1])) == (
            "zuser",
            "zsecret-0123456789",
        )
        others = {"client_id", "client_secret", "api_access_key_id", "api_secret_access_key"}
        assert not any(settings.get(key) for key in others - set(filled))
        assert "auth" not in settings
        # One whole pair: the plugin's lookup takes it (both pairs or half is an error).
        assert sorted(report_gateway_credentials("zuora", settings)) == sorted(filled)
    finally:
        gateway.close()


def test_an_unknown_zuora_auth_family_is_refused() -> None:
    from airflow.sdk import Connection
    from report_gateway_airflow.hooks import ReportGatewayHook

    conn = Connection(
        conn_id="zuora_conn",
        conn_type="report_gateway",
        password="zsecret",
        extra=json.dumps({"zuora": {"auth": "basic"}}),
    )
    with pytest.raises(ValueError, match="'oauth', 'password'"):
        ReportGatewayHook.build(conn).close()


def test_a_later_retry_reuses_the_run_an_earlier_retry_started(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Try 1's run fails; try 2 starts a fresh run, which is fine, but its worker is lost;
    try 3 replays the key chain and gets try 2's run back instead of starting a third."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowException
    from report_gateway_airflow.operators import ReportRunOperator, idempotency_key
    from report_gateway_sandbox import FaultRule

    monkeypatch.setenv("AIRFLOW_CONN_REPORT_GATEWAY_DEFAULT", json.dumps(connection(sandbox)))
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    sandbox.add_fault(
        FaultRule(kind="fail_run", method="POST", path="/v2/reporting/report_runs", count=1)
    )
    operator = ReportRunOperator(
        task_id="chain",
        provider="stripe-v2",
        report_id="report_itemized_balance_change",
        parameters=INTERVAL,
        output=str(tmp_path / "chain.csv"),
        deferrable=False,
        poll_interval=0.1,
    )

    def attempt(try_number: int) -> dict[str, Any]:
        ti = SimpleNamespace(
            dag_id="d", task_id="chain", run_id="manual__1", map_index=-1, try_number=try_number
        )
        return operator.execute({"ti": ti})  # type: ignore[arg-type]

    with pytest.raises(AirflowException, match="run"):
        attempt(1)
    second = attempt(2)  # its worker "dies" after this: try 3 follows
    third = attempt(3)
    assert third["run_id"] == second["run_id"]
    assert third["rows"] == ROWS
    stats = sandbox.stats()
    assert stats["runs_created"]["stripe-v2"] == 2
    key = idempotency_key("d", "chain", "manual__1", -1)
    posted = [
        e["headers"].get("Idempotency-Key")
        for e in stats["request_log"]
        if e["method"] == "POST" and e["path"].startswith("/v2/")
    ]
    assert posted == [key, key, f"{key}-try2", key, f"{key}-try2"]
