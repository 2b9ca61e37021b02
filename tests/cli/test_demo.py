"""``report-gateway demo``: the project's first command, end to end against the sandbox."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from .conftest import Cli, needs_stripe, needs_zuora


@pytest.fixture
def demo_cli(provider_cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    # The demo needs nothing from the environment; make sure it does not use any.
    for name in ("STRIPE_API_KEY", "ZUORA_API_ACCESS_KEY_ID", "ZUORA_API_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.delenv("REPORT_GATEWAY_LOAD_PLUGINS")
    return provider_cli


@needs_stripe
@needs_zuora
def test_demo_runs_three_reports_and_writes_csv_files(demo_cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = demo_cli("demo", "--output-dir", folder, "--rows", "25", "--run-seconds", "0.2")
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert lines[0].split() == [
        "provider",
        "report",
        "run",
        "id",
        "status",
        "rows",
        "bytes",
        "seconds",
    ]
    body = lines[1:4]
    assert [line.split()[0] for line in body] == ["stripe", "stripe-v2", "zuora"]
    assert all(" succeeded " in line for line in body)
    assert "3 of 3 runs succeeded" in result.out
    files = sorted(folder.glob("*.csv"))
    assert len(files) == 3
    for path in files:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert rows[0], f"{path.name} has no header row"
        assert len(rows) > 1, f"{path.name} has no data rows"


@needs_stripe
@needs_zuora
def test_demo_json(demo_cli: Cli, tmp_path: Path) -> None:
    result = demo_cli("--json", "demo", "--output-dir", tmp_path, "--rows", "5")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["ok"] is True
    assert [r["status"] for r in data["runs"]] == ["succeeded"] * 3
    for run in data["runs"]:
        assert run["rows"] == 5
        assert run["bytes"] == Path(run["file"]).stat().st_size


def test_demo_says_which_providers_are_not_installed(
    demo_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORT_GATEWAY_LOAD_PLUGINS", "")  # as if no plugin were installed
    result = demo_cli("demo", "--output-dir", tmp_path / "out")
    assert result.code == 3
    rows = [line.split() for line in result.out.splitlines()[1:4]]
    assert [row[0] for row in rows] == ["stripe", "stripe-v2", "zuora"]
    assert all("not installed" in " ".join(row) for row in rows)
    assert "0 of 3 runs succeeded" in result.out
