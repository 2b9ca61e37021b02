"""The journal's WAL checkpoints, made by a thread of their own: it ends with its Journal,
keeps the WAL from growing, and shares the file with other processes' journals."""

from __future__ import annotations

import gc
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
from report_gateway.journal import Journal

THREAD = "report-gateway-journal-checkpoint"


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD]


def write(journal: Journal, n: int, report: str = "r") -> None:
    for i in range(n):
        journal.begin("stripe", report, Scope(), {"i": i}, key=f"{report}-{i}")


def wait_handled(journal: Journal, count: int) -> None:
    """Until the checkpoint thread has handled ``count`` wakes (a generous bound, in case
    the machine is busy: not a timing assertion)."""
    deadline = time.monotonic() + 60
    while journal._checkpointer.handled < count:
        assert time.monotonic() < deadline, "the checkpoint thread never ran"
        time.sleep(0.01)


@pytest.fixture
def often(monkeypatch: pytest.MonkeyPatch) -> int:
    """Checkpoints every few commits, so a test needs few writes."""
    monkeypatch.setattr(journal_module, "CHECKPOINT_EVERY", 5)
    return 5


def _new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads alive now that were not before (a thread of an earlier test that ends
    meanwhile is not this test's business; a count would take it for one less)."""
    return [thread for thread in threading.enumerate() if thread not in before]


def test_the_checkpoint_thread_ends_with_its_journal(tmp_path: Path, often: int) -> None:
    before = set(threading.enumerate())
    for n in range(8):  # as tests and long-lived processes open journal after journal
        journal = Journal(tmp_path / "j.sqlite3")
        write(journal, 3 * often, report=f"r{n}")
        assert len(checkpoint_threads()) == 1
        journal.close()
        assert checkpoint_threads() == []
    assert _new_threads(before) == []
    # One dropped without ``close`` ends its thread too.
    journal = Journal(tmp_path / "j.sqlite3")
    write(journal, often, report="dropped")
    assert len(checkpoint_threads()) == 1
    del journal
    gc.collect()
    assert checkpoint_threads() == []
    assert _new_threads(before) == []
    with sqlite3.connect(tmp_path / "j.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (8 * 3 * often + often,)


def test_a_journal_written_a_few_times_starts_no_thread(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    write(journal, 3)
    assert checkpoint_threads() == []
    journal.close()


def test_the_wal_stops_growing(tmp_path: Path, often: int) -> None:
    """Only the checkpoint thread checkpoints here (the writer's own bound is far off):
    after each burst of commits it copies the WAL into the database, and the next commit
    starts the WAL over instead of making it longer."""
    path = tmp_path / "j.sqlite3"
    wal = Path(f"{path}-wal")
    journal = Journal(path)
    sizes = []
    for burst in range(1, 41):
        write(journal, often, report=f"r{burst}")  # one wake per burst
        wait_handled(journal, burst)
        sizes.append(wal.stat().st_size)
    journal.close()
    # 40 bursts without a checkpoint would make it some 20 times the second one's size.
    assert sizes[-1] <= 2 * sizes[1]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (40 * often,)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


CHILD = textwrap.dedent(
    """
    import sys
    from report_gateway import Scope
    from report_gateway import journal as journal_module
    journal_module.CHECKPOINT_EVERY = 5
    journal = journal_module.Journal(sys.argv[1])
    for i in range(int(sys.argv[2])):
        entry = journal.begin("stripe", "child", Scope(), {"i": i}, key=f"child-{i}")
        journal.record_sending(entry.id)
    journal.close()
    assert not [t for t in __import__("threading").enumerate() if t.name.endswith("checkpoint")]
    """
)


def test_two_processes_share_a_journal_while_both_checkpoint(tmp_path: Path, often: int) -> None:
    path = tmp_path / "j.sqlite3"
    Journal(path).close()  # made (WAL, schema) before both open it
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), "300"])
    try:
        journal = Journal(path)
        for i in range(300):
            entry = journal.begin("stripe", "parent", Scope(), {"i": i}, key=f"parent-{i}")
            journal.record_sending(entry.id)
        assert len(checkpoint_threads()) == 1
        journal.close()
    finally:
        assert child.wait(timeout=120) == 0
    journal = Journal(path)
    try:
        entries = journal.entries()
        assert len(entries) == 600
        assert {e.state for e in entries} == {"sending"}
        assert {e.report_id for e in entries} == {"parent", "child"}
    finally:
        journal.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_no_thread_to_be_had_loses_no_write(
    tmp_path: Path, often: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a process's thread limit every write still stands and close still closes."""

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    journal = Journal(tmp_path / "j.sqlite3")
    write(journal, 4 * often)
    entry, new = journal.claim("stripe", "claimed", Scope(), {}, key="k", window=60.0)
    assert new
    journal.close()
    monkeypatch.undo()
    again = Journal(tmp_path / "j.sqlite3")
    assert len(again.entries()) == 4 * often + 1
    assert again.get(entry.id) is not None
    again.close()


def test_a_relative_path_is_the_same_file_after_a_chdir(
    tmp_path: Path, often: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint thread opens the journal later: never a new file where the process
    has moved to since."""
    (tmp_path / "first").mkdir()
    (tmp_path / "then").mkdir()
    monkeypatch.chdir(tmp_path / "first")
    journal = Journal("j.sqlite3")
    assert journal.path == tmp_path / "first" / "j.sqlite3"
    monkeypatch.chdir(tmp_path / "then")
    write(journal, 3 * often)
    wait_handled(journal, 1)
    journal.close()
    assert list((tmp_path / "then").iterdir()) == []
    assert len(Journal(tmp_path / "first" / "j.sqlite3").entries()) == 3 * often


def test_endpoint_values_that_compare_equal_stay_apart(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    values: list[object] = [1, True, 1.0, "1"]
    for n, value in enumerate(values):
        journal.begin("stripe", "r", Scope(), {}, key=f"k{n}", endpoint={"x": value})  # type: ignore[dict-item]
    stored = {e.key: e.endpoint["x"] for e in journal.entries()}
    assert [(type(stored[f"k{n}"]), stored[f"k{n}"]) for n in range(4)] == [
        (type(v), v) for v in values
    ]
    journal.close()
