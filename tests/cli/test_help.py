"""``--help``: what it promises (exit codes, parameter syntax) and that it starts fast."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from .conftest import Cli


def test_help_lists_every_exit_code(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0
    assert "exit codes:" in result.out
    for code in ("0", "1", "2", "3", "4", "5", "6", "7", "130"):
        assert f"\n  {code} " in result.out
    assert "report-gateway wait PROVIDER RUN_ID" in result.out


def test_help_lists_every_subcommand(cli: Cli) -> None:
    out = cli("--help").out
    for name in (
        "providers",
        "plugins",
        "templates",
        "template",
        "search",
        "run",
        "status",
        "wait",
        "download",
        "cancel",
        "last",
        "runs",
        "demo",
        "listen",
    ):
        assert f"\n    {name} " in out


def test_run_help_documents_parameters_and_lists(cli: Cli) -> None:
    out = cli("run", "--help").out
    assert "-p NAME=A,B" in out
    assert "-p NAME:=JSON" in out
    assert "ISO" in out
    assert "exit codes:" in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["run", "example"],
        ["runs", "example", "--limit", "many"],
        ["download", "example", "exrun_1"],
    ],
)
def test_usage_errors_exit_2(cli: Cli, argv: list[str]) -> None:
    result = cli(*argv)
    assert result.code == 2
    assert "report-gateway: error:" in result.err
    assert "Traceback" not in result.err


def test_global_options_also_after_the_subcommand(cli: Cli) -> None:
    before = cli("--json", "providers")
    after = cli("providers", "--json")
    assert json.loads(before.out) == json.loads(after.out)


def test_help_does_not_import_the_http_or_plugin_stack() -> None:
    script = (
        "import sys\n"
        "from report_gateway.cli import main\n"
        "try:\n"
        "    code = main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))\n"
        "print('CODE', code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    lines = dict(
        line.split(" ", 1)
        for line in done.stdout.splitlines()
        if line.startswith(("MODULES", "CODE"))
    )
    modules = set(lines["MODULES"].split())
    assert lines["CODE"] == "0"
    for heavy in ("urllib3", "pluggy", "cattrs", "attrs", "report_gateway.gateway"):
        assert heavy not in modules, f"--help imported {heavy}"


def _subcommands() -> dict[str, Any]:
    import argparse

    from report_gateway.cli.parser import build_parser

    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_subcommand_help_shows_its_own_options_first_and_global_ones_compactly(
    cli: Cli,
) -> None:
    out = cli("download", "--help").out
    own = out.index("-o FILE, --output FILE")
    compact = out.index("global options (before or after the command")
    assert own < out.index("example:") < compact
    # The global options are two lines, not a described block each.
    assert "  --json  --debug  --profile NAME" in out[compact:]
    assert "print machine-readable JSON" not in out
    assert "--json" not in out.split("\n\n", 1)[0]  # nor in the usage line
    # ... and still work after the subcommand.
    assert cli("providers", "--json").code == 0


def test_every_positional_has_a_description_and_every_command_an_example() -> None:
    for name, sub in _subcommands().items():
        for action in sub._actions:
            if not action.option_strings:
                assert action.help, f"{name} {action.metavar} has no description"
        assert (sub.epilog or "").startswith("example"), f"{name} has no example"
        assert f"report-gateway {name}" in (sub.epilog or "")


@pytest.mark.parametrize("command", ["cancel", "runs", "last", "templates"])
def test_help_says_which_providers_support_a_command(cli: Cli, command: str) -> None:
    for argv in (("--help",), (command, "--help")):
        out = cli(*argv).out
        table = out[out.index("what each provider supports:") :]
        row = next(line for line in table.splitlines() if line.split()[0] == command)
        assert "yes" in row
        assert "no" in row


def test_wait_takes_the_output_options(cli: Cli) -> None:
    out = cli("wait", "--help").out
    for option in ("-o FILE, --output FILE", "--unzip", "--raw", "--timeout S"):
        assert option in out
