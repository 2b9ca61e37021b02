"""``--format parquet|jsonl`` on the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from report_gateway.cli import main
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox

V2 = ("stripe-v2", "report_balance_summary", "-p", "interval_start=2025-01-01T00:00:00Z",
      "-p", "interval_end=2025-02-01T00:00:00Z")  # fmt: skip


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sandbox: Sandbox,
    tmp_path: Path,
) -> Any:  # fmt: skip
    monkeypatch.setenv("REPORT_GATEWAY_LOAD_PLUGINS", "stripe")
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))

    def run(*argv: Any) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in (*argv, "--base-url", sandbox.url)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_run_format_parquet(cli: Any, tmp_path: Path) -> None:
    code, out, err = cli("run", *V2, "-o", tmp_path / "v2.parquet", "--format", "parquet")
    assert code == 0, err
    table = pq.read_table(tmp_path / "v2.parquet")
    assert table.num_rows == 300
    assert str(table.schema.field("net_amount").type) == "double"
    assert "v2.parquet" in out


def test_run_format_jsonl_to_a_folder_and_download(cli: Any, tmp_path: Path) -> None:
    code, out, err = cli("run", *V2, "-o", f"{tmp_path}/", "--format", "jsonl", "--json")
    assert code == 0, err
    saved = json.loads(out)
    path = Path(saved["download"]["path"])
    assert path.suffix == ".jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 300
    code, out, err = cli("download", "stripe-v2", saved["id"], "-o", "-", "--format", "jsonl")
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == rows


def test_resume_command_keeps_the_format(cli: Any, tmp_path: Path) -> None:
    code, out, err = cli(
        "run", *V2, "-o", tmp_path / "v2.parquet", "--format", "parquet", "--no-wait"
    )
    assert code == 0, err
    assert "--format parquet" in out
    assert "-o" in out


def test_parquet_to_stdout_and_raw_are_refused_before_a_run(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    code, _, err = cli("run", *V2, "-o", "-", "--format", "parquet")
    assert code == 2
    assert "not stdout" in err
    code, _, err = cli("run", *V2, "-o", tmp_path / "x", "--format", "jsonl", "--raw")
    assert code == 2
    assert "--raw" in err
    assert not [e for e in sandbox.stats()["request_log"] if e["method"] == "POST"]


def test_missing_extra_is_said_before_a_run(
    cli: Any, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    code, _, err = cli("run", *V2, "-o", tmp_path / "x.parquet", "--format", "parquet")
    assert code != 0
    assert 'pip install "report-gateway[arrow]"' in err
    assert "Traceback" not in err
    assert not [e for e in sandbox.stats()["request_log"] if e["method"] == "POST"]
    assert list(tmp_path.glob("x*")) == []


def test_a_cell_not_of_its_schema_type_points_to_untyped(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typed column holding a value not of its type: the message and the printed command
    name --untyped (the command line's typed=False), and that command works."""
    from report_gateway_stripe.v2 import StripeV2Driver

    monkeypatch.setattr(StripeV2Driver, "result_columns", lambda self, run: {"currency": "integer"})
    target = tmp_path / "v2.parquet"
    code, _, err = cli("run", *V2, "-o", target, "--format", "parquet")
    assert code == 7, err
    assert "--untyped reads every column as text" in err
    assert "typed=False" not in err
    command = err.split("`")[1]
    assert command.startswith("report-gateway download stripe-v2 ")
    assert "--format parquet --untyped" in command
    argv = command.split()[1:]
    argv = argv[: argv.index("--base-url")] if "--base-url" in argv else argv
    code, _, err = cli(*argv)
    assert code == 0, err
    assert pq.read_table(target).schema.field("currency").type == "string"


def test_untyped_writes_text_columns_and_goes_with_parquet_only(cli: Any, tmp_path: Path) -> None:
    code, _, err = cli("run", *V2, "-o", tmp_path / "v2.parquet", "--format", "parquet",
                       "--untyped")  # fmt: skip
    assert code == 0, err
    assert set(map(str, pq.read_table(tmp_path / "v2.parquet").schema.types)) == {"string"}
    code, _, err = cli("run", *V2, "-o", tmp_path / "v2.csv", "--untyped")
    assert code == 2
    assert "--untyped goes with --format parquet" in err


def test_an_output_named_for_another_format_is_refused_before_a_run(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    code, _, err = cli("run", *V2, "-o", tmp_path / "r.csv", "--format", "parquet")
    assert code == 2
    assert "r.csv" in err
    assert "--format parquet" in err
    assert "r.parquet" in err
    code, _, err = cli("run", *V2, "-o", tmp_path / "r.parquet", "--format", "jsonl")
    assert code == 2
    assert not [e for e in sandbox.stats()["request_log"] if e["method"] == "POST"]
    assert list(tmp_path.glob("r.*")) == []
