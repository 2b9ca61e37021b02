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
