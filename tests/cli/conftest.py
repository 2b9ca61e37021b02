"""Fixtures for the command line: ``main(argv)`` run in-process, isolated from the real
environment and config file, against the example toy provider or the sandbox."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
from report_gateway.cli import commands, main
from report_gateway.gateway import Gateway

EXAMPLE_SRC = Path(__file__).parents[1] / "plugins" / "report-gateway-example" / "src"

# Variables that would leak the developer's real setup into a test.
_ENV_PREFIXES = ("STRIPE_", "ZUORA_", "REPORT_GATEWAY_", "EXAMPLE_")

EXAMPLE_TOKEN = "tok_example_secret_value"


@attrs.frozen
class Result:
    """What a user sees: the exit code, stdout and stderr of one command."""

    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))


@pytest.fixture(scope="session")
def example_plugin() -> ModuleType:
    """The example plugin module, from the installed distribution or from its source tree."""
    try:
        return importlib.import_module("report_gateway_example.plugin")
    except ImportError:
        sys.path.insert(0, str(EXAMPLE_SRC))
        return importlib.import_module("report_gateway_example.plugin")


def _invoke(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> Result:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    example_plugin: ModuleType,
) -> Iterator[Cli]:
    """``cli("run", "example", ...)`` with only the example plugin loaded.

    The first command's Gateway is reused by the next ones in the same test, so a run
    started by one command can be polled, downloaded or canceled by the next (the toy
    provider keeps its runs in the driver's memory, like a real provider keeps them).
    """
    monkeypatch.setenv("EXAMPLE_TOKEN", EXAMPLE_TOKEN)
    real = commands.open_gateway
    built: list[Gateway] = []

    def open_example(args: Any, **extra: Any) -> Gateway:
        if not built:
            built.append(real(args, plugins=[example_plugin], load_entrypoints=False, **extra))
        return built[0]

    monkeypatch.setattr(commands, "open_gateway", open_example)
    yield lambda *argv: _invoke(capsys, argv)
    for gateway in built:
        gateway.close()


def has_plugin(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


needs_stripe = pytest.mark.skipif(
    not has_plugin("report_gateway_stripe.plugin"), reason="report-gateway-stripe not built yet"
)
needs_zuora = pytest.mark.skipif(
    not has_plugin("report_gateway_zuora.plugin"), reason="report-gateway-zuora not built yet"
)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Any]:
    from report_gateway_sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(run_seconds=0.3, result_rows=40)) as running:
        yield running


@pytest.fixture
def provider_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sandbox: Any
) -> Cli:
    """``main(argv)`` with the installed provider plugins that import, credentials for the
    sandbox in the environment (as a user would export them)."""
    from report_gateway_sandbox import (
        STRIPE_TEST_KEY,
        ZUORA_ACCESS_KEY_ID,
        ZUORA_SECRET_ACCESS_KEY,
    )

    sandbox.reset()
    sandbox.clear_faults()
    loadable = [
        name
        for name, module in (
            ("stripe", "report_gateway_stripe.plugin"),
            ("zuora", "report_gateway_zuora.plugin"),
        )
        if has_plugin(module)
    ]
    monkeypatch.setenv("REPORT_GATEWAY_LOAD_PLUGINS", ",".join(loadable))
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    monkeypatch.setenv("ZUORA_API_ACCESS_KEY_ID", ZUORA_ACCESS_KEY_ID)
    monkeypatch.setenv("ZUORA_API_SECRET_ACCESS_KEY", ZUORA_SECRET_ACCESS_KEY)
    return lambda *argv: _invoke(capsys, argv)
