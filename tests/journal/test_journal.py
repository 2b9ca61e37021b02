"""The run journal through the Gateway: what is written when, reuse, and turning it off."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from report_gateway import Gateway, RunStatus, Scope
from report_gateway.journal import Journal, parameters_hash
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox

REPORT = "report_balance_summary"
PARAMS = {"interval_start": "2025-01-01", "interval_end": "2025-02-01"}


def gateway(sb: Sandbox, **extra: object) -> Gateway:
    settings = {"stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sb.stripe_base_url}}
    return Gateway(settings=settings, environ={}, **extra)  # type: ignore[arg-type]


def test_a_start_is_journaled_then_followed_to_its_file(make_sandbox, tmp_path: Path) -> None:
    sb = make_sandbox(run_seconds=0.2, result_rows=3)
    with gateway(sb, journal=tmp_path / "j.sqlite3") as gw:
        run = gw.start("stripe-v2", REPORT, PARAMS, scope=Scope(context="ctx_1"))
        assert gw.journal is not None
        entry = gw.journal.status_of("stripe-v2", run.id)
        assert entry is not None
        assert entry.state == "running"
        assert entry.scope == Scope(context="ctx_1")
        assert entry.parameters == PARAMS
        assert entry.key  # the idempotency key the create was sent with
        done = gw.wait(run, poll_interval=0.05)
        assert gw.journal.status_of("stripe-v2", run.id).state == "succeeded"  # type: ignore[union-attr]
        path = gw.download(done, tmp_path / "r.csv")
        entry = gw.journal.status_of("stripe-v2", run.id)
    assert entry is not None
    assert entry.state == "downloaded"
    assert entry.size == path.stat().st_size
    assert entry.verified


def test_reuse_returns_the_journaled_run(make_sandbox, tmp_path: Path) -> None:
    sb = make_sandbox(run_seconds=0.5, result_rows=3)
    with gateway(sb, journal=tmp_path / "j.sqlite3") as gw:
        first = gw.start("stripe-v2", REPORT, PARAMS)
    with gateway(sb, journal=tmp_path / "j.sqlite3") as gw:  # another process, later
        again = gw.start("stripe-v2", REPORT, dict(reversed(PARAMS.items())), reuse=True)
        other = gw.start("stripe-v2", REPORT, {**PARAMS, "interval_end": "2025-03-01"}, reuse=True)
        fresh = gw.start("stripe-v2", REPORT, PARAMS)
    assert again.id == first.id
    assert other.id != first.id
    assert fresh.id != first.id
    assert sb.stats()["runs_created"]["stripe-v2"] == 3


def test_a_new_entry_is_the_entry_a_read_gives_back(tmp_path: Path) -> None:
    """``claim`` builds its new entry without reading it back: a resume in another process
    reads it, and an idempotent create sent again must carry the very same parameters."""
    for case, (sending, window) in enumerate(((False, None), (True, None), (False, 60.0))):
        journal = Journal(tmp_path / f"j{case}.sqlite3")
        entry, new = journal.claim(
            "stripe-v2", REPORT, Scope(context="ctx_1"), {"b": [1, 2], "a": "x", "c": None},
            key=f"k-{sending}-{window}", credential="cred", output=tmp_path / "r.csv",
            endpoint={"base_url": "http://127.0.0.1:9"}, window=window, sending=sending,
        )  # fmt: skip
        assert new
        assert entry.state == ("sending" if sending else "journaled")
        assert Journal(tmp_path / f"j{case}.sqlite3").get(entry.id) == entry
        assert list(entry.parameters) == ["a", "b", "c"]


def test_a_status_from_elsewhere_is_read_between_polls(tmp_path: Path) -> None:
    """The hook a webhook listener in another process uses, and a wait reads."""
    journal = Journal(tmp_path / "j.sqlite3")
    entry = journal.begin("stripe-v2", REPORT, Scope(), PARAMS, key="k1")
    journal.record_sending(entry.id)
    assert journal.record_status("stripe-v2", "reprun_x", RunStatus.SUCCEEDED) == 0
    other = Journal(tmp_path / "j.sqlite3")  # another connection, as another process has
    from report_gateway.models import ReportRun

    run = ReportRun(
        provider="stripe-v2", id="reprun_x", report_id=REPORT, status=RunStatus.RUNNING,
        raw_status="running",
    )  # fmt: skip
    other.record_run(entry.id, run)
    assert other.record_status("stripe-v2", "reprun_x", "succeeded", "succeeded") == 1
    seen = journal.status_of("stripe-v2", "reprun_x")
    assert seen is not None
    assert seen.state == "succeeded"
    assert seen.raw_status == "succeeded"
    mode = sqlite3.connect(tmp_path / "j.sqlite3").execute("PRAGMA journal_mode").fetchone()
    assert mode == ("wal",)


@pytest.mark.parametrize("off", [None, ""])
def test_journal_none_writes_nothing(make_sandbox, tmp_path: Path, off: str | None) -> None:
    sb = make_sandbox(run_seconds=0.1)
    with gateway(sb, journal=off) as gw:
        assert gw.journal is None
        gw.start("stripe-v2", REPORT, PARAMS)


def test_the_environment_names_or_turns_off_the_journal(tmp_path: Path) -> None:
    named = Gateway(environ={"REPORT_GATEWAY_JOURNAL": str(tmp_path / "env.sqlite3")})
    assert named.journal is not None
    assert named.journal.path == tmp_path / "env.sqlite3"
    assert Gateway(environ={"REPORT_GATEWAY_JOURNAL": ""}).journal is None


def test_the_default_journal_is_in_the_user_data_folder() -> None:
    import platformdirs

    with Gateway(environ={}) as gw:
        assert gw.journal is not None
        assert gw.journal.path.parent == platformdirs.user_data_path("report-gateway", False)


def test_cli_journal_lists_runs(
    make_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1)
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(tmp_path / "j.sqlite3"))
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    with Gateway(settings={"stripe-v2": {"base_url": sb.stripe_base_url}}) as gw:
        run = gw.start("stripe-v2", REPORT, PARAMS, scope=Scope(context="ctx_9"))
    assert main(["journal", "--since", "1h"]) == 0
    listing = capsys.readouterr().out
    assert run.id in listing
    assert "ctx_9" in listing
    assert main(["--json", "journal", "--since", "2000-01-01"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["runs"]
    assert entry["run_id"] == run.id
    assert STRIPE_TEST_KEY not in json.dumps(entry)
    assert main(["journal", "--since", "yesterday-ish"]) == 2


def test_a_finished_run_is_not_taken_back_by_an_older_poll(tmp_path: Path) -> None:
    """A listener in another process wrote "succeeded"; a poll answered just before that
    and written after it says "running": the provider never restarts a run, so it stays."""
    from report_gateway.models import ReportRun

    journal = Journal(tmp_path / "j.sqlite3")
    entry = journal.begin("stripe-v2", REPORT, Scope(), PARAMS, key="k1")
    run = ReportRun(
        provider="stripe-v2", id="reprun_y", report_id=REPORT, status=RunStatus.RUNNING,
        raw_status="running",
    )  # fmt: skip
    journal.record_run(entry.id, run)
    assert journal.ended_at("stripe-v2", "reprun_y") is None
    assert journal.record_status("stripe-v2", "reprun_y", RunStatus.SUCCEEDED, "succeeded") == 1
    ended = journal.ended_at("stripe-v2", "reprun_y")
    assert ended is not None
    assert journal.record_status("stripe-v2", "reprun_y", RunStatus.RUNNING, "running") == 0
    assert journal.status_of("stripe-v2", "reprun_y").state == "succeeded"  # type: ignore[union-attr]
    assert journal.record_status("stripe-v2", "reprun_y", RunStatus.FAILED, "failed") == 1
    assert journal.ended_at("stripe-v2", "reprun_y") is not None
    assert journal.ended_at("stripe-v2", "reprun_unknown") is None
    journal.close()
    assert journal.ended_at("stripe-v2", "reprun_y") is None  # unreadable: the wait polls on


@pytest.mark.parametrize(("oauth", "idempotent"), [(True, True), (False, False)])
def test_zuora_creates_are_idempotent_only_under_oauth(
    make_sandbox, oauth: bool, idempotent: bool
) -> None:
    """What the journal's lost-create resolution asks: send again with the same key
    (OAuth: Zuora honours Idempotency-Key) or look for the run (the password pair)."""
    from report_gateway_sandbox import (
        ZUORA_ACCESS_KEY_ID,
        ZUORA_CLIENT_ID,
        ZUORA_CLIENT_SECRET,
        ZUORA_SECRET_ACCESS_KEY,
    )

    sb = make_sandbox()
    settings = (
        {"client_id": ZUORA_CLIENT_ID, "client_secret": ZUORA_CLIENT_SECRET, "base_url": sb.url}
        if oauth
        else {
            "api_access_key_id": ZUORA_ACCESS_KEY_ID,
            "api_secret_access_key": ZUORA_SECRET_ACCESS_KEY,
            "base_url": sb.zuora_base_url,
        }
    )
    with Gateway(settings={"zuora": settings}, environ={}, journal=None) as gw:
        assert gw.driver("zuora").idempotent_create is idempotent  # type: ignore[attr-defined]


def test_an_update_by_run_id_reaches_only_that_job(tmp_path: Path) -> None:
    """Run ids repeat (a sandbox's after a restart): an older job's entry keeps its file."""
    from report_gateway.models import ReportRun

    journal = Journal(tmp_path / "j.sqlite3")
    run = ReportRun(provider="stripe-v2", report_id=REPORT, id="reprun_1",
                    status=RunStatus.RUNNING, raw_status="running")  # fmt: skip
    old = journal.begin("stripe-v2", REPORT, Scope(context="a"), PARAMS, key="k0")
    journal.record_run(old.id, run)
    journal.record_download("stripe-v2", "reprun_1", tmp_path / "old.csv", 5, entry_id=old.id)
    other = journal.begin("stripe-v2", REPORT, Scope(context="b"), PARAMS, key="k1")
    journal.record_run(other.id, run)
    new = journal.begin("stripe-v2", REPORT, Scope(context="a"), PARAMS, key="k2")
    journal.record_run(new.id, run)
    assert journal.record_status("stripe-v2", "reprun_1", "succeeded", scope=Scope(context="a"))
    assert journal.record_download("stripe-v2", "reprun_1", tmp_path / "new.csv", 7) == 1
    assert journal.record_status("stripe-v2", "reprun_1", RunStatus.FAILED, entry_id=other.id) == 1
    got = {e.key: e for e in journal.entries()}
    assert (got["k0"].path, got["k0"].size) == (str(tmp_path / "old.csv"), 5)
    assert (got["k2"].state, got["k2"].size) == ("downloaded", 7)
    assert got["k1"].state == "failed"
    journal.close()


def test_resume_finds_a_run_at_the_endpoint_it_was_started_on(
    make_sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The journal keeps base_url: ``resume`` with no --base-url reaches the sandbox, and
    ``--base-url`` is accepted with resume when the unfinished runs are of one provider."""
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1, result_rows=2)
    path = tmp_path / "j.sqlite3"
    with gateway(sb, journal=path) as gw:
        run = gw._starts.start(
            "stripe-v2", REPORT, dict(PARAMS), Scope(), key="k", reuse=False,
            output=tmp_path / "a.csv",
        )[0]  # fmt: skip
        assert run is not None
        entry = gw.journal.status_of("stripe-v2", run.id)  # type: ignore[union-attr]
        assert entry is not None
        assert entry.endpoint == {"base_url": sb.stripe_base_url}
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(path))
    assert main(["resume"]) == 0, capsys.readouterr()
    assert (tmp_path / "a.csv").exists()
    with gateway(sb, journal=path) as gw:
        gw._starts.start(
            "stripe-v2", REPORT, dict(PARAMS), Scope(), key="k2", reuse=False,
            output=tmp_path / "b.csv",
        )  # fmt: skip
    assert main(["--base-url", sb.stripe_base_url, "resume"]) == 0, capsys.readouterr()
    assert (tmp_path / "b.csv").exists()


def test_a_journal_from_before_endpoints_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE runs DROP COLUMN endpoint")
    db.commit()
    db.close()
    journal = Journal(path)
    entry = journal.begin("stripe-v2", REPORT, Scope(), PARAMS, key="k")
    assert entry.endpoint == {}
    journal.close()


def test_the_journal_is_private_and_keys_credentials_with_its_own_secret(tmp_path: Path) -> None:
    """Owner-only file; the credential column is an HMAC under a secret of each journal, so
    the same credential gives unrelated values in two journals (no precomputed table
    matches), and a journal from before the secret is keyed on open, its reuse intact."""
    import hashlib
    import stat

    first, second = Journal(tmp_path / "a.sqlite3"), Journal(tmp_path / "b.sqlite3")
    for journal in (first, second):
        journal.begin("stripe-v2", REPORT, Scope(), PARAMS, key="k", credential="cred-id")
    stored = [
        sqlite3.connect(j.path).execute("SELECT credential FROM runs").fetchone()[0]
        for j in (first, second)
    ]
    assert stored[0] != stored[1]
    assert "cred-id" not in stored
    assert hashlib.sha256(b"cred-id").hexdigest()[:32] not in stored
    for name in ("a.sqlite3", "a.sqlite3-wal"):
        if (tmp_path / name).exists():
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    assert "credential" not in first.entries()[0].as_json()
    first.close()
    second.close()

    old = tmp_path / "old.sqlite3"
    Journal(old).close()
    db = sqlite3.connect(old)
    db.execute("DROP TABLE meta")
    db.execute(
        "INSERT INTO runs (id, key, provider, report_id, scope, parameters, parameters_hash,"
        " credential, state, created_at, updated_at) VALUES ('e1', 'k', 'stripe-v2', ?, '{}',"
        " '{}', ?, 'cred-id', 'running', 1e10, 1e10)",
        (REPORT, parameters_hash(PARAMS)),
    )
    db.commit()
    db.close()
    journal = Journal(old)
    entry = journal.latest("stripe-v2", REPORT, Scope(), PARAMS, credential="cred-id")
    assert entry is not None
    assert entry.id == "e1"
    assert entry.credential != "cred-id"
    journal.close()


def test_cli_journal_shows_ids_and_abandon_drops_an_entry(
    make_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from report_gateway.cli import main

    sb = make_sandbox(run_seconds=0.1)
    path = tmp_path / "j.sqlite3"
    with gateway(sb, journal=path) as gw:
        gw._starts.start(
            "stripe-v2", REPORT, dict(PARAMS), Scope(), key="k", reuse=False,
            output=tmp_path / "no-such-folder" / "x.csv",
        )  # fmt: skip
        (entry,) = gw.journal.entries(unfinished=True)  # type: ignore[union-attr]
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(path))
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    assert main(["journal", "--unfinished"]) == 0
    assert entry.id[:12] in capsys.readouterr().out
    assert main(["journal", "--abandon", "ffffffffffff"]) == 2
    assert main(["journal", "--abandon", entry.id[:12]]) == 0
    assert "abandoned" in capsys.readouterr().out
    assert main(["--json", "journal", "--unfinished"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == []
    assert main(["journal", "--abandon", entry.id]) == 2  # already finished
    assert main(["resume"]) == 0
    assert not (tmp_path / "no-such-folder").exists()


def test_a_journal_from_before_the_later_columns_is_read_and_written(tmp_path: Path) -> None:
    """A journal file written before ``endpoint`` and ``keep_existing`` existed (an older
    release on the same machine): its entries read back with the defaults, and the new
    columns are added and written."""
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY, key TEXT NOT NULL, provider TEXT NOT NULL,
            report_id TEXT NOT NULL, scope TEXT NOT NULL, parameters TEXT NOT NULL,
            parameters_hash TEXT NOT NULL, credential TEXT NOT NULL, run_id TEXT,
            state TEXT NOT NULL, raw_status TEXT, output TEXT, path TEXT, size INTEGER,
            error TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL
        );
        INSERT INTO runs VALUES ('e1', 'k1', 'stripe', 'balance.summary.1', '{}', '{}', 'h',
            'c', 'frr_1', 'succeeded', 'succeeded', '/tmp/x.csv', NULL, NULL, NULL, 1.0, 1.0);
        """
    )
    db.commit()
    db.close()
    journal = Journal(path)
    try:
        (old,) = journal.entries()
        assert (old.run_id, old.endpoint, old.keep_existing) == ("frr_1", {}, False)
        assert journal.record_keep_existing("stripe", "frr_1") == 1
        (old,) = journal.entries()
        assert old.keep_existing
    finally:
        journal.close()
