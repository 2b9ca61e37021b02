"""Exit codes and error lines: one clear line on stderr, a traceback only with --debug."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import EXAMPLE_TOKEN, Cli


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("report-gateway: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_unknown_provider_exits_2_and_names_the_available_ones(cli: Cli) -> None:
    result = cli("templates", "strpie")
    assert result.code == 2
    line = _one_error_line(result.err)
    assert "unknown provider 'strpie'" in line
    assert "available providers: example" in line


def test_unknown_report_exits_2(cli: Cli) -> None:
    result = cli("template", "example", "nope")
    assert result.code == 2
    assert "unknown report 'nope'" in _one_error_line(result.err)


def test_invalid_parameter_exits_2_before_any_run(cli: Cli) -> None:
    result = cli("run", "example", "daily_sales", "-p", "day=yesterday")
    assert result.code == 2
    assert "'day'" in _one_error_line(result.err)
    assert cli("runs", "example").out.strip() == "no runs"


def test_missing_credentials_exit_3(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXAMPLE_TOKEN")
    result = cli("templates", "example")
    assert result.code == 3
    line = _one_error_line(result.err)
    assert "no credentials for provider 'example'" in line
    assert "EXAMPLE_TOKEN" in line


def test_missing_config_file_exits_3(cli: Cli, tmp_path: Path) -> None:
    result = cli("--config", tmp_path / "absent.toml", "templates", "example")
    assert result.code == 3
    assert "does not exist" in _one_error_line(result.err)


def test_failed_run_exits_4_with_the_provider_reason(cli: Cli) -> None:
    result = cli("run", "example", "broken")
    assert result.code == 4
    line = _one_error_line(result.err)
    assert "run exrun_1" in line
    assert "toy failure" in line


def test_canceled_run_download_exits_4(cli: Cli) -> None:
    cli("run", "example", "customers", "--no-wait")
    cli("cancel", "example", "exrun_1")
    result = cli("download", "example", "exrun_1", "-o", "ignored.csv")
    assert result.code == 4
    assert "was canceled" in _one_error_line(result.err)


def test_timeout_exits_5_and_says_how_to_resume(cli: Cli) -> None:
    result = cli("run", "example", "customers", "--set", "polls=100000", "--timeout", "0.3")
    assert result.code == 5
    line = _one_error_line(result.err)
    # The exact command that resumes it, with the settings the run was made with.
    assert "resume with `report-gateway wait example exrun_1 --set polls=100000`" in line


def test_timeout_json_carries_the_run(cli: Cli) -> None:
    result = cli(
        "--json", "run", "example", "customers", "--set", "polls=100000", "--timeout", "0.2"
    )
    assert result.code == 5
    error = json.loads(result.out)["error"]
    assert error["exit_code"] == 5
    assert error["type"] == "WaitTimeoutError"
    assert error["run"]["id"] == "exrun_1"
    assert error["run_id"] == "exrun_1"


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "soon"])
def test_timeout_must_be_positive_seconds(cli: Cli, value: str) -> None:
    result = cli("wait", "example", "exrun_1", f"--timeout={value}")
    assert result.code == 2
    assert "--timeout" in _one_error_line(result.err)


def test_cancel_not_supported_after_finish_exits_2(cli: Cli) -> None:
    cli("run", "example", "customers")
    result = cli("cancel", "example", "exrun_1")
    assert result.code == 2
    assert "already finished" in _one_error_line(result.err)


def test_unknown_run_exits_2(cli: Cli) -> None:
    result = cli("status", "example", "exrun_404")
    assert result.code == 2
    assert "exrun_404" in _one_error_line(result.err)


def test_output_folder_missing_is_refused_before_running(cli: Cli, tmp_path: Path) -> None:
    result = cli("run", "example", "customers", "-o", tmp_path / "no" / "such" / "x.csv")
    assert result.code == 2
    assert "does not exist" in _one_error_line(result.err)
    assert cli("runs", "example").out.strip() == "no runs"


def test_debug_shows_the_traceback(cli: Cli) -> None:
    result = cli("--debug", "run", "example", "broken")
    assert result.code == 4
    assert "Traceback (most recent call last)" in result.err
    assert result.err.rstrip().splitlines()[-1].startswith("report-gateway: error: ")


def test_unexpected_errors_exit_1_with_a_hint(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from report_gateway.cli import commands

    def boom(s: object) -> int:
        raise RuntimeError("kaboom")

    monkeypatch.setitem(commands.COMMANDS, "providers", boom)
    result = cli("providers")
    assert result.code == 1
    assert "unexpected RuntimeError: kaboom (rerun with --debug" in _one_error_line(result.err)


def test_interrupt_exits_130_and_names_the_run(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from report_gateway.gateway import Gateway

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Gateway, "wait", interrupted)
    result = cli("run", "example", "customers")
    assert result.code == 130
    assert "`report-gateway wait example exrun_1`" in result.err
    assert "Traceback" not in result.err


def test_secrets_never_printed(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from report_gateway.cli import commands

    typed = "sk_live_from_the_command_line"

    def leaky(s: object) -> int:
        raise RuntimeError(f"token was {EXAMPLE_TOKEN}, key was {typed}")

    monkeypatch.setitem(commands.COMMANDS, "providers", leaky)
    result = cli("--json", "providers", "--set", f"api_key={typed}")
    shown = result.out + result.err
    assert EXAMPLE_TOKEN not in shown  # from the environment
    assert typed not in shown  # from --set
    assert "token was <redacted>, key was <redacted>" in result.err


def test_warnings_are_one_line_too(cli: Cli) -> None:
    result = cli("templates", "example", "--set", "colour=blue")
    assert result.code == 0
    warning = [line for line in result.err.splitlines() if line]
    assert len(warning) == 1
    assert warning[0].startswith("report-gateway: warning: example: unknown settings ['colour']")


def test_run_may_exist_exits_6_naming_where_to_look(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from report_gateway import RunMayExistError
    from report_gateway.cli import commands

    def ambiguous(s: object) -> int:
        raise RunMayExistError("example", "daily_sales", "connection dropped")

    monkeypatch.setitem(commands.COMMANDS, "providers", ambiguous)
    result = cli("providers")
    assert result.code == 6
    assert "check `report-gateway runs example`" in _one_error_line(result.err)
