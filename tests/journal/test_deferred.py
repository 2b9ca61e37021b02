"""Deferred journal writes (``Journal.later``): a run id from an idempotent create and a
poll's status ride in the next write's transaction or are committed by a thread soon
after; nothing deferred is lost by ``close``, by dropping the Journal, or by the process
exiting, and this process's reads see them at once."""

from __future__ import annotations

import gc
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from report_gateway import Scope
from report_gateway import journal as journal_module
from report_gateway.journal import Journal, JournalEntry
from report_gateway.models import ReportRun, RunStatus

from tests.forking import exit_code_within

THREAD = "report-gateway-journal-writes"


def run_of(run_id: str, status: RunStatus = RunStatus.PENDING) -> ReportRun:
    return ReportRun(
        provider="stripe", id=run_id, report_id="r", status=status, raw_status=status.value
    )


def on_disk(path: Path, entry_id: str) -> tuple[str | None, str]:
    """(run id, state) as another connection (another process) reads them."""
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT run_id, state FROM runs WHERE id = ?", (entry_id,)).fetchone()
    return row[0], row[1]


def begin(journal: Journal, n: int = 0) -> JournalEntry:
    return journal.begin("stripe", "r", Scope(), {"n": n}, key=f"k{n}")


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread commits only after an hour: what a test sees was carried by a write."""
    monkeypatch.setattr(journal_module, "DEFER_SECONDS", 3600.0)


def test_a_deferred_run_id_rides_in_the_next_write(tmp_path: Path, slow: None) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    first = begin(journal, 1)
    journal.record_run(first.id, run_of("frr_1"), deferred=True)
    assert on_disk(path, first.id) == (None, "journaled")  # not committed yet
    second = begin(journal, 2)  # one transaction: the deferred write, then this entry
    assert on_disk(path, first.id) == ("frr_1", "pending")
    assert on_disk(path, second.id) == (None, "journaled")
    journal.close()


def test_the_thread_commits_what_no_write_carries(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    entry = begin(journal)
    journal.record_run(entry.id, run_of("frr_1"), deferred=True)
    deadline = time.monotonic() + 60  # a bound for a busy machine, not a timing assertion
    while on_disk(path, entry.id)[0] is None:
        assert time.monotonic() < deadline, "the deferred write was never committed"
        time.sleep(0.01)
    assert on_disk(path, entry.id) == ("frr_1", "pending")
    journal.close()


def test_reads_see_this_process_deferred_writes(tmp_path: Path, slow: None) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    entry = begin(journal)
    journal.record_run(entry.id, run_of("frr_1"), deferred=True)
    assert journal.record_status("stripe", "frr_1", RunStatus.RUNNING, deferred=True) == -1
    got = journal.get(entry.id)
    assert got is not None
    assert (got.run_id, got.state) == ("frr_1", "running")
    journal.close()


def test_deferred_writes_keep_their_order_with_the_ones_that_are_not(
    tmp_path: Path, slow: None
) -> None:
    """A status written at once after a deferred run id must find the entry by run id."""
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    entry = begin(journal)
    journal.record_run(entry.id, run_of("frr_1"), deferred=True)
    assert journal.record_status("stripe", "frr_1", RunStatus.SUCCEEDED) == 1
    assert on_disk(path, entry.id) == ("frr_1", "succeeded")
    journal.close()


def test_a_claim_with_a_window_carries_them_too(tmp_path: Path, slow: None) -> None:
    """``reuse=True`` finds the job's entry with its deferred run id (and takes it up)."""
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    entry = begin(journal)
    journal.record_run(entry.id, run_of("frr_1"), deferred=True)
    found, new = journal.claim("stripe", "r", Scope(), {"n": 0}, key="other", window=60.0)
    assert not new
    assert (found.id, found.run_id) == (entry.id, "frr_1")
    assert on_disk(path, entry.id) == ("frr_1", "pending")
    journal.close()


def test_close_and_dropping_the_journal_commit_them(tmp_path: Path, slow: None) -> None:
    path = tmp_path / "j.sqlite3"
    before = threading.active_count()
    journal = Journal(path)
    entry = begin(journal, 1)
    journal.record_run(entry.id, run_of("frr_1"), deferred=True)
    journal.close()
    assert on_disk(path, entry.id) == ("frr_1", "pending")

    journal = Journal(path)
    entry = begin(journal, 2)
    journal.record_run(entry.id, run_of("frr_2"), deferred=True)
    del journal
    gc.collect()
    assert on_disk(path, entry.id) == ("frr_2", "pending")
    assert [t for t in threading.enumerate() if t.name == THREAD] == []
    assert threading.active_count() == before


def test_a_process_exiting_without_close_commits_them(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    script = textwrap.dedent(
        f"""
        from report_gateway import Scope, journal as m
        from report_gateway.journal import Journal
        from report_gateway.models import ReportRun, RunStatus
        m.DEFER_SECONDS = 3600.0
        j = Journal({str(path)!r})
        e = j.begin("stripe", "r", Scope(), {{}}, key="k")
        run = ReportRun(provider="stripe", id="frr_x", report_id="r",
                        status=RunStatus.PENDING, raw_status="pending")
        j.record_run(e.id, run, deferred=True)
        print(e.id)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert on_disk(path, done.stdout.strip()) == ("frr_x", "pending")


def test_no_thread_to_be_had_commits_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    entry = begin(journal)

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    journal.record_run(entry.id, run_of("frr_1"), deferred=True)
    assert on_disk(path, entry.id) == ("frr_1", "pending")
    monkeypatch.undo()
    journal.close()


def test_a_failed_commit_keeps_them_for_the_next(tmp_path: Path, slow: None) -> None:
    """Another process holding the write lock past the busy timeout: the write that would
    carry them fails (nothing sent depends on it), and the next one commits them."""
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    entry = begin(journal, 1)
    journal.record_run(entry.id, run_of("frr_1"), deferred=True)
    journal._db.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        begin(journal, 2)
    other.execute("ROLLBACK")
    other.close()
    # A statement failing inside the transaction (as a full disk would at commit).
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        journal._write("UPDATE runs SET no_such_column = 1", ())
    assert on_disk(path, entry.id) == (None, "journaled")
    begin(journal, 3)
    assert on_disk(path, entry.id) == ("frr_1", "pending")
    journal.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_during_a_deferred_commit_leaves_the_child_a_free_lock(tmp_path: Path) -> None:
    """The lock a thread holds while the process forks would stay held in the child
    forever; the fork waits for it instead."""
    journal = Journal(tmp_path / "j.sqlite3")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with journal._lock:  # as the deferred writes' thread holds it while committing
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    threading.Timer(0.2, release.set).start()
    pid = os.fork()
    if pid == 0:  # the child: its copy of the lock must be free
        os._exit(0 if journal._lock.acquire(timeout=5) else 1)
    _, status = os.waitpid(pid, 0)
    holder.join()
    assert os.waitstatus_to_exitcode(status) == 0
    assert journal._lock.acquire(timeout=5)  # and the parent's is released too
    journal._lock.release()
    journal.close()


def test_a_read_by_run_id_finds_the_deferred_entry_not_an_older_one(
    tmp_path: Path, slow: None
) -> None:
    """Run ids repeat (a sandbox's, after a restart): until the new entry's deferred run id
    is written, the older entry of that id, ended long ago, would answer for it."""
    journal = Journal(tmp_path / "j.sqlite3")
    old = begin(journal, 1)
    journal.record_run(old.id, run_of("frr_1"))
    journal.record_status("stripe", "frr_1", RunStatus.SUCCEEDED)
    assert journal.ended_at("stripe", "frr_1") is not None
    new = begin(journal, 2)
    journal.record_run(new.id, run_of("frr_1"), deferred=True)
    assert journal.ended_at("stripe", "frr_1") is None
    found = journal.status_of("stripe", "frr_1")
    assert found is not None
    assert found.id == new.id
    assert journal.ended_since(new.created_at) == []
    journal.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_replay_its_parent_deferred_writes(
    tmp_path: Path, slow: None
) -> None:
    """The parent commits its own; a child's copy, committed when it exits, would take the
    entry back from downloaded to its first status (``resume`` would fetch it again)."""
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    entry = begin(journal)
    journal.record_run(entry.id, run_of("frr_1"), deferred=True)
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: once the parent has downloaded, it closes the journal
        code = 1
        try:
            os.read(go_read, 1)
            journal.close()
            code = 0
        finally:
            os._exit(code)
    journal.record_download("stripe", "frr_1", tmp_path / "out.csv", 10, entry_id=entry.id)
    assert on_disk(path, entry.id) == ("frr_1", "downloaded")
    os.write(go_write, b"x")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert on_disk(path, entry.id) == ("frr_1", "downloaded")
    journal.close()


def test_a_late_run_id_never_takes_an_entry_back(tmp_path: Path, slow: None) -> None:
    """Another process took the entry up (the same key, the same run) and downloaded it
    before this one's deferred run id was committed."""
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    entry = begin(journal)
    journal.record_run(entry.id, run_of("frr_1"), deferred=True)
    other = Journal(path)
    other.record_run(entry.id, run_of("frr_1"))
    other.record_download("stripe", "frr_1", tmp_path / "out.csv", 10, entry_id=entry.id)
    other.close()
    journal.close()
    assert on_disk(path, entry.id) == ("frr_1", "downloaded")


def test_the_thread_does_not_hold_the_journal_while_another_process_holds_the_file(
    tmp_path: Path,
) -> None:
    """Its commit gives up soon (the writes wait for the next one), so this process's other
    writes and reads are not queued behind a 30 s busy wait."""
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    entry = begin(journal)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        journal.record_run(entry.id, run_of("frr_1"), deferred=True)
        later = journal._later
        deadline = time.monotonic() + 20  # the writers' timeout is 30 s: well within it
        while later.passes == 0:
            assert time.monotonic() < deadline, "the thread still waits on the file"
            time.sleep(0.01)
        assert later.items  # kept
        assert journal._lock.acquire(timeout=20)
        journal._lock.release()
    finally:
        other.execute("ROLLBACK")
        other.close()
    # Tried again by the thread, with no other write to carry them.
    deadline = time.monotonic() + 60
    while on_disk(path, entry.id)[0] is None:
        assert time.monotonic() < deadline, "the thread never tried again"
        time.sleep(0.01)
    assert on_disk(path, entry.id) == ("frr_1", "pending")
    journal.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_while_a_gateway_opens_its_journal_leaves_the_child_a_usable_gateway(
    tmp_path: Path,
) -> None:
    """Another thread opening the gateway's journal at the fork (its holder's lock held)
    must not leave the child's first journaled call waiting forever."""
    from report_gateway import Gateway

    gateway = Gateway(environ={"REPORT_GATEWAY_JOURNAL": str(tmp_path / "j.sqlite3")})
    holder = gateway._journal
    assert holder._lock.acquire(timeout=5)  # as a thread in the middle of the open
    try:
        pid = os.fork()
        if pid == 0:  # the child: it must get its journal, not wait for the parent's lock
            code = 1
            try:
                opened: list[object] = []
                getter = threading.Thread(target=lambda: opened.append(gateway.journal))
                getter.start()
                getter.join(5)
                code = 0 if opened and opened[0] is not None else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        holder._lock.release()
    assert os.waitstatus_to_exitcode(status) == 0
    assert gateway.journal is not None
    gateway.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forks_while_other_threads_open_close_and_checkpoint_journals_never_hang_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork while another thread is inside SQLite (opening or closing a journal, or the
    checkpoint thread at work) would leave the child SQLite's own locks held: the child's
    first open of a journal then waited forever. Seen in 14 of 40 such forks before."""
    monkeypatch.setattr(journal_module, "CHECKPOINT_EVERY", 1)
    path = tmp_path / "j.sqlite3"
    Journal(path).close()
    stop = threading.Event()

    def open_and_close() -> None:
        while not stop.is_set():
            Journal(path).close()

    def commit_and_checkpoint() -> None:
        journal = Journal(path)
        n = 0
        while not stop.is_set():
            n += 1
            begin(journal, n)
        journal.close()

    churn = [threading.Thread(target=open_and_close) for _ in range(2)]
    churn.append(threading.Thread(target=commit_and_checkpoint))
    for thread in churn:
        thread.start()
    codes = []
    try:
        for _ in range(20):
            pid = os.fork()
            if pid == 0:  # the child: its own journal, opened, read and closed
                code = 1
                try:
                    journal = Journal(path)
                    journal.entries()
                    journal.close()
                    code = 0
                finally:
                    os._exit(code)
            codes.append(exit_code_within(pid, 20))
    finally:
        stop.set()
        for thread in churn:
            thread.join()
    assert codes == [0] * 20
