"""``report-gateway demo``: the project's first command, end to end against the sandbox."""

from __future__ import annotations

import csv
import json
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

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


# A third-party distribution, found through its entry point like any installed plugin: it
# announces the example plugin's toy provider (in memory, so the sandbox's URL goes unused)
# with a demo; its status words travel on the spec it re-announces.
THIRD_PARTY_PLUGIN = """
import attrs
from report_gateway import hookimpl
from report_gateway.provider import DemoSpec
from report_gateway_example import plugin as example


@hookimpl
def report_gateway_providers():
    demo = DemoSpec(
        report="daily_sales",
        parameters={"day": "2024-05-01"},
        settings={"token": "tok_demo", "polls": 1},
    )
    return [attrs.evolve(spec, demo=demo) for spec in example.report_gateway_providers()]
"""


def _install_third_party(site: Path) -> None:
    info = site / "example_demo-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: example-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[report_gateway]\nexample-demo = example_demo\n")
    (site / "example_demo.py").write_text(THIRD_PARTY_PLUGIN)


@needs_stripe
@needs_zuora
def test_demo_runs_a_third_party_provider_that_declares_a_demo(
    demo_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, example_plugin: ModuleType
) -> None:
    _install_third_party(tmp_path / "site")
    monkeypatch.syspath_prepend(tmp_path / "site")
    # The example distribution itself (when installed) announces the same provider name.
    monkeypatch.setenv("REPORT_GATEWAY_LOAD_PLUGINS", "stripe,zuora,example-demo")
    folder = tmp_path / "out"
    result = demo_cli("--json", "demo", "--output-dir", folder, "--rows", "5")
    assert result.code == 0, result.out + result.err
    runs = json.loads(result.out)["runs"]
    assert [r["provider"] for r in runs] == ["stripe", "stripe-v2", "zuora", "example"]
    assert [r["status"] for r in runs] == ["succeeded"] * 4
    toy = runs[3]
    assert toy["report"] == "daily_sales"
    assert Path(toy["file"]) == folder / "example-daily_sales.csv"
    assert toy["rows"] == _data_rows(Path(toy["file"])) > 0


def test_demo_skips_providers_that_declare_no_demo(
    demo_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, example_plugin: ModuleType
) -> None:
    # The example plugin as shipped declares no demo: it is loaded, and left out of the table.
    if not any(ep.name == "example" for ep in entry_points(group="report_gateway")):
        pytest.skip("the example plugin is not installed")
    monkeypatch.setenv("REPORT_GATEWAY_LOAD_PLUGINS", "example")
    result = demo_cli("demo", "--output-dir", tmp_path / "out")
    assert result.code == 3
    rows = [line.split() for line in result.out.splitlines()[1:]]
    assert [row[0] for row in rows[:3]] == ["stripe", "stripe-v2", "zuora"]
    assert not any(row and row[0] == "example" for row in rows)
    assert "0 of 3 runs succeeded" in result.out


def _data_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as fh:
        return len(list(csv.reader(fh))) - 1


@needs_zuora
def test_demo_honours_the_profiles_plugin_allow_list(demo_cli: Cli, tmp_path: Path) -> None:
    """The demo finds plugins the gateway's way: the profile's load_plugins counts."""
    config = tmp_path / "config-home" / "report-gateway" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[profiles.default.gateway]\nload_plugins = ["zuora"]\n', encoding="utf-8")
    result = demo_cli("demo", "--output-dir", tmp_path / "out", "--rows", "5")
    assert result.code == 3
    rows = {line.split()[0]: line for line in result.out.splitlines()[1:4]}
    assert "not installed" in rows["stripe"]
    assert "not installed" in rows["stripe-v2"]
    assert " succeeded " in rows["zuora"]
    assert "pip install report-gateway-stripe" in result.out


@needs_stripe
@needs_zuora
def test_demo_runs_stay_out_of_the_run_journal(
    demo_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's sandbox runs are throwaway: neither the default journal nor one the
    environment names gets them (a later ``resume`` would chase a gone sandbox)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(tmp_path / "named.sqlite3"))
    result = demo_cli("demo", "--output-dir", tmp_path / "demo", "--rows", "2")
    assert result.code == 0, result.err
    assert not (tmp_path / "named.sqlite3").exists()
    assert not list((tmp_path / "data").rglob("journal.sqlite3"))
