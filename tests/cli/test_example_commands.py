"""Every subcommand against the example toy provider, in human and --json form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import EXAMPLE_TOKEN, Cli


def _json(out: str) -> Any:
    return json.loads(out)


def test_providers(cli: Cli) -> None:
    human = cli("providers")
    assert human.code == 0
    assert human.out.splitlines()[0].split() == ["provider", "description"]
    assert "example" in human.out
    assert _json(cli("--json", "providers").out) == [
        {"name": "example", "description": "In-memory toy provider from the example plugin"}
    ]


def test_plugins_lists_name_version_hooks(cli: Cli) -> None:
    human = cli("plugins")
    assert human.code == 0
    assert human.out.splitlines()[0].split() == ["name", "version", "hooks"]
    assert "report_gateway_providers" in human.out
    listed = _json(cli("--json", "plugins").out)
    assert isinstance(listed, list)
    defaults = next(p for p in listed if p["name"] == "report_gateway.defaults")
    assert defaults["version"]
    assert "report_gateway_credentials" in defaults["hooks"]


def test_templates_and_search(cli: Cli) -> None:
    human = cli("templates", "example")
    assert human.code == 0
    assert "daily_sales" in human.out
    assert "Daily sales" in human.out
    listed = _json(cli("--json", "templates", "example").out)
    assert isinstance(listed, list)
    assert {t["id"] for t in listed} == {"daily_sales", "customers", "broken"}
    found = _json(cli("--json", "search", "example", "customer").out)
    assert [t["id"] for t in found] == ["customers"]
    assert cli("search", "example", "no such thing").out.strip() == "no reports found"


def test_template_shows_parameters(cli: Cli) -> None:
    human = cli("template", "example", "daily_sales")
    assert human.code == 0
    lines = human.out.splitlines()
    assert any(line.split()[:3] == ["day", "date", "yes"] for line in lines)
    assert any(line.startswith("currency") and "usd, eur" in line for line in lines)
    data = _json(cli("--json", "template", "example", "daily_sales").out)
    assert isinstance(data, dict)
    params = {p["name"]: p for p in data["parameters"]}
    assert params["currency"]["allowed_values"] == ["usd", "eur"]
    assert params["day"]["required"] is True


def test_run_waits_and_downloads(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "sales.csv"
    result = cli("run", "example", "daily_sales", "-p", "day=2025-01-31", "-o", target)
    assert result.code == 0, result.err
    assert target.read_text().splitlines()[0] == "sale_id,day,amount,currency"
    assert "2025-01-31" in target.read_text()
    assert "succeeded" in result.out
    assert f"wrote {target}" in result.out
    assert result.err == ""  # stderr is not a terminal: no progress output


def test_run_json_reports_the_file(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    result = cli(
        "--json",
        "run",
        "example",
        "daily_sales",
        "-p",
        "day=2025-01-31",
        "-p",
        "currency=eur",
        "-o",
        target,
    )
    assert result.code == 0, result.err
    data = _json(result.out)
    assert isinstance(data, dict)
    assert data["status"] == "succeeded"
    assert data["parameters"] == {"day": "2025-01-31", "currency": "eur"}
    assert data["download"] == {"path": str(target), "bytes": target.stat().st_size}
    assert "url" not in data["result"]


def test_run_to_stdout(cli: Cli) -> None:
    result = cli("run", "example", "customers", "-o", "-")
    assert result.code == 0, result.err
    assert result.out == "id,name\ncus_1,Ada\ncus_2,Grace\n"


def test_run_without_output_says_how_to_download(cli: Cli) -> None:
    result = cli("run", "example", "customers")
    assert result.code == 0
    assert "report-gateway download example exrun_1 -o FILE" in result.out


def test_no_wait_then_status_wait_download(cli: Cli, tmp_path: Path) -> None:
    started = _json(cli("--json", "run", "example", "customers", "--no-wait").out)
    assert isinstance(started, dict)
    run_id = started["id"]
    assert started["status"] == "pending"

    status = cli("status", "example", run_id)
    assert status.code == 0
    assert run_id in status.out
    assert "running (working)" in status.out

    waited = _json(cli("--json", "wait", "example", run_id).out)
    assert isinstance(waited, dict)
    assert waited["status"] == "succeeded"

    target = tmp_path / "c.csv"
    downloaded = cli("download", "example", run_id, "-o", target)
    assert downloaded.code == 0
    assert target.read_text().startswith("id,name\n")


def test_cancel(cli: Cli) -> None:
    run_id = _json(cli("--json", "run", "example", "customers", "--no-wait").out)["id"]
    result = cli("cancel", "example", run_id)
    assert result.code == 0
    assert "canceled (stopped)" in result.out
    data = _json(cli("--json", "status", "example", run_id).out)
    assert data["status"] == "canceled"


def test_last_and_runs(cli: Cli) -> None:
    assert cli("run", "example", "customers").code == 0
    assert cli("run", "example", "daily_sales", "-p", "day=2025-01-01", "--no-wait").code == 0
    last = _json(cli("--json", "last", "example", "customers").out)
    assert last["id"] == "exrun_1"
    assert last["status"] == "succeeded"
    human = cli("runs", "example")
    assert human.out.splitlines()[0].split() == ["run", "id", "report", "status", "created"]
    assert [line.split()[0] for line in human.out.splitlines()[1:]] == ["exrun_2", "exrun_1"]
    limited = _json(cli("--json", "runs", "example", "--limit", "1").out)
    assert [r["id"] for r in limited] == ["exrun_2"]


def test_scope_options_reach_the_provider(cli: Cli) -> None:
    data = _json(cli("--json", "--account", "acct_9", "run", "example", "customers").out)
    assert data["scope"] == {"account": "acct_9"}
    refused = cli("--context", "ctx_1", "templates", "example")
    assert refused.code == 2
    # Said with the options of the command line, not the Python API's Scope(...).
    assert "--context is not supported; only --account is accepted" in refused.err
    assert "Scope(" not in refused.err


def test_set_overrides_provider_settings(cli: Cli) -> None:
    # polls=1: the toy run is done at the first poll.
    result = cli("--json", "run", "example", "customers", "--set", "polls=1")
    assert _json(result.out)["status"] == "succeeded"
    assert EXAMPLE_TOKEN not in result.out + result.err
