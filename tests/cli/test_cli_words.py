"""Issue 15 §1: errors on the command line name options and commands, never Python calls;
Zuora reports run by name; base URLs and plugin names checked with a way forward."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Cli, needs_stripe, needs_zuora

PYTHON_WORDS = ("settings={", "search(", "Scope(", "gw.", "template(", "last_completed(")


def _error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("report-gateway: error: ")
    assert not any(word in line for word in PYTHON_WORDS), line
    return line


@needs_zuora
def test_zuora_templates_points_at_the_search_command(provider_cli: Cli, sandbox: Any) -> None:
    result = provider_cli("templates", "zuora", "--base-url", sandbox.zuora_base_url)
    assert result.code == 2
    assert '`report-gateway search zuora "part of the report name"`' in _error(result.err)


@needs_zuora
def test_zuora_runs_points_at_the_last_command(provider_cli: Cli, sandbox: Any) -> None:
    result = provider_cli("runs", "zuora", "--base-url", sandbox.zuora_base_url)
    assert result.code == 2
    assert "`report-gateway last zuora REPORT`" in _error(result.err)


@needs_stripe
def test_stripe_v2_templates_lists_known_ids_and_the_set_option(
    provider_cli: Cli, sandbox: Any
) -> None:
    result = provider_cli("templates", "stripe-v2", "--base-url", sandbox.stripe_base_url)
    assert result.code == 2
    line = _error(result.err)
    assert "--set reports=" in line
    assert "`report-gateway template stripe-v2 REPORT`" in line
    assert "report_balance_summary, report_itemized_balance_change" in line


@needs_stripe
def test_stripe_v2_one_bad_report_id_is_a_warning(provider_cli: Cli, sandbox: Any) -> None:
    result = provider_cli(
        "--json", "templates", "stripe-v2", "--base-url", sandbox.stripe_base_url,
        "--set", "reports=report_balance_summary,report_nope",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert [t["id"] for t in json.loads(result.out)] == ["report_balance_summary"]
    assert result.err.startswith("report-gateway: warning: stripe-v2: unknown report 'report_nope'")


def test_scope_errors_name_the_options(cli: Cli) -> None:
    result = cli("--entity-id", "e1", "templates", "example")
    assert result.code == 2
    assert "--entity-id is not supported; only --account is accepted" in _error(result.err)


def test_timeout_names_the_wait_command(cli: Cli) -> None:
    result = cli("run", "example", "customers", "--set", "polls=100000", "--timeout", "0.2")
    assert result.code == 5
    assert "resume with `report-gateway wait example exrun_1" in _error(result.err)


# -- Zuora reports by name ------------------------------------------------------------------


@needs_zuora
def test_zuora_report_runs_by_its_exact_name(
    provider_cli: Cli, sandbox: Any, tmp_path: Any
) -> None:
    target = tmp_path / "customers.csv"
    result = provider_cli(
        "--json", "run", "zuora", "customer report", "-p", "viewType=Summary", "-o", target,
        "--base-url", sandbox.zuora_base_url,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert json.loads(result.out)["report_id"] == "ff8080816293d35b0162bcb3e7780a75"
    assert target.read_text().startswith("Account: Currency,")


@needs_zuora
def test_zuora_unknown_name_points_at_search(provider_cli: Cli, sandbox: Any) -> None:
    result = provider_cli(
        "template", "zuora", "No such report", "--base-url", sandbox.zuora_base_url
    )
    assert result.code == 2
    assert "find reports by name with `report-gateway search zuora 'No such report'`" in (
        _error(result.err)
    )


def test_an_ambiguous_name_lists_the_matches(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from report_gateway.gateway import Gateway
    from report_gateway.models import ReportTemplate

    twins = [
        ReportTemplate(provider="example", id=f"rep_{n}", name="Twin report", parameters={})
        for n in (1, 2)
    ]
    monkeypatch.setattr(Gateway, "search", lambda self, *a, **k: twins)
    result = cli("template", "example", "Twin report")
    assert result.code == 2
    line = _error(result.err)
    assert "2 reports are named 'Twin report': rep_1 (Twin report); rep_2 (Twin report)" in line


# -- base URLs ------------------------------------------------------------------------------


def test_a_base_url_without_scheme_is_a_usage_error(cli: Cli) -> None:
    result = cli("templates", "example", "--base-url", "127.0.0.1:8080")
    assert result.code == 2
    assert "--base-url 127.0.0.1:8080: expected a URL starting with https://" in _error(result.err)
    assert "warning" not in result.err.lower()


@needs_zuora
@pytest.mark.parametrize(
    "argv",
    [
        ("search", "zuora", "Customer"),
        ("run", "zuora", "Customer", "-p", "viewType=Summary"),
        ("last", "zuora", "Customer"),
    ],
)
def test_a_zuora_base_url_without_the_api_prefix_gets_a_hint(
    provider_cli: Cli, sandbox: Any, argv: tuple[str, ...]
) -> None:
    """Every command's 404 names the prefix the credentials in use can call: the password
    pair (exported by the fixture) lives on the zconnect family, never /reporting/..."""
    root = sandbox.url.rstrip("/")
    result = provider_cli(*argv, "--base-url", root)
    assert result.code != 0
    line = _error(result.err)
    assert f"--base-url {root} has no API prefix" in line
    assert f"use the zconnect endpoint {root}/api/rest/v1" in line
    assert "/reporting/api/rest/v1" not in line
    assert "find reports by name" not in line


@needs_zuora
def test_the_password_pair_on_the_rest_prefix_is_told_to_use_zconnect(
    provider_cli: Cli, sandbox: Any
) -> None:
    root = sandbox.url.rstrip("/")
    result = provider_cli(
        "run", "zuora", "Customer", "-p", "viewType=Summary",
        "--base-url", f"{root}/reporting/api/rest/v1",
    )  # fmt: skip
    line = _error(result.err)
    assert "HTTP 401" in line
    assert "takes only OAuth" in line
    assert f"needs the zconnect endpoint {root}/api/rest/v1" in line


# -- plugins --------------------------------------------------------------------------------


def test_load_plugins_naming_nothing_installed_lists_the_installed(
    provider_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORT_GATEWAY_LOAD_PLUGINS", "strpie")
    result = provider_cli("providers")
    assert result.code == 3
    line = _error(result.err)
    assert "REPORT_GATEWAY_LOAD_PLUGINS (or the load_plugins option) names strpie" in line
    assert "installed plugins: " in line
    assert "stripe" in line.rsplit("installed plugins: ")[1]


# -- messages a new user met (issue: confusing CLI messages) --------------------------------


@needs_zuora
def test_missing_credentials_name_options_not_python(
    provider_cli: Cli, sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZUORA_API_ACCESS_KEY_ID")
    monkeypatch.delenv("ZUORA_API_SECRET_ACCESS_KEY")
    line = _error(provider_cli("search", "zuora", "Customer", "--base-url", sandbox.url).err)
    assert "settings[" not in line
    assert "--set client_id=..." in line
    assert "env ZUORA_CLIENT_ID" in line


@needs_zuora
def test_entity_name_under_oauth_names_the_options(
    provider_cli: Cli, sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZUORA_API_ACCESS_KEY_ID")
    monkeypatch.delenv("ZUORA_API_SECRET_ACCESS_KEY")
    result = provider_cli(
        "search", "zuora", "Customer", "--base-url", sandbox.url, "--entity-name", "EU",
        "--set", "client_id=5a4db0c5-0000-4000-8000-5a4db0c50001",
        "--set", "client_secret=sandbox-client-secret",
    )  # fmt: skip
    line = _error(result.err)
    assert "--entity-name cannot be used with OAuth" in line
    assert "use --entity-id instead" in line


@needs_zuora
def test_both_credential_pairs_say_where_each_came_from(provider_cli: Cli, sandbox: Any) -> None:
    result = provider_cli(
        "search", "zuora", "Customer", "--base-url", sandbox.zuora_base_url,
        "--set", "client_id=a", "--set", "client_secret=b",
    )  # fmt: skip
    line = _error(result.err)
    assert "both credential pairs are set: client_id and client_secret" in line
    assert "(OAuth, REST hosts) from --set, and api_access_key_id" in line
    env = "env ZUORA_API_ACCESS_KEY_ID, env ZUORA_API_SECRET_ACCESS_KEY"
    assert f"from {env}; keep one pair, not both" in line


@needs_zuora
def test_both_entity_settings_name_the_source_once(provider_cli: Cli, sandbox: Any) -> None:
    result = provider_cli(
        "search", "zuora", "Customer", "--base-url", sandbox.zuora_base_url,
        "--set", "entity_id=a", "--set", "entity_name=b",
    )  # fmt: skip
    line = _error(result.err)
    assert line.endswith("zuora: entity_id and entity_name are both set (in --set); keep one")


@needs_zuora
def test_a_wrong_view_type_says_the_one_that_fits(provider_cli: Cli, sandbox: Any) -> None:
    url = sandbox.zuora_base_url
    report = provider_cli("search", "zuora", "Customer report", "--base-url", url)
    report_id = report.out.split("\n")[1].split()[0]
    result = provider_cli(
        "run", "zuora", report_id, "-p", "viewType=Detail", "--base-url", sandbox.zuora_base_url
    )
    line = _error(result.err)
    assert line.endswith(
        "parameter 'viewType': the report is a Summary report, so viewType must be Summary"
    )
    assert "allowed" not in line


@needs_stripe
def test_fan_out_rows_speak_cli_without_exception_names(
    provider_cli: Cli, sandbox: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(tmp_path / "j.sqlite3"))
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("acct_1\n", encoding="utf-8")
    result = provider_cli(
        "run", "stripe-v2", "report_balance_summary", "-p", "interval_start=2025-01-01",
        "-p", "interval_end=2025-02-01", "--accounts", str(accounts),
        "-o", str(tmp_path / "out"), "--base-url", sandbox.stripe_base_url,
    )  # fmt: skip
    # Refused before any run (one message, not a row per scope), in the CLI's words.
    assert result.code == 2
    assert "--account is not supported; only --context is accepted" in result.err
    assert "Error:" not in result.err
    assert not any(word in result.err for word in PYTHON_WORDS), result.err
    assert sandbox.stats()["runs_created"].get("stripe-v2", 0) == 0
