"""A fan-out's edges: its output folder and combined name checked before any run, files of
failed scopes from an earlier run named as stale, and the id files it reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_gateway import Scope
from report_gateway.errors import ConfigurationError
from report_gateway_sandbox import FaultRule

from .test_run_many import FAST, V2_PARAMS, V2_REPORT, contexts_argv, gateway


def created(sb: object) -> int:
    return int(sb.stats()["runs_created"].get("stripe-v2", 0))  # type: ignore[attr-defined]


# -- the output folder (item 8) ------------------------------------------------------------


@pytest.mark.parametrize("folder", ["/proc/self", "/proc/self/new-folder"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_run(
    make_sandbox, tmp_path: Path, folder: str
) -> None:
    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    with gateway(sb, tmp_path) as gw, pytest.raises(ConfigurationError, match=folder):
        gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=[Scope(context="ctx_a")],
            output_dir=folder, **FAST,
        )  # fmt: skip
    assert created(sb) == 0


def test_cli_an_unwritable_output_folder_is_a_usage_error_naming_it(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    argv = contexts_argv(sb, tmp_path, monkeypatch, "ctx_a\nctx_b\n", Path("/proc/self"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "output folder /proc/self cannot be written" in err
    assert created(sb) == 0


def test_cli_failed_downloads_say_how_to_finish(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=50)
    sb.add_fault(FaultRule(kind="truncate_body", path="/_files/v2/*", after_bytes=20))
    argv = contexts_argv(sb, tmp_path, monkeypatch, "ctx_a\n", tmp_path / "out")
    assert main(argv) == 7
    err = capsys.readouterr().err
    assert "re-run the same command (it takes up their runs) or `report-gateway resume`" in err
    sb.clear_faults()
    assert main(argv) == 0  # the same command finishes it, with the same run
    assert created(sb) == 1


# -- the combined file's name (item 11) ----------------------------------------------------


@pytest.mark.parametrize("name", ["ctx_a.csv", "CTX_A.csv", "ctx/a.csv"])
def test_a_combined_name_equal_to_a_scope_file_is_refused_before_any_run(
    make_sandbox, tmp_path: Path, name: str
) -> None:
    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    scopes = [Scope(context="ctx_a"), Scope(context="ctx_b")]
    with gateway(sb, tmp_path) as gw, pytest.raises(ConfigurationError, match="scope's own"):
        gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o",
            combine=name, **FAST,
        )  # fmt: skip
    assert created(sb) == 0


def test_cli_a_combined_name_equal_to_a_scope_file_is_a_usage_error(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    argv = contexts_argv(sb, tmp_path, monkeypatch, "ctx_a\nctx_b\n", tmp_path / "o")
    assert main([*argv, "--combine", "ctx_b.csv"]) == 2
    assert "ctx_b.csv" in capsys.readouterr().err
    assert created(sb) == 0


# -- stale files (item 7) ------------------------------------------------------------------


def test_a_failed_scope_leaves_its_earlier_file_and_says_it_is_stale(
    make_sandbox, tmp_path: Path
) -> None:
    """The earlier file is the user's: kept, never deleted, but named as stale; the
    combined file of the scopes that succeeded says which ones it lacks."""
    sb = make_sandbox(run_seconds=0.1, result_rows=3)
    scopes = [Scope(context="ctx_a"), Scope(context="ctx_b")]
    out = tmp_path / "o"
    run = {"scopes": scopes, "output_dir": out, "combine": "all.csv", "max_concurrency": 1}
    with gateway(sb, tmp_path) as gw:
        first = gw.run_many("stripe-v2", V2_REPORT, V2_PARAMS, **run, **FAST)  # type: ignore[arg-type]
        assert first.ok
        assert first.combined_lacks == ()
        yesterday = (out / "ctx_b.csv").read_bytes()
        sb.add_fault(FaultRule(kind="fail_run", path="/v2/reporting/report_runs", skip=1, count=1))
        second = gw.run_many(
            "stripe-v2",
            V2_REPORT,
            V2_PARAMS,
            reuse=False,
            **run,
            **FAST,  # type: ignore[arg-type]
        )
    assert [o.state for o in second.outcomes] == ["done", "failed"]
    failed = second.outcomes[1]
    assert failed.stale == out / "ctx_b.csv"
    assert failed.stale_from is not None
    assert (out / "ctx_b.csv").read_bytes() == yesterday
    assert second.outcomes[0].stale is None
    assert second.combined == out / "all.csv"
    assert second.combined_lacks == ("ctx_b",)
    data = second.as_json()
    assert data["combined_lacks"] == ["ctx_b"]
    assert data["outcomes"][1]["stale"]["path"] == str(out / "ctx_b.csv")
    assert data["outcomes"][0]["stale"] is None


def test_every_scope_failed_leaves_the_earlier_combined_file_and_says_so(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=3)
    out = tmp_path / "o"
    argv = contexts_argv(sb, tmp_path, monkeypatch, "ctx_a\nctx_b\n", out)
    argv += ["--combine", "all.csv", "--max-concurrency", "1"]
    assert main(argv) == 0
    before = (out / "all.csv").read_bytes()
    capsys.readouterr()
    sb.add_fault(FaultRule(kind="fail_run", path="/v2/reporting/report_runs", count=2))
    assert main([*argv, "--no-reuse"]) == 4
    table = capsys.readouterr().out
    assert "failed; stale file from " in table
    assert "left in place" in table
    assert "not combined: every scope failed; all.csv from " in table
    assert "left unchanged" in table
    assert (out / "all.csv").read_bytes() == before
    sb.add_fault(FaultRule(kind="fail_run", path="/v2/reporting/report_runs", count=2))
    assert main([*argv, "--no-reuse", "--json"]) == 4
    data = json.loads(capsys.readouterr().out)
    assert data["combined"] is None
    assert data["combined_stale"]["path"] == str(out / "all.csv")


def test_cli_a_partial_combined_file_is_marked_in_the_table(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(
        run_seconds=0.1,
        result_rows=3,
        faults=[FaultRule(kind="fail_run", path="/v2/reporting/report_runs", skip=1, count=1)],
    )
    argv = contexts_argv(sb, tmp_path, monkeypatch, "ctx_a\nctx_b\n", tmp_path / "o")
    assert main([*argv, "--combine", "all.csv", "--max-concurrency", "1"]) == 4
    assert "(PARTIAL: lacks ctx_b, which failed)" in capsys.readouterr().out


# -- the ids file and options (nits) -------------------------------------------------------


def test_cli_an_ids_file_that_is_not_utf8_is_a_usage_error_naming_it(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    argv = contexts_argv(sb, tmp_path, monkeypatch, "", tmp_path / "o")
    listing = tmp_path / "contexts.txt"
    listing.write_bytes("ctx_a\nctx_\xe9\n".encode("latin-1"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{listing} is not UTF-8" in err
    assert "unexpected" not in err
    assert created(sb) == 0


@pytest.mark.parametrize(
    ("text", "line"), [("ctx_a\nctx_b, ctx_c\n", 2), ("# list\n\nctx_a ctx_b\n", 3)]
)
def test_cli_an_ids_line_holding_two_ids_is_a_usage_error_naming_the_line(
    make_sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch,
    text: str,
    line: int,
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    argv = contexts_argv(sb, tmp_path, monkeypatch, text, tmp_path / "o")
    assert main(argv) == 2
    assert f"contexts.txt line {line}: " in capsys.readouterr().err
    assert created(sb) == 0


def test_cli_max_concurrency_zero_is_a_usage_error(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    argv = contexts_argv(sb, tmp_path, monkeypatch, "ctx_a\n", tmp_path / "o")
    assert main([*argv, "--max-concurrency", "0"]) == 2
    assert "--max-concurrency: must be at least 1" in capsys.readouterr().err
    assert created(sb) == 0


def test_cli_a_parameter_no_context_takes_fails_once_up_front_naming_contexts(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    argv = contexts_argv(sb, tmp_path, monkeypatch, "ctx_a\nctx_b\nctx_c\n", tmp_path / "o")
    argv += ["-p", "organization_report_granularity=concatenated_report"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("organization_report_granularity") == 1
    assert "run it once without --contexts" in err
    assert "without --context " not in err
    assert created(sb) == 0


def test_cli_an_ids_file_with_a_byte_order_mark_reads_the_first_id_clean(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    argv = contexts_argv(sb, tmp_path, monkeypatch, "\ufeffctx_a\n", tmp_path / "o")
    assert main([*argv, "--json"]) == 0
    assert [o["label"] for o in json.loads(capsys.readouterr().out)["outcomes"]] == ["ctx_a"]


# -- a FIFO or device node where a file goes (review 12: -o /dev/null as root) -------------


def test_a_fifo_where_a_scopes_file_goes_is_refused_before_any_run(
    make_sandbox, tmp_path: Path
) -> None:
    import os
    import stat

    from report_gateway.fanout import file_names

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    scopes = [Scope(context="ctx_a"), Scope(context="ctx_b")]
    out = tmp_path / "out"
    out.mkdir()
    node = out / file_names(scopes)[1]
    os.mkfifo(node)
    with gateway(sb, tmp_path) as gw, pytest.raises(ConfigurationError, match="is a FIFO"):
        gw.run_many("stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=out, **FAST)
    assert created(sb) == 0
    assert stat.S_ISFIFO(os.lstat(node).st_mode)


def test_a_fifo_as_the_combined_file_is_refused_before_any_run(
    make_sandbox, tmp_path: Path
) -> None:
    import os

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "all.csv")
    with (
        gateway(sb, tmp_path) as gw,
        pytest.raises(ConfigurationError, match=r"all\.csv is a FIFO"),
    ):
        gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=[Scope(context="ctx_a")],
            output_dir=out, combine="all.csv", **FAST,
        )  # fmt: skip
    assert created(sb) == 0


def test_start_with_output_a_node_is_refused_before_the_create(
    make_sandbox, tmp_path: Path
) -> None:
    import os
    import stat

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    node = tmp_path / "null"
    if os.geteuid() == 0:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
        kind = "a character device"
    else:
        os.mkfifo(node)
        kind = "a FIFO"
    with gateway(sb, tmp_path) as gw, pytest.raises(ConfigurationError, match=f"is {kind}"):
        gw.start("stripe-v2", V2_REPORT, V2_PARAMS, scope=Scope(context="ctx_a"), output=node)
    assert created(sb) == 0


def test_cli_fan_out_with_a_fifo_where_a_file_goes_is_a_usage_error(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    import os

    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    out = tmp_path / "out"
    out.mkdir()
    argv = contexts_argv(sb, tmp_path, monkeypatch, "ctx_a\n", out)
    os.mkfifo(out / "all.csv")
    assert main([*argv, "--combine", "all.csv"]) == 2
    assert "all.csv is a FIFO (named pipe), not a file; refusing to replace it" in (
        capsys.readouterr().err
    )
    assert created(sb) == 0
