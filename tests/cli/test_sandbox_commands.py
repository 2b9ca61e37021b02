"""The command line against the sandbox with the real provider plugins (as users run it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import Cli, needs_stripe, needs_zuora

CUSTOMER_REPORT = "ff8080816293d35b0162bcb3e7780a75"


def _zuora(sandbox: Any) -> list[str]:
    return ["--base-url", sandbox.zuora_base_url]


def _stripe(sandbox: Any) -> list[str]:
    # --base-url alone: result files are fetched from the same host (files_base_url follows).
    return ["--base-url", sandbox.stripe_base_url]


@needs_zuora
def test_zuora_search_then_run(provider_cli: Cli, sandbox: Any, tmp_path: Path) -> None:
    found = provider_cli("--json", "search", "zuora", "Customer report", *_zuora(sandbox))
    assert found.code == 0, found.err
    report = json.loads(found.out)[0]
    assert report["name"] == "Customer report"

    target = tmp_path / "customers.csv"
    result = provider_cli(
        "run", "zuora", report["id"], "-p", "viewType=Summary", "-o", target, *_zuora(sandbox)
    )
    assert result.code == 0, result.err
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("Account: Currency,")
    assert len(lines) == 41  # header + the sandbox's 40 rows, converted from UTF-16 TSV
    assert "succeeded (COMPLETED)" in result.out


@needs_zuora
def test_zuora_wrong_view_type_is_a_usage_error(provider_cli: Cli, sandbox: Any) -> None:
    result = provider_cli(
        "run", "zuora", CUSTOMER_REPORT, "-p", "viewType=Sideways", *_zuora(sandbox)
    )
    assert result.code == 2
    assert "viewType" in result.err
    assert len(result.err.strip().splitlines()) == 1


@needs_zuora
def test_zuora_bad_credentials_exit_3(provider_cli: Cli, sandbox: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("ZUORA_API_SECRET_ACCESS_KEY", "not-the-password")
    result = provider_cli("search", "zuora", "Customer", *_zuora(sandbox))
    assert result.code == 3
    assert "not-the-password" not in result.err
    assert result.err.startswith("report-gateway: error: ")


@needs_zuora
def test_zuora_failed_run_exits_4(provider_cli: Cli, sandbox: Any) -> None:
    from report_gateway_sandbox import FaultRule

    sandbox.add_fault(FaultRule(kind="fail_run", path="*/reports/*/reportrun", count=1))
    result = provider_cli(
        "run", "zuora", CUSTOMER_REPORT, "-p", "viewType=Summary", *_zuora(sandbox)
    )
    assert result.code == 4, result.err
    assert "failed" in result.err


@needs_zuora
def test_zuora_no_wait_status_wait_last(provider_cli: Cli, sandbox: Any) -> None:
    started = provider_cli(
        "--json",
        "run",
        "zuora",
        CUSTOMER_REPORT,
        "-p",
        "viewType=Summary",
        "--no-wait",
        *_zuora(sandbox),
    )
    assert started.code == 0, started.err
    run_id = json.loads(started.out)["id"]
    status = provider_cli("--json", "status", "zuora", run_id, *_zuora(sandbox))
    assert json.loads(status.out)["id"] == run_id
    waited = provider_cli("--json", "wait", "zuora", run_id, *_zuora(sandbox))
    assert json.loads(waited.out)["status"] == "succeeded"
    last = provider_cli("--json", "last", "zuora", CUSTOMER_REPORT, *_zuora(sandbox))
    assert json.loads(last.out)["id"] == run_id


@needs_stripe
def test_stripe_run_with_iso_dates(provider_cli: Cli, sandbox: Any, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    result = provider_cli(
        "run",
        "stripe",
        "balance.summary.1",
        "-p",
        "interval_start=2025-01-01",
        "-p",
        "interval_end=2025-02-01",
        "-o",
        target,
        *_stripe(sandbox),
    )
    assert result.code == 0, result.err
    assert target.read_text().splitlines()[0]
    assert len(target.read_text().splitlines()) > 1


@needs_stripe
def test_stripe_base_url_outranks_a_files_host_from_the_config_file(
    provider_cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    # The help promises --base-url moves the downloads too, unless --set files_base_url says
    # otherwise: a files host from the config file (here unreachable) must not win.
    config = tmp_path / "config.toml"
    config.write_text('[profiles.default.stripe]\nfiles_base_url = "http://127.0.0.1:9"\n')
    target = tmp_path / "out.csv"
    result = provider_cli(
        "run",
        "stripe",
        "balance.summary.1",
        "-p",
        "interval_start=2025-01-01",
        "-p",
        "interval_end=2025-02-01",
        "-o",
        target,
        "--config",
        config,
        *_stripe(sandbox),
    )
    assert result.code == 0, result.err
    assert len(target.read_text().splitlines()) > 1


@needs_stripe
def test_stripe_bad_key_exits_3(provider_cli: Cli, sandbox: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_live_definitely_not_accepted")
    result = provider_cli("templates", "stripe", *_stripe(sandbox))
    assert result.code == 3
    assert "sk_live_definitely_not_accepted" not in result.err


@needs_stripe
def test_stripe_v2_columns_list(provider_cli: Cli, sandbox: Any, tmp_path: Path) -> None:
    target = tmp_path / "v2.csv"
    result = provider_cli(
        "run",
        "stripe-v2",
        "report_itemized_balance_change",
        "-p",
        "interval_start=2025-01-01T00:00:00Z",
        "-p",
        "interval_end=2025-01-08T00:00:00Z",
        "-p",
        "columns=balance_transaction_id,net",
        "-o",
        target,
        "--base-url",
        sandbox.stripe_base_url,
    )
    assert result.code == 0, result.err
    assert target.read_text().splitlines()[0] == "balance_transaction_id,net"
