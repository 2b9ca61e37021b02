"""What a fan-out takes from the journal's earlier runs, and what it starts anew."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_gateway import Scope

from .test_run_many import FAST, V2_PARAMS, V2_REPORT, contexts_argv, gateway


def test_a_file_changed_since_its_download_gets_a_new_run(make_sandbox, tmp_path: Path) -> None:
    sb = make_sandbox(run_seconds=0.1, result_rows=3)
    scopes = [Scope(context="ctx_a")]
    with gateway(sb, tmp_path) as gw:
        first = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o", **FAST
        )
        (tmp_path / "o" / "ctx_a.csv").write_text("edited\n", encoding="utf-8")
        second = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o", **FAST
        )
    assert second.outcomes[0].state == "done"
    assert second.outcomes[0].run_id != first.outcomes[0].run_id
    assert sb.stats()["runs_created"]["stripe-v2"] == 2


def test_a_run_left_unfinished_is_reused_and_shown_so(make_sandbox, tmp_path: Path) -> None:
    sb = make_sandbox(run_seconds=0.1, result_rows=3)
    scope = Scope(context="ctx_a")
    with gateway(sb, tmp_path) as gw:
        run = gw._starts.start(
            "stripe-v2", V2_REPORT, dict(V2_PARAMS), scope, key="k1", reuse=False,
            output=tmp_path / "o" / "ctx_a.csv",
        )[0]  # fmt: skip
        assert run is not None
        result = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=[scope], output_dir=tmp_path / "o", **FAST
        )
    (outcome,) = result.outcomes
    assert outcome.state == "done"
    assert outcome.run_id == run.id
    assert outcome.reused_from is not None
    assert result.as_json()["outcomes"][0]["reused_from"]
    assert sb.stats()["runs_created"]["stripe-v2"] == 1


def test_reuse_false_starts_every_scope_anew(make_sandbox, tmp_path: Path) -> None:
    sb = make_sandbox(run_seconds=0.1, result_rows=3)
    scopes = [Scope(context="ctx_a"), Scope(context="ctx_b")]
    with gateway(sb, tmp_path) as gw:
        gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o", **FAST
        )
        again = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o",
            reuse=False, **FAST,
        )  # fmt: skip
    assert [o.state for o in again.outcomes] == ["done", "done"]
    assert sb.stats()["runs_created"]["stripe-v2"] == 4


def test_cli_no_reuse_and_the_reuse_shown_in_the_table(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    argv = contexts_argv(sb, tmp_path, monkeypatch, "ctx_a\n", tmp_path / "out")
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 0
    assert "skipped (file of run from " in capsys.readouterr().out
    assert main([*argv, "--no-reuse", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["outcomes"][0]["state"] == "done"
    assert data["outcomes"][0]["reused_from"] is None
    assert sb.stats()["runs_created"]["stripe-v2"] == 2


def test_the_next_night_starts_anew_though_the_file_is_still_there(
    make_sandbox, tmp_path: Path
) -> None:
    """A report without dates gives whatever is current: the same command run again after
    the reuse window gets a new run, though yesterday's file is still in the folder."""
    import sqlite3

    sb = make_sandbox(run_seconds=0.1, result_rows=3)
    scopes = [Scope(context="ctx_a")]
    with gateway(sb, tmp_path) as gw:
        first = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o", **FAST
        )
        same_day = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o", **FAST
        )
        db = sqlite3.connect(tmp_path / "journal.sqlite3")
        with db:  # the first run as if started 13 hours ago
            db.execute("UPDATE runs SET created_at = created_at - 13 * 3600")
        db.close()
        next_night = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o", **FAST
        )
    assert same_day.outcomes[0].state == "skipped"
    assert next_night.outcomes[0].state == "done"
    assert next_night.outcomes[0].reused_from is None
    assert next_night.outcomes[0].run_id != first.outcomes[0].run_id
    assert sb.stats()["runs_created"]["stripe-v2"] == 2


@pytest.mark.parametrize("bad", [0, -5, "yes", float("nan")])
def test_a_bad_reuse_value_is_named_before_any_run(make_sandbox, tmp_path: Path, bad) -> None:
    from report_gateway.errors import ConfigurationError

    sb = make_sandbox(run_seconds=0.1, result_rows=3)
    with gateway(sb, tmp_path) as gw, pytest.raises(ConfigurationError, match="reuse"):
        gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=[Scope(context="ctx_a")],
            output_dir=tmp_path / "o", reuse=bad, **FAST,
        )  # fmt: skip
    assert sb.stats()["runs_created"].get("stripe-v2", 0) == 0
