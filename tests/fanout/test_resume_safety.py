"""What ``resume`` and reuse may finish, and where: never over a newer entry's file, never
through another endpoint's gateway, never with another job's run (issue 13)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from report_gateway import Gateway, Scope
from report_gateway.errors import ConfigurationError, DownloadError, RunMayExistError
from report_gateway.journal import endpoint_settings
from report_gateway_sandbox import STRIPE_TEST_KEY, ZUORA_ENTITIES

from .test_run_many import FAST, V2_PARAMS, V2_REPORT, ZUORA_REPORT, gateway


def _unfinished(gw: Gateway, scope: Scope, output: Path, **params: Any) -> str:
    """A started run of the v2 job journaled with ``output`` and left as a killed process
    leaves it (never waited on, never downloaded); its run id."""
    run = gw._starts.start(
        "stripe-v2", V2_REPORT, {**V2_PARAMS, **params}, scope, key=str(output) + "-key",
        reuse=False, output=output,
    )[0]  # fmt: skip
    assert run is not None
    return run.id


def test_resume_never_overwrites_a_newer_entry_of_the_job(make_sandbox, tmp_path: Path) -> None:
    """Night 1's run left undownloaded, night 2's fan-out wrote the file: ``resume`` marks
    night 1's entry superseded and leaves night 2's file alone."""
    sb = make_sandbox(run_seconds=0.1, result_rows=3)
    out = tmp_path / "o"
    scope = Scope(context="ctx_a")
    with gateway(sb, tmp_path) as gw:
        old_run = _unfinished(gw, scope, out / "ctx_a.csv")
        night2 = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=[scope], output_dir=out, reuse=False,
            **FAST,
        )  # fmt: skip
        assert night2.ok
        written = (out / "ctx_a.csv").stat()
        # Another job meant for another file, whose file a newer job (other parameters) took.
        _unfinished(gw, Scope(context="ctx_b"), tmp_path / "b.csv")
        gw._starts.start(
            "stripe-v2", V2_REPORT, {**V2_PARAMS, "interval_end": "2025-03-01"},
            Scope(context="ctx_b"), key="newer-b", reuse=False, output=tmp_path / "b.csv",
        )  # fmt: skip
        result = gw.resume(**FAST)
        journal = gw.journal
        assert journal is not None
        entries = journal.entries()
    states = {(o.scope.context, o.state) for o in result.outcomes}
    assert ("ctx_a", "superseded") in states
    assert ("ctx_b", "superseded") in states
    assert result.ok
    after = (out / "ctx_a.csv").stat()
    assert (after.st_ino, after.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    (old,) = [e for e in entries if e.run_id == old_run]
    assert old.state == "abandoned"
    assert old.error is not None
    assert "superseded by the run of" in old.error
    assert [e.state for e in entries if e.scope == scope and e.run_id != old_run] == ["downloaded"]
    (newer_b,) = [e for e in entries if e.key == "newer-b"]
    assert (newer_b.state, newer_b.path) == ("downloaded", str(tmp_path / "b.csv"))


def test_the_cli_resume_table_shows_superseded_and_resumed(
    make_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    journal = tmp_path / "journal.sqlite3"
    with gateway(sb, tmp_path) as gw:
        _unfinished(gw, Scope(context="ctx_old"), tmp_path / "same.csv")
        _unfinished(gw, Scope(context="ctx_new"), tmp_path / "same.csv")
        for n in range(3):
            _unfinished(gw, Scope(context=f"ctx_{n}"), tmp_path / f"{n}.csv")
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(journal))
    assert main(["resume", "--max-concurrency", "1"]) == 0
    text = capsys.readouterr().out
    assert "superseded (run from " in text
    assert "done (resumed run from " in text
    assert "reused run" not in text
    assert "at most 1 runs active" in text
    assert all((tmp_path / f"{n}.csv").exists() for n in range(3))
    assert main(["resume", "--max-concurrency", "0"]) == 2


def test_reuse_is_per_endpoint(make_sandbox, tmp_path: Path) -> None:
    """A job run against another base URL is another job: its own runs, nothing skipped."""
    first, second = make_sandbox(run_seconds=0.1), make_sandbox(run_seconds=0.1)
    scopes = [Scope(context="ctx_a"), Scope(context="ctx_b")]
    with gateway(first, tmp_path) as gw:
        assert gw.run_many("stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes,
                           output_dir=tmp_path / "o", **FAST).ok  # fmt: skip
    with gateway(second, tmp_path) as gw:
        again = gw.run_many(
            "stripe-v2", V2_REPORT, V2_PARAMS, scopes=scopes, output_dir=tmp_path / "o", **FAST
        )
    assert [o.state for o in again.outcomes] == ["done", "done"]
    assert [o.reused_from for o in again.outcomes] == [None, None]
    assert second.stats()["runs_created"]["stripe-v2"] == 2


def test_resume_reaches_each_endpoint_and_never_another(
    make_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Entries of one provider started against two sandboxes: a gateway of one endpoint
    refuses the other's entry (naming it); the CLI finishes both, each at its own."""
    from report_gateway.cli import main

    one, two = make_sandbox(run_seconds=0.1, result_rows=2), make_sandbox(run_seconds=0.1)
    with gateway(one, tmp_path) as gw:
        _unfinished(gw, Scope(context="ctx_1"), tmp_path / "one.csv")
    with gateway(two, tmp_path) as gw:
        _unfinished(gw, Scope(context="ctx_2"), tmp_path / "two.csv")
    with gateway(one, tmp_path) as gw:
        entries = gw.journal.entries(unfinished=True)  # type: ignore[union-attr]
        refused = gw.resume(entries=[e for e in entries if e.scope.context == "ctx_2"], **FAST)
    (outcome,) = refused.outcomes
    assert outcome.state == "failed"
    assert isinstance(outcome.error, ConfigurationError)
    assert two.stripe_base_url in str(outcome.error)
    assert "report-gateway resume" in str(outcome.error)

    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(tmp_path / "journal.sqlite3"))
    assert main(["resume"]) == 0, capsys.readouterr()
    assert (tmp_path / "one.csv").exists()
    assert (tmp_path / "two.csv").exists()


def test_resume_base_url_with_provider_when_several_are_unfinished(
    make_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    with gateway(sb, tmp_path) as gw:
        _unfinished(gw, Scope(context="ctx_1"), tmp_path / "v2.csv")
        journal = gw.journal
        assert journal is not None
        gw.driver("zuora")
        journal.begin(
            "zuora", ZUORA_REPORT, Scope(), {"viewType": "Summary"}, key="z",
            credential=gw.credential_id("zuora"), output=tmp_path / "z.csv",
            endpoint=endpoint_settings(gw, "zuora"),
        )  # fmt: skip
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(tmp_path / "journal.sqlite3"))
    argv = ["--base-url", sb.stripe_base_url, "resume"]
    assert main(argv) == 2
    assert "--provider" in capsys.readouterr().err
    assert main([*argv, "--provider", "stripe-v2"]) == 0, capsys.readouterr()
    assert (tmp_path / "v2.csv").exists()
    assert not (tmp_path / "z.csv").exists()  # not selected: still unfinished
    with gateway(sb, tmp_path) as gw:
        (left,) = gw.journal.entries(unfinished=True)  # type: ignore[union-attr]
    assert left.provider == "zuora"


def test_zuora_lookup_never_adopts_another_jobs_run(make_sandbox, tmp_path: Path) -> None:
    """A password-auth create killed while sending, then another job on the same report and
    entity (other filters) ran: ``resume`` cannot tell the runs apart, so the entry is lost
    (RunMayExistError), not finished with the other job's file."""
    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    scope = Scope(entity_id=next(iter(ZUORA_ENTITIES)))
    with gateway(sb, tmp_path) as gw:
        journal = gw.journal
        assert journal is not None
        gw.driver("zuora")
        killed = journal.begin(
            "zuora", ZUORA_REPORT, scope, {"viewType": "Summary"}, key="killed",
            credential=gw.credential_id("zuora"), output=tmp_path / "a.csv",
            endpoint=endpoint_settings(gw, "zuora"),
        )  # fmt: skip
        journal.record_sending(killed.id)
        other = {
            "viewType": "Summary",
            "filters": [
                {
                    "logicalOperator": "AND",
                    "filterClauses": [
                        {"field": "Account.Currency", "value": "USD", "operator": "contains"}
                    ],
                }
            ],
        }
    with gateway(sb, tmp_path) as gw:  # another process: its driver knows no earlier run
        assert gw.run_many("zuora", ZUORA_REPORT, other, scopes=[scope],
                           output_dir=tmp_path / "b", **FAST).ok  # fmt: skip
    with gateway(sb, tmp_path) as gw:
        result = gw.resume(**FAST)
        lost = gw.journal.get(killed.id)  # type: ignore[union-attr]
    (outcome,) = result.outcomes
    assert outcome.state == "failed"
    assert isinstance(outcome.error, RunMayExistError)
    assert "report-gateway last zuora" in str(outcome.error)
    assert lost is not None
    assert lost.state == "lost"
    assert lost.run_id is None
    assert not (tmp_path / "a.csv").exists()


@pytest.mark.parametrize("provider", ["stripe-v2", "zuora"])
def test_two_processes_starting_the_same_job_make_one_run_each_scope(
    provider: str, make_sandbox, tmp_path: Path
) -> None:
    """Two gateways on one journal file (as two processes) run the same fan-out at once:
    the second takes up the first's entries (same idempotency key; for Zuora with password
    auth, the first's run id once written), so the sandbox makes one run per scope."""
    sb = make_sandbox(run_seconds=0.3, result_rows=2)
    if provider == "zuora":
        report, params = ZUORA_REPORT, {"viewType": "Summary"}
        scopes = [Scope(entity_id=e) for e in ZUORA_ENTITIES]
    else:
        report, params = V2_REPORT, V2_PARAMS
        scopes = [Scope(context=f"ctx_{n}") for n in range(6)]
    barrier = threading.Barrier(2, timeout=60)
    results: list[Any] = []

    def fan_out(folder: str) -> None:
        try:
            with gateway(sb, tmp_path) as gw:
                gw.journal  # noqa: B018  # opened before the race
                barrier.wait()
                results.append(gw.run_many(provider, report, params, scopes=scopes,
                                           output_dir=tmp_path / folder, **FAST))  # fmt: skip
        except BaseException as exc:
            barrier.abort()
            results.append(exc)

    threads = [threading.Thread(target=fan_out, args=(name,), daemon=True) for name in ("p1", "p2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 2
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert all(r.ok for r in results), [o.error for r in results for o in r.failed]
    assert sb.stats()["runs_created"][provider] == len(scopes)


def test_a_single_run_with_output_is_resumable_and_reused(
    make_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """``run -o FILE`` journals FILE: left unfinished (here: --no-wait) it is listed by
    ``journal --unfinished`` and finished by ``resume``; the same command again takes up the
    job's unfinished run, ``--no-reuse`` starts another."""
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(tmp_path / "j.sqlite3"))
    target = tmp_path / "single.csv"
    argv = ["--json", "run", "stripe-v2", V2_REPORT, "-p", "interval_start=2025-01-01"]
    argv += ["-p", "interval_end=2025-02-01", "-o", str(target), "--base-url", sb.stripe_base_url]
    assert main([*argv, "--no-wait"]) == 0
    first = json.loads(capsys.readouterr().out)["id"]
    assert main([*argv, "--no-wait"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == first
    assert sb.stats()["runs_created"]["stripe-v2"] == 1
    assert main(["--json", "journal", "--unfinished"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["runs"]
    assert entry["output"] == str(target)
    assert main(["resume"]) == 0
    assert target.exists()
    capsys.readouterr()
    assert main([*argv, "--no-wait"]) == 0  # downloaded: the file is asked for anew
    second = json.loads(capsys.readouterr().out)["id"]
    assert second != first
    assert main([*argv, "--no-wait", "--no-reuse"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] not in (first, second)
    assert sb.stats()["runs_created"]["stripe-v2"] == 3


def test_resume_keeps_a_file_a_download_was_told_not_to_replace(
    make_sandbox, tmp_path: Path
) -> None:
    """``download(..., overwrite=False)`` refused a file of the user's at the run's output:
    ``resume`` refuses it too, with what to do, and downloads once the file is moved away."""
    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    target = tmp_path / "mine.csv"
    target.write_bytes(b"the user's own file\n")
    with gateway(sb, tmp_path) as gw:
        run = gw.wait(gw.start("stripe-v2", V2_REPORT, V2_PARAMS, output=target), **FAST)
        with pytest.raises(DownloadError, match="exists"):
            gw.download(run, target, overwrite=False)
        refused = gw.resume(**FAST)
        assert target.read_bytes() == b"the user's own file\n"
        (outcome,) = refused.outcomes
        assert not outcome.ok
        assert outcome.run_id == run.id
        assert str(target) in str(outcome.error)
        assert "overwrite=False" in str(outcome.error)
        journal = gw.journal
        assert journal is not None
        (entry,) = journal.entries()
        assert entry.keep_existing
        assert entry.state == "succeeded"
        assert sb.stats()["runs_created"]["stripe-v2"] == 1
        # Moved away by the user: the next resume downloads the run it kept.
        target.rename(tmp_path / "moved.csv")
        done = gw.resume(**FAST)
        assert done.ok
        assert target.stat().st_size > 0
        (entry,) = journal.entries()
        assert (entry.state, entry.path) == ("downloaded", str(target))
    assert sb.stats()["runs_created"]["stripe-v2"] == 1


def test_resume_keeps_a_file_that_appeared_after_a_download_told_not_to_replace(
    make_sandbox, tmp_path: Path
) -> None:
    """The flag is journaled before the transfer: a download with overwrite=False that
    never finished (here: its deadline), then a file at the target from another job, and
    ``resume`` still leaves that file as it is."""
    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    target = tmp_path / "later.csv"
    with gateway(sb, tmp_path) as gw:
        run = gw.wait(gw.start("stripe-v2", V2_REPORT, V2_PARAMS, output=target), **FAST)
        with pytest.raises(DownloadError):
            gw.download(run, target, overwrite=False, timeout=1e-9)
        assert not target.exists()
        target.write_bytes(b"another job's file\n")
        result = gw.resume(**FAST)
    assert not result.ok
    assert target.read_bytes() == b"another job's file\n"


def test_resume_replaces_the_file_of_a_download_that_may_overwrite(
    make_sandbox, tmp_path: Path
) -> None:
    """Without overwrite=False (the default, a nightly job's file from last night),
    ``resume`` writes the run's result over what is at its output."""
    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    target = tmp_path / "nightly.csv"
    with gateway(sb, tmp_path) as gw:
        run = gw.wait(gw.start("stripe-v2", V2_REPORT, V2_PARAMS, output=target), **FAST)
        with pytest.raises(DownloadError):
            gw.download(run, target, timeout=1e-9)
        target.write_bytes(b"last night's file\n")
        result = gw.resume(**FAST)
    assert result.ok
    assert target.read_bytes() != b"last night's file\n"
    assert target.stat().st_size > 0


def test_the_keep_flag_goes_on_this_endpoints_entry_of_a_repeated_run_id(
    make_sandbox, tmp_path: Path
) -> None:
    """Two sandboxes hand out the same run id: ``download(overwrite=False)`` through one
    flags that endpoint's entry, never the other job's (whose file ``resume`` may replace),
    and ``resume`` keeps the file it was told to keep."""
    first, second = make_sandbox(run_seconds=0.1), make_sandbox(run_seconds=0.1)
    mine, theirs = tmp_path / "mine.csv", tmp_path / "theirs.csv"
    with gateway(first, tmp_path) as gw1, gateway(second, tmp_path) as gw2:
        run = gw1.wait(gw1.start("stripe-v2", V2_REPORT, V2_PARAMS, output=mine), **FAST)
        other = gw2.wait(gw2.start("stripe-v2", V2_REPORT, V2_PARAMS, output=theirs), **FAST)
        assert other.id == run.id  # the repeat this test is about
        mine.write_bytes(b"the user's own file\n")
        with pytest.raises(DownloadError, match="exists"):
            gw1.download(run, mine, overwrite=False)
        journal = gw1.journal
        assert journal is not None
        flags = {e.output: e.keep_existing for e in journal.entries()}
        assert flags == {str(mine): True, str(theirs): False}
        result = gw1.resume(entries=[e for e in journal.entries() if e.output == str(mine)])
    assert not result.ok
    assert mine.read_bytes() == b"the user's own file\n"


def test_resume_names_the_kept_file_in_an_output_folder_and_the_entry(
    make_sandbox, tmp_path: Path
) -> None:
    """Output given as a folder: the file ``resume`` refuses to replace is the one in it,
    and the refusal says what to do (never "pass overwrite=True", which resume cannot),
    with the entry's id for ``journal --abandon``."""
    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    folder = tmp_path / "out"
    folder.mkdir()
    with gateway(sb, tmp_path) as gw:
        run = gw.wait(gw.start("stripe-v2", V2_REPORT, V2_PARAMS, output=folder), **FAST)
        with pytest.raises(DownloadError):
            gw.download(run, folder, overwrite=False, timeout=1e-9)
        kept = folder / f"{run.id}.csv"
        kept.write_bytes(b"another job's file\n")
        result = gw.resume(**FAST)
        journal = gw.journal
        assert journal is not None
        (entry,) = journal.entries()
    (outcome,) = result.outcomes
    message = str(outcome.error)
    assert str(kept) in message
    assert "move that file away" in message
    assert f"journal --abandon {entry.id}" in message
    assert "pass overwrite=True" not in message
    assert kept.read_bytes() == b"another job's file\n"


def test_the_cli_resume_of_a_kept_file_gives_the_way_out_not_a_rerun(
    make_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """``report-gateway resume`` refusing a kept file: the table says why, the file is not
    called stale, and stderr does not suggest running again (which would refuse again, or,
    for ``run -o``, replace the file)."""
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(tmp_path / "journal.sqlite3"))
    target = tmp_path / "mine.csv"
    target.write_bytes(b"the user's own file\n")
    with gateway(sb, tmp_path) as gw:
        run = gw.wait(gw.start("stripe-v2", V2_REPORT, V2_PARAMS, output=target), **FAST)
        with pytest.raises(DownloadError):
            gw.download(run, target, overwrite=False)
    capsys.readouterr()
    code = main(["resume"])
    out, err = capsys.readouterr()
    assert code == 7
    assert "move that file away" in out
    assert "stale" not in out
    assert "re-run" not in err
    assert target.read_bytes() == b"the user's own file\n"
