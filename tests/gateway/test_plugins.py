"""Plugins at two levels: a class registered in try/finally, and the installed distribution."""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pluggy
import pytest
from report_gateway import ConfigurationError, Gateway, ReportRun, RunStatus, hookimpl, hookspecs

MakeGateway = Callable[..., Gateway]
PACKAGE_README = Path(__file__).parents[2] / "packages" / "report-gateway" / "README.md"


def hook_names() -> list[str]:
    return [name for name in dir(hookspecs) if name.startswith("report_gateway_")]


def test_every_hook_documented_with_when_and_what() -> None:
    assert set(hook_names()) == {
        "report_gateway_providers",
        "report_gateway_credentials",
        "report_gateway_auth",
        "report_gateway_scope_headers",
        "report_gateway_map_status",
        "report_gateway_run_changed",
    }
    for name in hook_names():
        function = getattr(hookspecs, name)
        doc = inspect.getdoc(function) or ""
        assert "Called" in doc, name
        options = function.report_gateway_spec
        if options.get("firstresult"):
            assert "Stops at first non-None result." in doc, name


def test_every_hook_in_the_plugin_guide() -> None:
    guide = PACKAGE_README.read_text(encoding="utf-8")
    for name in hook_names():
        assert f"`{name}" in guide, name


def test_registered_observer_sees_changes(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    seen: list[tuple[str | None, str]] = []

    class Observer:
        @hookimpl
        def report_gateway_run_changed(self, run: ReportRun, previous: ReportRun | None) -> None:
            seen.append((previous.status.value if previous else None, run.status.value))

    observer = Observer()
    gw.pm.register(observer)
    try:
        run = gw.start("example", "customers")
        gw.wait(run, sleep=lambda s: None)
    finally:
        gw.pm.unregister(observer)
    gw.start("example", "customers")
    assert seen == [(None, "pending"), ("pending", "running"), ("running", "succeeded")]


def test_registered_status_mapping_overrides_the_plugin(make_gateway: MakeGateway) -> None:
    gw = make_gateway()

    class Stricter:
        @hookimpl(tryfirst=True)
        def report_gateway_map_status(self, provider: str, raw_status: str) -> RunStatus | None:
            return RunStatus.RUNNING if raw_status == "queued" else None

    plugin = Stricter()
    gw.pm.register(plugin)
    try:
        assert gw.start("example", "customers").status is RunStatus.RUNNING
    finally:
        gw.pm.unregister(plugin)
    assert gw.start("example", "customers").status is RunStatus.PENDING


def test_misspelled_hook_fails_loudly(make_gateway: MakeGateway) -> None:
    class Typo:
        @hookimpl
        def report_gateway_run_changd(self, run: ReportRun) -> None:
            pass

    with pytest.raises(pluggy.PluginValidationError, match="run_changd"):
        make_gateway(plugins=[Typo()]).providers()


def test_plugins_listing_without_entry_points(make_gateway: MakeGateway) -> None:
    listing = {info.name: info for info in make_gateway().plugins()}
    assert listing["report_gateway.defaults"].distribution == "report-gateway"
    example = listing["report_gateway_example.plugin"]
    assert "report_gateway_providers" in example.hooks
    assert "report_gateway_run_changed" in example.hooks


def test_entry_points_load_lazily_and_can_be_restricted(environ: dict[str, str]) -> None:
    environ["REPORT_GATEWAY_LOAD_PLUGINS"] = ""
    gw = Gateway(environ=environ)
    assert gw.pm.list_name_plugin() == [
        ("report_gateway.defaults", gw.pm.get_plugin("report_gateway.defaults"))
    ]
    assert gw.providers() == []
    assert [info.name for info in gw.plugins()] == ["report_gateway.defaults"]


def test_installed_example_distribution_is_listed(
    environ: dict[str, str], tmp_path: Path, example_plugin: ModuleType
) -> None:
    try:
        dist = importlib.metadata.distribution("report-gateway-example")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("report-gateway-example is not installed (nox -s tests installs it)")
    environ["REPORT_GATEWAY_LOAD_PLUGINS"] = "example"
    gw = Gateway({"example": {"token": "t"}}, environ=environ)
    listing = {info.name: info for info in gw.plugins()}
    assert listing["example"].distribution == "report-gateway-example"
    assert listing["example"].version == dist.version
    assert "report_gateway_credentials" in listing["example"].hooks
    assert "example" in gw.providers()
    run = gw.wait(gw.start("example", "customers"), sleep=lambda s: None)
    assert [row["name"] for row in gw.rows(run)] == ["Ada", "Grace"]


def test_broken_entry_point_names_the_plugin(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = importlib.metadata.EntryPoint(
        name="broken", value="report_gateway_no_such_module.plugin", group="report_gateway"
    )

    def fake_entry_points(**kw: object) -> list[importlib.metadata.EntryPoint]:
        return [broken] if kw.get("group") == "report_gateway" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    with pytest.raises(ConfigurationError, match=r"plugin 'broken'.*failed to load"):
        Gateway(environ=environ).providers()
