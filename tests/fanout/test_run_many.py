"""Gateway.run_many against the sandbox: one run per scope, bounded, every file verified.

The sandbox counts the runs it creates (``stats()["runs_created"]``) and keeps every v2 run
with its creation time and duration, from which the runs it held active at once follow.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest
from report_gateway import Gateway, Scope
from report_gateway.errors import ProviderError, RunFailedError
from report_gateway.fanout import SCOPE_COLUMN, FanOutProgress, FanOutResult, file_names
from report_gateway_sandbox import (
    STRIPE_TEST_KEY,
    ZUORA_ACCESS_KEY_ID,
    ZUORA_ENTITIES,
    ZUORA_SECRET_ACCESS_KEY,
    FaultRule,
    Sandbox,
)

V2_REPORT = "report_balance_summary"
V2_PARAMS = {"interval_start": "2025-01-01", "interval_end": "2025-02-01"}
V1_REPORT = "balance.summary.1"
V1_PARAMS = {"interval_start": "2025-01-01", "interval_end": "2025-02-01"}
ZUORA_REPORT = "ff8080816293d35b0162bcb3e7780a75"  # Customer report (Summary)
FAST = {"poll_interval": 0.05, "max_interval": 0.2}


def gateway(sb: Sandbox, tmp_path: Path, **extra: Any) -> Gateway:
    settings = {
        "stripe": {"api_key": STRIPE_TEST_KEY, "base_url": sb.stripe_base_url},
        "stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sb.stripe_base_url},
        "zuora": {
            "api_access_key_id": ZUORA_ACCESS_KEY_ID,
            "api_secret_access_key": ZUORA_SECRET_ACCESS_KEY,
            "base_url": sb.zuora_base_url,
        },
    }
    return Gateway(
        settings=settings,
        environ={},
        journal=tmp_path / "journal.sqlite3",
        **extra,
    )


def contexts_argv(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ids: str, output: Path
) -> list[str]:
    """``run stripe-v2 ... --contexts FILE -o OUTPUT`` against the sandbox, its key and a
    journal in ``tmp_path`` set in the environment; ``ids`` is the file's text."""
    listing = tmp_path / "contexts.txt"
    listing.write_text(ids, encoding="utf-8")
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(tmp_path / "j.sqlite3"))
    argv = ["run", "stripe-v2", V2_REPORT, "-p", "interval_start=2025-01-01"]
    argv += ["-p", "interval_end=2025-02-01", "--contexts", str(listing)]
    return [*argv, "-o", str(output), "--base-url", sb.stripe_base_url]


def sandbox_peak_v2(sb: Sandbox) -> int:
    """The most v2 runs the sandbox held running at one moment (its own clock)."""
    runs = list(sb.app.stripe_v2.runs.values())
    edges = sorted(
        [(r.created_at, 1) for r in runs] + [(r.created_at + r.duration, -1) for r in runs]
    )
    active = peak = 0
    for _, step in edges:
        active += step
        peak = max(peak, active)
    return peak


def assert_verified(result: FanOutResult, gw: Gateway) -> None:
    """Every scope has its file, at the size the journal recorded after verifying it."""
    assert gw.journal is not None
    for outcome in result.outcomes:
        assert outcome.state == "done", outcome
        assert outcome.path is not None
        assert outcome.path.stat().st_size == outcome.size
        entry = gw.journal.status_of(outcome.run.provider, outcome.run_id)  # type: ignore[union-attr]
        assert entry is not None
        assert entry.verified


@pytest.mark.slow
def test_200_stripe_v2_contexts_under_a_limit_of_20(make_sandbox, tmp_path: Path) -> None:
    sb = make_sandbox(run_seconds=0.3, result_rows=5, v2_concurrency_limit=20)
    scopes = [Scope(context=f"acct_{i:04d}") for i in range(200)]
    seen: list[FanOutProgress] = []
    with gateway(sb, tmp_path) as gw:
        began = time.monotonic()
        result = gw.run_many(
            "stripe-v2",
            V2_REPORT,
            V2_PARAMS,
            scopes=scopes,
            max_concurrency=20,
            output_dir=tmp_path / "out",
            on_progress=seen.append,
            **FAST,
        )
        wall = time.monotonic() - began
        assert_verified(result, gw)
    assert result.summary() == {
        "total": 200,
        "done": 200,
        "skipped": 0,
        "failed": 0,
        "peak_active": result.peak_active,
    }
    assert 1 <= result.peak_active <= 20
    assert sb.stats()["runs_created"]["stripe-v2"] == 200
    assert sandbox_peak_v2(sb) <= 20
    assert len({o.path for o in result.outcomes}) == 200
    assert max(p.running for p in seen) <= 20
    assert seen[-1].done == 200
    print(f"\n200 v2 contexts: {wall:.1f}s, peak active {result.peak_active}, 200 created")


@pytest.mark.slow
def test_more_workers_than_the_provider_limit_wait_in_line(make_sandbox, tmp_path: Path) -> None:
    """40 workers against a limit of 20: the 429s are absorbed, no run is created twice."""
    sb = make_sandbox(run_seconds=0.3, result_rows=5, v2_concurrency_limit=20)
    scopes = [Scope(context=f"acct_{i:04d}") for i in range(120)]
    with gateway(sb, tmp_path) as gw:
        result = gw.run_many(
            "stripe-v2",
            V2_REPORT,
            V2_PARAMS,
            scopes=scopes,
            max_concurrency=40,
            output_dir=tmp_path / "out",
            **FAST,
        )
        assert_verified(result, gw)
    assert sb.stats()["runs_created"]["stripe-v2"] == 120
    assert sandbox_peak_v2(sb) <= 20


def test_stripe_v1_accounts_combined_with_a_scope_column(make_sandbox, tmp_path: Path) -> None:
    sb = make_sandbox(run_seconds=0.2, result_rows=7)
    scopes = [Scope(account=f"acct_{i:03d}") for i in range(40)]
    with gateway(sb, tmp_path) as gw:
        result = gw.run_many(
            "stripe",
            V1_REPORT,
            V1_PARAMS,
            scopes=scopes,
            max_concurrency=10,
            output_dir=tmp_path / "out",
            combine="all accounts.csv",
            **FAST,
        )
        assert_verified(result, gw)
    assert sb.stats()["runs_created"]["stripe"] == 40
    assert result.combined == tmp_path / "out" / "all accounts.csv"
    with result.combined.open(newline="", encoding="utf-8") as handle:
        combined = list(csv.reader(handle))
    header, rows = combined[0], combined[1:]
    assert header[0] == SCOPE_COLUMN
    expected: list[list[str]] = []
    for outcome in result.outcomes:
        with outcome.path.open(newline="", encoding="utf-8") as handle:  # type: ignore[union-attr]
            own = list(csv.reader(handle))
        assert header[1:] == own[0]
        expected += [[outcome.scope.account, *row] for row in own[1:]]  # type: ignore[list-item]
    assert rows == expected
    assert len(rows) == 40 * 7
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_zuora_entities_and_a_failing_one(make_sandbox, tmp_path: Path) -> None:
    """A scope the provider refuses is collected with its error; the others finish."""
    sb = make_sandbox(run_seconds=0.3, result_rows=6)
    scopes = [Scope(entity_id=eid) for eid in ZUORA_ENTITIES]
    scopes.append(Scope(entity_id="0" * 32))
    with gateway(sb, tmp_path) as gw:
        result = gw.run_many(
            "zuora",
            ZUORA_REPORT,
            {"viewType": "Summary"},
            scopes=scopes,
            output_dir=tmp_path / "out",
            combine="entities.csv",
            **FAST,
        )
    assert [o.state for o in result.outcomes] == ["done", "done", "done", "failed"]
    (failed,) = result.failed
    assert failed.scope == Scope(entity_id="0" * 32)
    assert isinstance(failed.error, ProviderError)
    assert failed.run_id is None
    assert sb.stats()["runs_created"]["zuora"] == 3
    assert result.combined is not None
    with result.combined.open(newline="", encoding="utf-8") as handle:
        labels = [row[SCOPE_COLUMN] for row in csv.DictReader(handle)]
    assert sorted(set(labels)) == sorted(ZUORA_ENTITIES)
    assert len(labels) == 3 * 6


def test_a_failed_run_is_collected_with_its_run_id(make_sandbox, tmp_path: Path) -> None:
    sb = make_sandbox(
        run_seconds=0.2,
        result_rows=3,
        faults=[FaultRule(kind="fail_run", path="/v2/reporting/report_runs", skip=2, count=1)],
    )
    scopes = [Scope(context=f"ctx_{i}") for i in range(5)]
    with gateway(sb, tmp_path) as gw:
        result = gw.run_many(
            "stripe-v2",
            V2_REPORT,
            V2_PARAMS,
            scopes=scopes,
            max_concurrency=1,
            output_dir=tmp_path / "out",
            **FAST,
        )
    (failed,) = result.failed
    assert failed.scope == Scope(context="ctx_2")
    assert isinstance(failed.error, RunFailedError)
    assert failed.run_id is not None
    assert failed.run_id.startswith("reprun_")
    assert len(result.done) == 4
    assert result.summary()["failed"] == 1


def test_a_second_fan_out_skips_what_is_downloaded(make_sandbox, tmp_path: Path) -> None:
    sb = make_sandbox(run_seconds=0.2, result_rows=3)
    scopes = [Scope(context=f"ctx_{i}") for i in range(6)]
    with gateway(sb, tmp_path) as gw:
        first = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o", **FAST
        )
        (tmp_path / "o" / "ctx_3.csv").unlink()  # moved away: a new run, today's data
        second = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o", **FAST
        )
    assert first.ok
    assert [o.state for o in second.outcomes] == ["skipped"] * 3 + ["done"] + ["skipped"] * 2
    assert second.outcomes[3].run_id != first.outcomes[3].run_id
    assert second.outcomes[3].reused_from is None
    assert second.outcomes[0].reused_from is not None
    assert sb.stats()["runs_created"]["stripe-v2"] == 7


def test_file_names_come_from_scopes_made_safe_and_distinct() -> None:
    names = file_names(
        [Scope(entity_name="EU/West"), Scope(entity_name="EU_West"), Scope(), Scope(account="..")]
    )
    assert names == ["EU_West.csv", "EU_West-2.csv", "default.csv", "default-2.csv"]


def test_cli_fans_out_from_a_file_of_contexts(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.2, result_rows=4)
    ids = "# nightly\nctx_a\nctx_b  # the second\n\nctx_c\n"
    argv = [
        *contexts_argv(sb, tmp_path, monkeypatch, ids, tmp_path / "out"),
        "--combine",
        "all.csv",
    ]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["summary"]["done"] == 3
    assert data["summary"]["failed"] == 0
    assert [o["label"] for o in data["outcomes"]] == ["ctx_a", "ctx_b", "ctx_c"]
    assert data["combined"] == str(tmp_path / "out" / "all.csv")
    lines = captured.err.splitlines()
    assert lines[-1] == "0 running, 3 done, 0 failed (0 queued of 3)"
    assert main(argv) == 0  # a second time: every scope skipped, a table
    table = capsys.readouterr().out
    assert "ctx_b  skipped (file of run from " in table
    assert "reprun_" in table
    assert "0 done, 3 skipped" in table
    assert sb.stats()["runs_created"]["stripe-v2"] == 3


def test_a_scope_kind_the_provider_cannot_send_is_refused_before_any_run(
    make_sandbox, tmp_path: Path
) -> None:
    from report_gateway.errors import ScopeError

    sb = make_sandbox(run_seconds=0.1, result_rows=3)
    scopes = [Scope(context="ctx_a"), Scope(account="acct_1")]
    with gateway(sb, tmp_path) as gw, pytest.raises(ScopeError, match="account"):
        gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o", **FAST
        )
    assert sb.stats()["runs_created"].get("stripe-v2", 0) == 0


def test_no_combined_file_when_every_scope_failed(make_sandbox, tmp_path: Path) -> None:
    """A combined file with a header alone would pass for "no rows" in the next step."""
    sb = make_sandbox(
        run_seconds=0.1,
        result_rows=3,
        faults=[FaultRule(kind="fail_run", path="/v2/reporting/report_runs", count=2)],
    )
    scopes = [Scope(context="ctx_a"), Scope(context="ctx_b")]
    with gateway(sb, tmp_path) as gw:
        result = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o",
            combine="all.csv", max_concurrency=1, **FAST,
        )  # fmt: skip
    assert [o.state for o in result.outcomes] == ["failed", "failed"]
    assert result.combined is None
    assert not (tmp_path / "o" / "all.csv").exists()


@pytest.mark.parametrize("existing", [False, True])
def test_cli_fan_out_refuses_a_file_as_its_output_folder(
    make_sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch, existing: bool
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    target = tmp_path / ("existing.txt" if existing else "all.csv")
    if existing:
        target.write_text("keep me\n", encoding="utf-8")
    argv = contexts_argv(sb, tmp_path, monkeypatch, "ctx_a\nctx_b\n", target)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "one file per scope into a folder" in err
    assert "--combine" in err
    assert sb.stats()["runs_created"].get("stripe-v2", 0) == 0
    if existing:
        assert target.read_text(encoding="utf-8") == "keep me\n"
