"""Issue 15 §1: after any mistake or accident the user is left holding the command that
finishes the job (run id, -o target and all), never a lost run or a Python traceback."""

from __future__ import annotations

import errno
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cli, needs_stripe

V1_PARAMS = ["-p", "interval_start=2025-01-01", "-p", "interval_end=2025-02-01"]


def _stripe(sandbox: Any) -> list[str]:
    return ["--base-url", sandbox.stripe_base_url]


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _quoted_command(line: str) -> list[str]:
    """The command between the last pair of backticks, split as a shell would."""
    command = line.rsplit("`", 2)[-2]
    parts = shlex.split(command)
    assert parts[0] == "report-gateway"
    return parts[1:]


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills while the result is written (after the up-front checks passed)."""
    from report_gateway import download

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download, "_copy", no_space)


@needs_stripe
def test_unwritable_output_folder_is_refused_before_the_run(
    provider_cli: Cli, sandbox: Any
) -> None:
    # /sys refuses new files even to root: a stand-in for permissions or a read-only mount.
    result = provider_cli(
        "run", "stripe", "balance.summary.1", *V1_PARAMS, "-o", "/sys/out.csv", *_stripe(sandbox)
    )
    assert result.code == 2
    assert "cannot write in folder /sys" in _error_line(result.err)
    runs = provider_cli("runs", "stripe", *_stripe(sandbox))
    assert runs.out.strip() == "no runs"


@needs_stripe
def test_download_failure_after_the_run_exits_7_with_the_command_that_finishes(
    provider_cli: Cli, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.csv"
    with monkeypatch.context() as patch:
        _full_disk(patch)
        result = provider_cli(
            "run", "stripe", "balance.summary.1", *V1_PARAMS, "-o", target, *_stripe(sandbox)
        )
    assert result.code == 7
    line = _error_line(result.err)
    assert str(target) in line
    assert "No space left on device" in line
    assert "succeeded: get its result with `report-gateway download stripe frr_" in line
    assert not target.exists()
    # The printed command, run as printed, gets the file.
    again = provider_cli(*_quoted_command(line))
    assert again.code == 0, again.err
    assert len(target.read_text().splitlines()) > 1


@needs_stripe
def test_download_failure_json_carries_the_command(
    provider_cli: Cli, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.csv"
    _full_disk(monkeypatch)
    result = provider_cli(
        "--json", "run", "stripe", "balance.summary.1", *V1_PARAMS, "-o", target,
        *_stripe(sandbox),
    )  # fmt: skip
    assert result.code == 7
    error = json.loads(result.out)["error"]
    assert error["exit_code"] == 7
    assert error["type"] == "DownloadError"
    run_id = error["run"]["id"]
    assert error["resume"] == (
        f"report-gateway download stripe {run_id} -o {target} --base-url {sandbox.stripe_base_url}"
    )
    assert f"`{error['resume']}`" in result.err  # the same command for people


@needs_stripe
def test_ctrl_c_during_the_wait_prints_wait_with_the_output(
    provider_cli: Cli, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from report_gateway.gateway import Gateway

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    target = tmp_path / "out.csv"
    with monkeypatch.context() as patch:
        patch.setattr(Gateway, "wait", interrupted)
        result = provider_cli(
            "run", "stripe", "balance.summary.1", *V1_PARAMS, "-o", target, *_stripe(sandbox)
        )
    assert result.code == 130
    line = _error_line(result.err)
    assert "resume with `report-gateway wait stripe frr_" in line
    command = _quoted_command(line)
    assert command[command.index("-o") + 1] == str(target)
    resumed = provider_cli(*command)
    assert resumed.code == 0, resumed.err
    assert f"wrote {target}" in resumed.out
    assert len(target.read_text().splitlines()) > 1


@needs_stripe
def test_ctrl_c_during_the_download_prints_the_download_command(
    provider_cli: Cli, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from report_gateway.gateway import Gateway

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    target = tmp_path / "out.csv"
    with monkeypatch.context() as patch:
        patch.setattr(Gateway, "download", interrupted)
        result = provider_cli(
            "run", "stripe", "balance.summary.1", *V1_PARAMS, "-o", target, *_stripe(sandbox)
        )
    assert result.code == 130
    line = _error_line(result.err)
    assert line.startswith("report-gateway: interrupted; stripe run frr_")
    assert "get its result with `report-gateway download stripe frr_" in line
    assert provider_cli(*_quoted_command(line)).code == 0
    assert target.exists()


@needs_stripe
def test_timeout_then_the_printed_wait_gets_the_file(
    provider_cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    sandbox.configure(run_seconds=2.0)
    target = tmp_path / "out.csv"
    result = provider_cli(
        "run", "stripe", "balance.summary.1", *V1_PARAMS, "-o", target, "--timeout", "0.2",
        *_stripe(sandbox),
    )  # fmt: skip
    assert result.code == 5
    line = _error_line(result.err)
    command = _quoted_command(line)
    assert command[:2] == ["wait", "stripe"]
    assert "-o" in command
    resumed = provider_cli(*command)
    assert resumed.code == 0, resumed.err
    assert len(target.read_text().splitlines()) > 1


@needs_stripe
def test_download_of_an_unfinished_run_says_wait_in_cli_words(
    provider_cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    sandbox.configure(run_seconds=30.0)
    started = provider_cli(
        "--json", "run", "stripe", "balance.summary.1", *V1_PARAMS, "--no-wait",
        *_stripe(sandbox),
    )  # fmt: skip
    run_id = json.loads(started.out)["id"]
    target = tmp_path / "x.csv"
    result = provider_cli("download", "stripe", run_id, "-o", target, *_stripe(sandbox))
    assert result.code == 7
    line = _error_line(result.err)
    assert f"`report-gateway wait stripe {run_id} -o {target} --base-url" in line
    assert "gw." not in line


# -- -o edge cases --------------------------------------------------------------------------


def test_missing_folder_is_exit_2_in_run_wait_and_download(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "x.csv"
    assert cli("run", "example", "customers").code == 0
    for argv in (
        ("run", "example", "customers", "-o", missing),
        ("wait", "example", "exrun_1", "-o", missing),
        ("download", "example", "exrun_1", "-o", missing),
    ):
        result = cli(*argv)
        assert result.code == 2, argv
        assert f"folder {missing.parent} does not exist" in _error_line(result.err)


def test_trailing_slash_means_a_folder(cli: Cli, tmp_path: Path) -> None:
    missing = f"{tmp_path / 'results'}/"
    refused = cli("run", "example", "customers", "-o", missing)
    assert refused.code == 2
    assert "a trailing / names a folder" in _error_line(refused.err)
    assert not (tmp_path / "results").exists()  # not written as a file named "results"
    (tmp_path / "results").mkdir()
    saved = cli("--json", "run", "example", "customers", "-o", missing)
    assert saved.code == 0, saved.err
    path = Path(json.loads(saved.out)["download"]["path"])
    assert path.parent == tmp_path / "results"
    assert path.is_file()


def test_an_existing_file_is_replaced_and_the_output_says_so(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    result = cli("run", "example", "customers", "-o", target)
    assert result.code == 0, result.err
    assert f"replaced the existing file {target}" in result.out
    assert target.read_text() != "old\n"
    fresh = cli("--json", "download", "example", "exrun_1", "-o", tmp_path / "new.csv")
    assert "replaced" not in json.loads(fresh.out)["download"]


@needs_stripe
def test_a_zip_saved_without_unzip_is_named_zip(
    provider_cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    result = provider_cli(
        "run", "stripe-v2", "report_itemized_balance_change",
        "-p", "interval_start=2025-01-01T00:00:00Z", "-p", "interval_end=2025-01-08T00:00:00Z",
        "--set", "compress_file=true", "-o", tmp_path / "v2.csv", *_stripe(sandbox),
    )  # fmt: skip
    assert result.code == 0, result.err
    assert not (tmp_path / "v2.csv").exists()
    assert (tmp_path / "v2.zip").read_bytes()[:2] == b"PK"
    assert f"saved as {tmp_path / 'v2.zip'} (--unzip saves its CSV)" in result.out
