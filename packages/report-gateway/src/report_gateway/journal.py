"""The run journal: every run this machine's gateways start, kept in SQLite across crashes.

A report run costs minutes to hours and counts against the provider's limits, so a process
that dies while waiting must not lose it. Each start is written down before its create
request is sent (provider, scope, report, parameters and their hash, idempotency key), then
its run id, every status change, and the result file with its size once a download is
verified. ``Gateway.start(..., reuse=True)``, ``Gateway.run_many`` and ``report-gateway
resume`` read it back (``journaled_start``):

- a run that never finished (still going, a create maybe lost, succeeded but not yet
  downloaded) is waited on again; one downloaded and verified (the file exists with the
  recorded size) is skipped; anything else (failed, canceled, or downloaded to a file since
  moved or changed) gets a new run, since a job run again later wants that day's data;
- a start whose create may have been sent without its answer being written down is resolved
  by sending it again with the same idempotency key when the driver says its create is
  idempotent (``idempotent_create``: Stripe keys replay the first answer), else by the
  driver's lookup (``find_created``: Zuora with password auth), else it is marked ``lost``
  with a ``RunMayExistError``; a start journaled but not yet sending is simply made.

One file serves several processes on one machine: WAL mode, a busy timeout, and one short
transaction per write (never one held across a request); a start writes its entry before
the create and its run id with the first status after. Writes that a crash may lose
without harm wait for the next write to carry them in its transaction (``Journal.later``:
the run id of an idempotent create, which ``resume`` gets back by sending the same create
with the same key; a poll's status, which the next poll gives again), so a start and its
polls cost one commit rather than three. Writes are
``synchronous=NORMAL``: a committed write is in the operating system's hands before the
create goes out, so it survives whatever ends the process (a crash, SIGKILL, an OOM kill:
what the journal exists for), and the file stays consistent; only a power cut or a kernel
crash can lose the last writes before the WAL's next checkpoint (``FULL``, an fsync per
write, cost more than the rest of a start and get together). The checkpoints (which fsync)
are made by a thread of the Journal's own every ``CHECKPOINT_EVERY`` commits, not inside a
start's commit (``_Checkpointer``). Finding a job's entry and
writing a new one is one ``BEGIN IMMEDIATE`` transaction (``Journal.claim``), so two
processes starting the same job at once share one entry (and one run). The file is
created readable by its owner only; credentials are kept as an HMAC-SHA256 of the
gateway's credential id under a random secret of the journal (``meta`` table), so a
journal's entries cannot be matched against another journal's or a precomputed table.

Other parts of a process update it without a run in hand: ``record_status(provider,
run_id, status, raw)`` (``report_gateway.webhooks``: a listener, maybe in another process),
``ended_at(provider, run_id)`` (a ``Gateway.wait`` between polls: a run a listener wrote
down as ended is polled once at once, instead of at its next scheduled poll).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import inspect
import json
import logging
import os
import signal
import sqlite3
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .config import JOURNAL_ENV
from .errors import (
    ConfigurationError,
    GatewayError,
    ProviderError,
    RunLimitError,
    RunMayExistError,
    RunNotFoundError,
    provider_errors,
)
from .models import ReportRun, RunStatus, Scope, StartProgress
from .provider import start_reporter

if TYPE_CHECKING:
    from .admission import Admissions
    from .config import GatewayOptions
    from .drivers import Drivers
    from .gateway import Gateway
    from .provider import ProviderDriver

__all__ = [
    "CRASH_ENV",
    "JOURNAL_ENV",
    "Journal",
    "JournalEntry",
    "Starts",
    "default_journal_path",
    "parameters_hash",
]

#: Test hook: the step at which the process kills itself (``after-journal``,
#: ``after-create``, ``mid-wait``, ``mid-download``), so crash tests hit each one exactly.
CRASH_ENV = "REPORT_GATEWAY_CRASH_AT"

_log = logging.getLogger(__name__)

# Journal states: a RunStatus value once the run id is known, or one of these.
JOURNALED = "journaled"  # written down; the create is not sent yet (it may wait for a slot)
SENDING = "sending"  # the create request is being sent: a run may exist without its id
DOWNLOADED = "downloaded"  # the result file was verified at ``path`` with ``size`` bytes
ABANDONED = "abandoned"  # the create was refused: no run exists
LOST = "lost"  # a run may exist but could not be found (RunMayExistError)
#: The run's own terminal states, as journaled.
_ENDED = tuple(status.value for status in RunStatus if status.is_terminal)
#: States in which nothing is left to do for the entry.
FINISHED = frozenset(
    {DOWNLOADED, ABANDONED, LOST, RunStatus.FAILED.value, RunStatus.CANCELED.value}
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    provider TEXT NOT NULL,
    report_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    parameters TEXT NOT NULL,
    parameters_hash TEXT NOT NULL,
    credential TEXT NOT NULL,
    run_id TEXT,
    state TEXT NOT NULL,
    raw_status TEXT,
    output TEXT,
    path TEXT,
    size INTEGER,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    endpoint TEXT,
    keep_existing INTEGER
);
CREATE INDEX IF NOT EXISTS runs_job
    ON runs (provider, report_id, scope, parameters_hash, credential, created_at);
CREATE INDEX IF NOT EXISTS runs_run ON runs (provider, run_id);
CREATE INDEX IF NOT EXISTS runs_updated ON runs (updated_at);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
#: Where ``latest`` and ``claim`` compare endpoints (entries written before they were kept
#: have none: the default hosts).
_ENDPOINT = "COALESCE(endpoint, '{}')"
#: The columns that say which job an entry is (``latest``, ``claim``, ``newer``).
_JOB = (
    "provider = ? AND report_id = ? AND scope = ? AND parameters_hash = ? AND credential = ?"
    f" AND {_ENDPOINT} = ?"
)


def default_journal_path() -> Path:
    """``journal.sqlite3`` in the user's data folder (``$XDG_DATA_HOME/report-gateway`` or
    ``~/.local/share/report-gateway`` on Linux, a relative ``$XDG_DATA_HOME`` ignored as the
    XDG spec says; platformdirs knows the other systems)."""
    import platformdirs
    import platformdirs.api
    import platformdirs.unix

    from .config import xdg_home

    # The class platformdirs picked for this system (typed as its base: it varies).
    dirs: platformdirs.api.PlatformDirsABC = platformdirs.PlatformDirs(
        "report-gateway", appauthor=False
    )
    if isinstance(dirs, platformdirs.unix.Unix):
        base = xdg_home(os.environ, "XDG_DATA_HOME", os.path.join(".local", "share"))
        return base / "report-gateway" / "journal.sqlite3"
    return dirs.user_data_path / "journal.sqlite3"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
#: Values JSON writes as ``_jsonable`` would leave them (exact types: a subclass, an enum
#: mixing in ``str`` say, may be written otherwise).
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _flat(value: Any) -> bool:
    """A dict of plain values by text keys (every start's parameters, scope and endpoint,
    commonly): JSON writes it as it is, and reads it back equal."""
    return type(value) is dict and all(
        type(k) is str and type(v) in _PLAIN for k, v in value.items()
    )


def _canonical(value: Any) -> str:
    return _ENCODER.encode(value if _flat(value) else _jsonable(value))


def _stored(value: Any) -> tuple[str, Any]:
    """``value`` as canonical JSON, and as a read of that text gives it back: for a flat
    dict the same dict with its keys sorted, without a JSON round trip (a start's
    parameters and endpoint, on every start)."""
    if _flat(value):
        return _ENCODER.encode(value), {k: value[k] for k in sorted(value)}
    text = _ENCODER.encode(_jsonable(value))
    return text, json.loads(text)


@functools.lru_cache(maxsize=256)
def _stored_place(items: tuple[tuple[str, str], ...]) -> tuple[str, Any]:
    """``_stored`` for endpoint settings (a process has a few: one per provider); the
    dict is the cache's, to be copied."""
    return _stored(dict(items))


def _new_id() -> str:
    """An entry id: ``uuid.uuid4().hex``'s format without building a UUID."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


def parameters_hash(parameters: Mapping[str, Any]) -> str:
    """The same parameters, however ordered, give the same hash (a job's identity)."""
    return hashlib.sha256(_canonical(parameters).encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=4096)
def scope_text(scope: Scope) -> str:
    """A scope as stored: its set fields as canonical JSON (``{}`` for none); kept for the
    scopes in use (a fan-out's few thousand), as every start and status write needs it."""
    return _canonical(scope.fields())


@functools.lru_cache(maxsize=4096)
def _scope_of(text: str) -> Scope:
    """The scope a stored ``scope`` column means (``scope_text`` undone)."""
    return Scope(**json.loads(text))


def _tag(secret: bytes, credential: str) -> str:
    return hmac.new(secret, credential.encode(), hashlib.sha256).hexdigest()[:32]


def crash_point(step: str) -> None:
    """Kill this process at ``step`` when ``$REPORT_GATEWAY_CRASH_AT`` names it (tests)."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


@attrs.frozen(kw_only=True)
class JournalEntry:
    """One start as journaled. ``state`` is ``journaled``, ``sending``, a ``RunStatus``
    value, ``downloaded``, ``abandoned`` or ``lost``; ``output`` is where the result is to
    go (None: nobody asked for a download), ``path``/``size`` where it went."""

    id: str
    key: str
    provider: str
    report_id: str
    scope: Scope
    parameters: Mapping[str, Any]
    parameters_hash: str
    credential: str
    run_id: str | None
    state: str
    raw_status: str | None
    output: str | None
    path: str | None
    size: int | None
    error: str | None
    created_at: float
    updated_at: float
    #: The provider's non-secret endpoint settings the run was started with (``base_url``,
    #: ``files_base_url`` when set): where ``resume`` finds the run again.
    endpoint: Mapping[str, str] = attrs.field(factory=dict)
    #: A download of the run was asked with ``overwrite=False``: ``resume`` downloads it
    #: the same way, so a file at ``output`` that the user refused to replace stays.
    keep_existing: bool = False

    @property
    def finished(self) -> bool:
        """Nothing is left to do: downloaded, failed, canceled, refused, lost, or succeeded
        with no download asked for."""
        if self.state in FINISHED:
            return True
        return self.state == RunStatus.SUCCEEDED.value and self.output is None

    @property
    def verified(self) -> bool:
        """The result file is where it was written, with the size written down then."""
        if self.state != DOWNLOADED or self.path is None or self.size is None:
            return False
        try:
            return Path(self.path).stat().st_size == self.size
        except OSError:
            return False

    def as_json(self) -> dict[str, Any]:
        """The entry for ``report-gateway journal --json`` (parameters included: they hold
        no secrets; the credential column is left out)."""
        data = attrs.asdict(self, recurse=False)
        data.pop("credential")  # keyed, but of no use to a reader
        data["scope"] = self.scope.fields()
        data["parameters"] = dict(self.parameters)
        data["endpoint"] = dict(self.endpoint)
        return data


_COLUMNS = tuple(f.name for f in attrs.fields(JournalEntry))


#: Commits between two checkpoints of the WAL by ``_Checkpointer`` (a start commits twice,
#: about five 4 KiB pages each: some 1000 pages, SQLite's own automatic checkpoint size).
CHECKPOINT_EVERY = 200
#: The WAL size (pages) at which a writer checkpoints by itself, as SQLite does by default
#: at 1000: a bound on the WAL should the background checkpoints lag (a busy machine) or
#: never start (processes that each commit fewer than ``CHECKPOINT_EVERY`` times and exit
#: without ``close``: their WAL grows to this, 8 MiB, not ten times SQLite's default).
_WRITER_CHECKPOINT_PAGES = 2_000

#: Passes of a background checkpoint while commits keep coming: the WAL starts over from
#: its beginning (instead of growing) only once a checkpoint has copied all of it, and the
#: commits made during a pass are copied by the next, much shorter one.
_CHECKPOINT_PASSES = 4


#: Held by a checkpoint thread while it is inside SQLite, and by a fork (``_before_fork``):
#: a fork in the middle of SQLite's work would leave the child SQLite's own locks held
#: (its file-lock table is the process's), and the child's first open of any journal hung.
_checkpoint_lock = threading.Lock()


class _Checkpointer:
    """Copies the journal's WAL into its database file from a daemon thread of its own.

    SQLite's automatic checkpoint runs inside the commit that crosses its size and fsyncs
    the WAL and the database file: on average more than half of what a start's two writes
    cost (measured: 391 us a start with it, 158-180 us without). Here
    the commits are counted (``committed``) and every ``CHECKPOINT_EVERY`` one wakes a
    thread that runs ``PRAGMA wal_checkpoint(PASSIVE)`` on a connection of its own; the
    sqlite3 module lets go of the GIL meanwhile, so the fsyncs overlap the caller's next
    requests. PASSIVE never waits and never makes a writer wait: with another process's
    checkpoint under way it does nothing (the next wake tries again). What a commit
    guarantees is unchanged (``synchronous=NORMAL``: on the OS's hands when it returns);
    only who pays for the checkpoint is. The thread starts on the first wake (a journal
    written a few times never has one) and ends at ``stop`` (``Journal.close``, or the
    Journal being collected), after a last checkpoint of what was committed since.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        #: Commits since the last wake (the Journal's lock held).
        self.pending = 0
        #: Wakes handled so far (what a test waits on instead of a time).
        self.handled = 0

    def committed(self) -> None:
        """One more commit (called with the Journal's lock held)."""
        self.pending += 1
        if self.pending >= CHECKPOINT_EVERY:
            self.pending = 0
            if self._thread is None or self._pid != os.getpid():  # none yet, or forked
                thread = threading.Thread(
                    target=self._run, name="report-gateway-journal-checkpoint", daemon=True
                )
                try:
                    thread.start()
                except RuntimeError:
                    # No thread to be had (a process or thread limit): the commit stands,
                    # the writer's own checkpoint bounds the WAL; the next wake tries again.
                    self._thread = None
                    return
                self._pid, self._thread = os.getpid(), thread
            self._wake.set()

    def stop(self) -> bool:
        """End the thread after a last checkpoint, if it runs; whether it did (else the
        caller checkpoints what is pending itself)."""
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            return False
        self._stopping = True
        self._wake.set()
        if thread is not threading.current_thread():
            thread.join()
        self._thread = None
        return True

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                stopping = self._stopping
                try:
                    with _checkpoint_lock:  # a fork waits: SQLite's own locks are inside
                        if db is None:
                            # mode=rw: never a new empty file should the journal's be gone.
                            db = sqlite3.connect(
                                f"{self._path.as_uri()}?mode=rw",
                                uri=True,
                                timeout=0,
                                isolation_level=None,
                                check_same_thread=False,
                            )
                        for _ in range(_CHECKPOINT_PASSES):
                            pragma = "PRAGMA wal_checkpoint(PASSIVE)"
                            busy, log, done = db.execute(pragma).fetchone()
                            if busy or done >= log:
                                break
                except sqlite3.Error:
                    pass  # busy, or the file gone: the next wake (or a writer) checkpoints
                self.handled += 1
                if stopping:
                    return
        finally:
            if db is not None:
                with _checkpoint_lock:
                    db.close()


#: How long a deferred write (``Journal.later``) waits for the next write to carry it in
#: its transaction before a thread commits it alone (seconds).
DEFER_SECONDS = 0.05

#: How long a write waits for another process's transaction (milliseconds), and how long
#: the deferred writes' thread does (``_flush_later``).
_BUSY_MS = 30_000
_LATER_BUSY_MS = 200

#: Every gateway's JournalHolder, for the fork hook that frees their locks in a child.
_holders: weakref.WeakSet[JournalHolder] = weakref.WeakSet()

#: Every open Journal, for the fork hooks below (changed and read under the lock).
_open_journals: weakref.WeakSet[Journal] = weakref.WeakSet()
_open_journals_lock = threading.Lock()


class _Later:
    """Writes that may wait a little (``Journal.later``): a run id from an idempotent
    create, a status from a poll. Losing one to a crash loses nothing that cannot be
    learnt again (a create replayed with its idempotency key gives back its run; a poll
    gives the status), so they need not cost a commit of their own on the caller's path:
    the next write of the process commits them in its own transaction (one commit per
    start and get instead of three), and a daemon thread commits what is left after
    ``DEFER_SECONDS``. ``items`` and the writes are guarded by the Journal's lock; the
    thread holds no reference to the Journal, so dropping it still ends everything
    (``Journal._end_later``).
    """

    def __init__(self) -> None:
        self.items: list[tuple[str, tuple[Any, ...]]] = []
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.pid = 0
        #: Passes of the thread so far (what a test waits on instead of a time).
        self.passes = 0
        #: Whether the thread's last commit failed (its warning is not repeated).
        self.failing = False

    def running(self) -> bool:
        return self.thread is not None and self.pid == os.getpid() and self.thread.is_alive()


def _commit(
    db: sqlite3.Connection,
    later: _Later,
    checkpointer: _Checkpointer,
    sql: str | None = None,
    args: tuple[Any, ...] = (),
) -> int:
    """Commit the deferred writes, with ``sql`` after them in the same transaction (the
    caller holds the Journal's lock); returns ``sql``'s row count. On an error nothing is
    committed and the deferred writes stay for the next commit."""
    items = later.items
    if not items:
        if sql is None:
            return 0
        count = db.execute(sql, args).rowcount
        checkpointer.committed()
        return count
    count = 0
    db.execute("BEGIN IMMEDIATE")
    try:
        for item_sql, item_args in items:
            db.execute(item_sql, item_args)
        if sql is not None:
            count = db.execute(sql, args).rowcount
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # none open (BEGIN itself failed)
            db.execute("ROLLBACK")
        raise
    later.items = []
    checkpointer.committed()
    return count


def _flush_later(
    db: sqlite3.Connection, lock: threading.Lock, later: _Later, checkpointer: _Checkpointer
) -> None:
    """The deferred writes' thread: wakes when one is deferred, waits ``DEFER_SECONDS`` for
    a write to carry it, commits what is left; at ``stop``, a last commit and it ends."""
    while True:
        later.wake.wait()
        later.stop.wait(DEFER_SECONDS)
        later.wake.clear()
        with lock:
            try:
                # Not the writers' 30 s: another process holding the file would keep this
                # thread in the lock meanwhile, and every write and read of this process
                # waiting behind it. What is left waits for the next write.
                db.execute(f"PRAGMA busy_timeout={_LATER_BUSY_MS}")
                try:
                    _commit(db, later, checkpointer)
                finally:
                    db.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
            except sqlite3.Error:
                # Busy, or the disk full: kept, and tried again after another delay (or by
                # the next write); said once until a commit goes through.
                if not later.failing:
                    _log.warning("run journal: deferred writes not committed yet", exc_info=True)
                later.failing = True
                later.wake.set()
            else:
                later.failing = False
        later.passes += 1
        if later.stop.is_set():
            return


def _end_later(
    db: sqlite3.Connection, lock: threading.Lock, later: _Later, checkpointer: _Checkpointer
) -> None:
    """Commit every deferred write and end the thread (``Journal.close``, the Journal
    collected, or the interpreter exiting). On the thread itself (a collection there) it
    is only told to stop: it commits on its way out."""
    thread = later.thread
    if later.running():
        assert thread is not None
        later.stop.set()
        later.wake.set()
        if thread is threading.current_thread():
            return
        thread.join()
    with lock:
        if later.items:
            try:
                _commit(db, later, checkpointer)
            except sqlite3.Error:
                _log.warning(
                    "run journal: %d deferred writes lost (resume learns them again)",
                    len(later.items),
                    exc_info=True,
                )
                later.items = []


#: The locks ``_before_fork`` took, released by ``_after_fork`` in parent and child.
_held_for_fork: list[threading.Lock] = []


def _before_fork() -> None:
    # A child must not inherit a journal's lock held by another thread (a deferred commit
    # under way): it would wait for it forever. As ``logging`` does with its locks.
    _open_journals_lock.acquire()
    for journal in list(_open_journals):
        journal._lock.acquire()
        _held_for_fork.append(journal._lock)
    # Last: a checkpoint thread holding it never waits for the locks above.
    _checkpoint_lock.acquire()
    _held_for_fork.append(_checkpoint_lock)


def _after_fork() -> None:
    while _held_for_fork:
        _held_for_fork.pop().release()
    _open_journals_lock.release()


def _after_fork_in_child() -> None:
    # The parent commits its own deferred writes; the child's copies, committed later,
    # would write a run's first status over what the parent wrote since (a download).
    for journal in list(_open_journals):
        journal._later.items = []
    _after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork_in_child
    )


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["scope"] = Scope(**json.loads(values["scope"]))
    values["parameters"] = json.loads(values["parameters"])
    values["endpoint"] = json.loads(values["endpoint"] or "{}")
    values["keep_existing"] = bool(values["keep_existing"])
    return JournalEntry(**values)


class Journal:
    """The SQLite journal at ``path`` (created with its folder on first use).

    Safe to share between threads (one connection, a lock around each statement) and
    between processes (WAL, ``busy_timeout``). ``clock`` gives the stored times (unix
    seconds).
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time):
        # Absolute: the checkpoint thread opens it later, maybe after a ``chdir``.
        self.path = Path(path).expanduser().absolute()
        self._clock = clock
        self._lock = threading.Lock()
        self._tags: dict[str, str] = {}
        self._checkpointer = _Checkpointer(self.path)
        # A Journal dropped without ``close`` ends its thread too (the thread holds no
        # reference to it).
        self._stop_checkpoints = weakref.finalize(self, self._checkpointer.stop)
        self._later = _Later()
        # Known to the fork hooks before SQLite is entered, and opened with the lock held:
        # a fork waits for the open to end (a fork inside SQLite's work would leave the
        # child SQLite's own locks held, and its first open of a journal hung).
        with _open_journals_lock:
            _open_journals.add(self)
        try:
            with self._lock:
                self._open()
        except (OSError, sqlite3.Error) as exc:
            with _open_journals_lock:
                _open_journals.discard(self)
            raise ConfigurationError(
                f"run journal {str(self.path)!r} cannot be used: {exc}"
            ) from exc
        # Made after the checkpoints' finalizer, so run before it at exit: the deferred
        # writes are committed, then checkpointed.
        self._end_later = weakref.finalize(
            self, _end_later, self._db, self._lock, self._later, self._checkpointer
        )

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Owner only (SQLite gives its -wal and -shm files the database file's mode).
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        if self.path.stat().st_mode & 0o077:
            with contextlib.suppress(OSError):  # another user's: left as its owner set it
                self.path.chmod(0o600)
        self._db = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        # Switching to WAL while another process opens the file can answer "locked" at
        # once (no busy wait): two processes starting together retry for a while.
        for attempt in range(200):
            try:
                self._setup()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 199:
                    raise
                time.sleep(0.05)

    def __repr__(self) -> str:
        return f"<Journal {str(self.path)!r}>"

    def _setup(self) -> None:
        self._db.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA wal_autocheckpoint={_WRITER_CHECKPOINT_PAGES}")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        # Columns added since the first journals (another process may add one first).
        for name, kind in (("endpoint", "TEXT"), ("keep_existing", "INTEGER")):
            if name not in columns:
                with contextlib.suppress(sqlite3.OperationalError):
                    self._db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
        self._secret = self._keying_secret()

    def _keying_secret(self) -> bytes:
        """The journal's secret for ``credential_tag``, made on first open; a journal
        written before it existed has its credential column keyed in the same transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT value FROM meta WHERE name = 'secret'").fetchone()
            if row is None:
                secret = os.urandom(32)
                self._db.execute(
                    "INSERT INTO meta (name, value) VALUES ('secret', ?)", (secret.hex(),)
                )
                old = self._db.execute("SELECT DISTINCT credential FROM runs").fetchall()
                for (plain,) in old:
                    self._db.execute(
                        "UPDATE runs SET credential = ? WHERE credential = ?",
                        (_tag(secret, plain), plain),
                    )
            else:
                secret = bytes.fromhex(row[0])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return secret

    def credential_tag(self, credential: str) -> str:
        """How the journal stores a gateway's credential id: keyed with its own secret
        (computed once per credential id: every start and status write needs it)."""
        tag = self._tags.get(credential)
        if tag is None:
            tag = self._tags[credential] = _tag(self._secret, credential)
        return tag

    def close(self) -> None:
        """Close the file, after committing the deferred writes and a checkpoint of what
        this Journal committed since its last one (on its thread, ended here; else on this
        connection)."""
        self._end_later()  # before the lock: its thread may need it to finish
        with self._lock:  # no write starts a thread meanwhile; a fork waits for the close
            stopped = self._stop_checkpoints()
            if not stopped and self._checkpointer.pending:
                with contextlib.suppress(sqlite3.Error):  # closed already, or busy
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self._checkpointer.pending = 0
            self._db.close()
        # Only now (never with the lock above held: ``_before_fork`` takes the two the
        # other way round).
        with _open_journals_lock:
            _open_journals.discard(self)

    def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            return _commit(self._db, self._later, self._checkpointer, sql, args)

    def later(self, sql: str, args: tuple[Any, ...]) -> None:
        """Defer a write that a crash may lose (see ``_Later``): committed with the next
        write of this Journal, or by its thread within ``DEFER_SECONDS``; this process's
        reads see it at once (they commit it first)."""
        later = self._later
        with self._lock:
            later.items.append((sql, args))
            if not later.running() and not later.stop.is_set():
                thread = threading.Thread(
                    target=_flush_later,
                    args=(self._db, self._lock, later, self._checkpointer),
                    name="report-gateway-journal-writes",
                    daemon=True,
                )
                try:
                    thread.start()
                except RuntimeError:
                    # No thread to be had: commit it now, as an ordinary write.
                    _commit(self._db, later, self._checkpointer)
                    return
                later.thread, later.pid = thread, os.getpid()
            elif later.stop.is_set():  # closed: fails as any write would
                _commit(self._db, later, self._checkpointer)
                return
        later.wake.set()

    def _commit_later(self) -> None:
        """Before a read (the lock held): this process's deferred writes are read back. A
        deferred run id matters even to a read by run id: until it is written, an older
        entry with the same run id (a sandbox's, after a restart) would be the newest."""
        if self._later.items:
            _commit(self._db, self._later, self._checkpointer)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[JournalEntry]:
        with self._lock:
            self._commit_later()
            rows = self._db.execute(sql, args).fetchall()
        return [_entry(row) for row in rows]

    # -- writes -----------------------------------------------------------------------------

    def begin(
        self,
        provider: str,
        report_id: str,
        scope: Scope,
        parameters: Mapping[str, Any],
        *,
        key: str,
        credential: str = "",
        output: str | os.PathLike[str] | None = None,
        endpoint: Mapping[str, str] | None = None,
    ) -> JournalEntry:
        """Write a start down before its create request goes out (``key``: its idempotency
        key; a job retried with the same key gets an entry of its own; ``endpoint``: the
        provider's non-secret endpoint settings, for ``resume``)."""
        with self._lock:
            return self._insert(
                provider, report_id, scope, parameters, key=key, credential=credential,
                output=output, endpoint=endpoint,
            )  # fmt: skip

    def _insert(
        self,
        provider: str,
        report_id: str,
        scope: Scope,
        parameters: Mapping[str, Any],
        *,
        key: str,
        credential: str,
        output: str | os.PathLike[str] | None,
        endpoint: Mapping[str, str] | None,
        state: str = JOURNALED,
    ) -> JournalEntry:
        """Insert a new entry (the caller holds ``_lock``) and return it as a read would,
        built from the values written rather than read back (one statement less)."""
        now = self._clock()
        (params, stored), where = _stored(parameters), scope_text(scope)
        place = dict(endpoint or {})
        if all(type(v) is str for v in place.values()):  # as typed (1, True, 1.0 are equal keys)
            place_text, place_stored = _stored_place(tuple(place.items()))
            place_stored = dict(place_stored)
        else:
            place_text, place_stored = _stored(place)
        entry = JournalEntry(
            id=_new_id(),
            key=key,
            provider=provider,
            report_id=report_id,
            scope=_scope_of(where),
            # As a read gives them back (keys sorted): what every later create of the entry
            # sends (an idempotent replay must send the very same body).
            parameters=stored,
            parameters_hash=hashlib.sha256(params.encode()).hexdigest()[:32],
            credential=self.credential_tag(credential),
            run_id=None,
            state=state,
            raw_status=None,
            output=None if output is None else os.fspath(Path(output).absolute()),
            path=None,
            size=None,
            error=None,
            created_at=now,
            updated_at=now,
            endpoint=place_stored,
        )
        sql = (
            "INSERT INTO runs (id, key, provider, report_id, scope, parameters, parameters_hash,"
            " credential, state, output, created_at, updated_at, endpoint)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        args = (
            entry.id, key, provider, report_id, where, params, entry.parameters_hash,
            entry.credential, state, entry.output, now, now, place_text,
        )  # fmt: skip
        if self._db.in_transaction:  # the caller's: it commits (and the deferred writes)
            self._db.execute(sql, args)
        else:  # one commit, the deferred writes first
            _commit(self._db, self._later, self._checkpointer, sql, args)
        return entry

    def claim(
        self,
        provider: str,
        report_id: str,
        scope: Scope,
        parameters: Mapping[str, Any],
        *,
        key: str,
        credential: str = "",
        output: str | os.PathLike[str] | None = None,
        endpoint: Mapping[str, str] | None = None,
        window: float | None = None,
        sending: bool = False,
    ) -> tuple[JournalEntry, bool]:
        """The job's entry to take up, else a new one (``begin``), in one ``BEGIN IMMEDIATE``
        transaction: two processes starting the same job at once get the same entry.

        Taken up (``window``: seconds, None: never): the job's newest entry started within
        the window, when never finished or downloaded and verified. Returns the entry and
        whether it was written now. ``sending``: a new entry is written as ``sending``
        at once (a driver with idempotent creates, for which ``resume`` treats both states
        alike: its create is sent again with the same key), saving a write per start.
        """
        with self._lock:
            if window is None:  # nothing to find: one autocommitted insert
                entry = self._insert(
                    provider, report_id, scope, parameters, key=key, credential=credential,
                    output=output, endpoint=endpoint, state=SENDING if sending else JOURNALED,
                )  # fmt: skip
                return entry, True
            self._db.execute("BEGIN IMMEDIATE")
            deferred = self._later.items
            try:
                for item_sql, item_args in deferred:  # committed with this transaction
                    self._db.execute(item_sql, item_args)
                found = None
                rows = self._db.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE {_JOB}"  # noqa: S608
                    " ORDER BY created_at DESC LIMIT 1",
                    self._job_args(provider, report_id, scope, parameters, credential, endpoint),
                ).fetchall()
                latest = _entry(rows[0]) if rows else None
                if (
                    latest is not None
                    and self._clock() - latest.created_at <= window
                    and (latest.verified or latest.state not in FINISHED)
                ):
                    found = latest
                if found is None:
                    entry = self._insert(
                        provider, report_id, scope, parameters, key=key,
                        credential=credential, output=output, endpoint=endpoint,
                        state=SENDING if sending else JOURNALED,
                    )  # fmt: skip
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if deferred:
                self._later.items = []
            self._checkpointer.committed()
        if found is not None:
            return found, False
        return entry, True

    def _job_args(
        self,
        provider: str,
        report_id: str,
        scope: Scope,
        parameters: Mapping[str, Any],
        credential: str,
        endpoint: Mapping[str, str] | None,
    ) -> tuple[Any, ...]:
        return (
            provider,
            report_id,
            scope_text(scope),
            parameters_hash(parameters),
            self.credential_tag(credential),
            _canonical(dict(endpoint or {})),
        )

    def abandon(self, entry_id: str, reason: str = "abandoned by the user") -> bool:
        """Drop an unfinished entry (``resume`` leaves it); False when it is finished."""
        entry = self.get(entry_id)
        if entry is None or entry.finished:
            return False
        self.record_error(entry_id, reason, state=ABANDONED)
        return True

    def _update(self, entry_id: str, **values: Any) -> None:
        values["updated_at"] = self._clock()
        columns = ", ".join(f"{name} = ?" for name in values)
        self._write(f"UPDATE runs SET {columns} WHERE id = ?", (*values.values(), entry_id))  # noqa: S608

    def record_sending(self, entry_id: str) -> None:
        """The create request is about to go out: from now on a run may exist."""
        self._update(entry_id, state=SENDING)

    def record_run(self, entry_id: str, run: ReportRun, *, deferred: bool = False) -> None:
        """The create answered: the run's id and first status. ``deferred``: for a create
        that is idempotent, whose entry ``resume`` sends again with the same key (the same
        run back), so this write may wait for the next one (``later``)."""
        # Only while no run id is written: a copy applied late (another process took the
        # entry up with the same key and went on) never takes its state back.
        sql = (
            "UPDATE runs SET run_id = ?, state = ?, raw_status = ?, updated_at = ?"
            " WHERE id = ? AND run_id IS NULL"
        )
        args = (run.id, run.status.value, run.raw_status, self._clock(), entry_id)
        if deferred:
            self.later(sql, args)
        else:
            self._write(sql, args)

    def _run_filter(
        self,
        provider: str,
        run_id: str,
        entry_id: str | None,
        credential: str | None,
        scope: Scope | None,
        endpoint: Mapping[str, str] | None = None,
    ) -> tuple[str, tuple[Any, ...]]:
        """Which entry an update by run id means: ``entry_id`` when known; else the newest
        entry of the run id (narrowed to ``credential``, ``scope`` and ``endpoint`` when
        given). Run ids are not unique across jobs (a sandbox's repeat after a restart, two
        sandboxes), so an update never reaches an older job's entry."""
        if entry_id is not None:
            return "id = ?", (entry_id,)
        where, args = "provider = ? AND run_id = ?", [provider, run_id]
        if credential is not None:
            where += " AND credential = ?"
            args.append(self.credential_tag(credential))
        if scope is not None:
            where += " AND scope = ?"
            args.append(scope_text(scope))
        if endpoint is not None:
            where += f" AND {_ENDPOINT} = ?"
            args.append(_canonical(dict(endpoint)))
        return (
            f"id = (SELECT id FROM runs WHERE {where} ORDER BY created_at DESC LIMIT 1)",  # noqa: S608
            tuple(args),
        )

    def record_status(
        self,
        provider: str,
        run_id: str,
        status: RunStatus | str,
        raw: str | None = None,
        *,
        entry_id: str | None = None,
        credential: str | None = None,
        scope: Scope | None = None,
        deferred: bool = False,
    ) -> int:
        """A run's new status, from whoever learnt it (a poll, a webhook listener in another
        process); returns how many entries it updated (0: not a journaled run; -1 when
        ``deferred``: a poll's, which the next poll learns again should a crash lose it,
        written with the next write, ``later``). Only the
        run's newest entry is updated (see ``_run_filter``). A downloaded entry keeps its
        state, and a finished one is never taken back to running: a provider never restarts a
        finished run, so a poll answered before a listener's event was written is merely older."""
        new = status if isinstance(status, RunStatus) else RunStatus(status)
        kept = (DOWNLOADED, ABANDONED) + (() if new.is_terminal else _ENDED)
        marks = ", ".join("?" * len(kept))
        which, args = self._run_filter(provider, run_id, entry_id, credential, scope)
        sql = (
            "UPDATE runs SET state = ?, raw_status = COALESCE(?, raw_status), updated_at = ?"  # noqa: S608
            f" WHERE {which} AND run_id = ? AND state NOT IN ({marks})"
        )
        values = (new.value, raw, self._clock(), *args, run_id, *kept)
        if deferred:
            self.later(sql, values)
            return -1
        return self._write(sql, values)

    def record_download(
        self,
        provider: str,
        run_id: str,
        path: str | os.PathLike[str],
        size: int,
        *,
        entry_id: str | None = None,
        credential: str | None = None,
        scope: Scope | None = None,
    ) -> int:
        """A verified result file of a journaled run (returns the entries updated: the one
        ``_run_filter`` picks)."""
        which, args = self._run_filter(provider, run_id, entry_id, credential, scope)
        return self._write(
            "UPDATE runs SET state = ?, path = ?, size = ?, error = NULL, updated_at = ?"  # noqa: S608
            f" WHERE {which} AND run_id = ?",
            (DOWNLOADED, os.fspath(Path(path).absolute()), size, self._clock(), *args, run_id),
        )

    def record_keep_existing(
        self,
        provider: str,
        run_id: str,
        *,
        credential: str | None = None,
        scope: Scope | None = None,
        endpoint: Mapping[str, str] | None = None,
    ) -> int:
        """A download of the run was asked not to replace an existing file: written before
        its transfer, so a ``resume`` after a refusal or a crash keeps that file too
        (returns the entries updated: the one ``_run_filter`` picks; ``endpoint``: the
        downloading gateway's, so another endpoint's job with the same run id is left as
        it is, its file still replaceable and this one's kept)."""
        which, args = self._run_filter(provider, run_id, None, credential, scope, endpoint)
        return self._write(
            "UPDATE runs SET keep_existing = 1, updated_at = ?"  # noqa: S608
            f" WHERE {which} AND run_id = ?",
            (self._clock(), *args, run_id),
        )

    def record_error(
        self, entry_id: str, error: BaseException | str, *, state: str | None = None
    ) -> None:
        """Why an entry stopped (``state``: ``abandoned``, ``lost``; None: state unchanged)."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        if state is None:
            self._update(entry_id, error=text[:2000])
        else:
            self._update(entry_id, error=text[:2000], state=state)

    # -- reads ------------------------------------------------------------------------------

    def get(self, entry_id: str) -> JournalEntry | None:
        """One entry by its id."""
        found = self._read(f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE id = ?", (entry_id,))  # noqa: S608
        return found[0] if found else None

    def status_of(self, provider: str, run_id: str) -> JournalEntry | None:
        """The newest entry of a run (what a waiting process reads between polls)."""
        found = self._read(
            f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE provider = ? AND run_id = ?"  # noqa: S608
            " ORDER BY updated_at DESC LIMIT 1",
            (provider, run_id),
        )
        return found[0] if found else None

    def ended_at(self, provider: str, run_id: str) -> float | None:
        """When the run's newest entry was written down as ended (succeeded, failed,
        canceled or downloaded), else None; what a ``wait`` checks every second or so
        (``events.RunEvents.watch``), so a listener in another process can end it.

        One indexed read of two columns. A journal that cannot be read answers None: the
        wait then goes on polling, which stays the truth.
        """
        try:
            with self._lock:
                self._commit_later()
                row = self._db.execute(
                    "SELECT state, updated_at FROM runs WHERE provider = ? AND run_id = ?"
                    " ORDER BY updated_at DESC LIMIT 1",
                    (provider, run_id),
                ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or row[0] not in (*_ENDED, DOWNLOADED):
            return None
        return float(row[1])

    def now(self) -> float:
        """The journal's clock (unix seconds), as its entries' times are written."""
        return self._clock()

    def ended_since(self, since: float) -> list[tuple[str, str, float]]:
        """(provider, run id, when) of every entry written down as ended after ``since``
        (a ``time.time()``): ``ended_at`` for many waits at once, one indexed range read
        (the fan-out's shared waiter checks its thousands of runs this way). A journal
        that cannot be read answers nothing, as ``ended_at`` does."""
        ended = (*_ENDED, DOWNLOADED)
        try:
            with self._lock:
                self._commit_later()
                rows = self._db.execute(
                    "SELECT provider, run_id, updated_at FROM runs WHERE updated_at > ?"  # noqa: S608
                    f" AND run_id IS NOT NULL AND state IN ({', '.join('?' * len(ended))})",
                    (since, *ended),
                ).fetchall()
        except sqlite3.Error:
            return []
        return [(str(p), str(r), float(t)) for p, r, t in rows]

    def latest(
        self,
        provider: str,
        report_id: str,
        scope: Scope,
        parameters: Mapping[str, Any],
        *,
        credential: str = "",
        endpoint: Mapping[str, str] | None = None,
    ) -> JournalEntry | None:
        """The newest entry of the same job (provider, report, scope, parameters, key, and
        endpoint: a run against another base URL is another job's)."""
        found = self._read(
            f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE {_JOB}"  # noqa: S608
            " ORDER BY created_at DESC LIMIT 1",
            self._job_args(provider, report_id, scope, parameters, credential, endpoint),
        )
        return found[0] if found else None

    def newer(self, entry: JournalEntry) -> JournalEntry | None:
        """The newest entry started after ``entry`` of the same job, or meant for the same
        file: what ``resume`` must not overwrite with ``entry``'s older result."""
        args: tuple[Any, ...] = (
            entry.provider, entry.report_id, scope_text(entry.scope),
            entry.parameters_hash, entry.credential, _canonical(dict(entry.endpoint)),
        )  # fmt: skip
        where = f"({_JOB})"
        if entry.output is not None:
            where += " OR output = ?"
            args += (entry.output,)
        found = self._read(
            f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE ({where})"  # noqa: S608
            " AND created_at > ? AND id != ? ORDER BY created_at DESC LIMIT 1",
            (*args, entry.created_at, entry.id),
        )
        return found[0] if found else None

    def neighbours(self, entry: JournalEntry, since: float) -> list[JournalEntry]:
        """The other entries of the same provider, report and scope created at or after
        ``since`` (a lookup of ``entry``'s run cannot tell theirs from it)."""
        return self._read(
            f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE provider = ? AND report_id = ?"  # noqa: S608
            " AND scope = ? AND created_at >= ? AND id != ?",
            (entry.provider, entry.report_id, scope_text(entry.scope), since, entry.id),
        )

    def owned_run_ids(self, entry: JournalEntry) -> frozenset[str]:
        """The run ids recorded on the provider's other entries (no lookup may adopt them)."""
        with self._lock:
            self._commit_later()
            rows = self._db.execute(
                "SELECT DISTINCT run_id FROM runs WHERE provider = ? AND run_id IS NOT NULL"
                " AND id != ?",
                (entry.provider, entry.id),
            ).fetchall()
        return frozenset(row[0] for row in rows)

    def entries(
        self, *, since: float | None = None, unfinished: bool = False
    ) -> list[JournalEntry]:
        """Entries updated at or after ``since`` (unix seconds), oldest first;
        ``unfinished``: only those with something left to do."""
        found = self._read(
            f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE updated_at >= ?"  # noqa: S608
            " ORDER BY created_at, id",
            (since or 0.0,),
        )
        return [e for e in found if not e.finished] if unfinished else found


def _holders_after_fork_in_child() -> None:
    # A fork while another thread opens a gateway's journal (its holder's lock held) would
    # leave the child's copy of that lock held forever: the child's first start would
    # hang. The child gets free locks; a holder caught mid-open opens the journal anew.
    for holder in list(_holders):
        holder._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_holders_after_fork_in_child)


class JournalHolder:
    """A Gateway's journal, opened on first use from its resolved ``journal`` option.

    An explicitly named journal that cannot be opened is a ``ConfigurationError``; the
    default one (the user data folder may be read-only) is a warning, and the Gateway
    then works without it.
    """

    def __init__(self, options: GatewayOptions) -> None:
        self._setting = options.journal
        self._explicit = bool(options.origin("journal"))
        self._journal: Journal | None = None
        self._opened = False
        self._lock = threading.Lock()
        _holders.add(self)

    def get(self) -> Journal | None:
        if self._opened:
            return self._journal
        with self._lock:
            if not self._opened:
                self._journal = self._open()
                self._opened = True
        return self._journal

    def _open(self) -> Journal | None:
        if self._setting == "":
            return None
        if self._setting is not None:
            return Journal(self._setting)
        try:
            return Journal(default_journal_path())
        except ConfigurationError as exc:
            if self._explicit:
                raise
            warnings.warn(f"{exc}; runs are not journaled", stacklevel=4)
            return None

    def changed(self, run: ReportRun, credential: str) -> None:
        """Note the run's new status, when the journal is on: on the newest entry of the run
        under these credentials and scope (run ids repeat: a sandbox's after a restart)."""
        journal = self.get()
        if journal is not None:
            journal.record_status(
                run.provider, run.id, run.status, run.raw_status,
                credential=credential, scope=run.scope, deferred=True,
            )  # fmt: skip

    def downloaded(self, run: ReportRun, path: Path, credential: str) -> None:
        """Note the run's verified result file and its size, when the journal is on (on
        the entry ``changed`` would pick)."""
        journal = self.get()
        if journal is not None:
            journal.record_download(
                run.provider, run.id, path, path.stat().st_size,
                credential=credential, scope=run.scope,
            )  # fmt: skip

    def keeping_existing(
        self, run: ReportRun, credential: str, endpoint: Callable[[], Mapping[str, str]]
    ) -> None:
        """Note that the run's result must not replace an existing file, when the journal is
        on (``resume`` then downloads it with ``overwrite=False``), on the entry of the
        run's job at ``endpoint()`` (asked only when the journal is on)."""
        journal = self.get()
        if journal is not None:
            journal.record_keep_existing(
                run.provider, run.id, credential=credential, scope=run.scope,
                endpoint=endpoint(),
            )  # fmt: skip

    def close(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
            self._journal, self._opened = None, False


# -- starts that consult the journal ----------------------------------------------------------

#: ``create(provider, report_id, parameters, scope, key, sending)``: the Gateway's create,
#: calling ``sending()`` right before each request it sends.
Create = Callable[[str, str, Mapping[str, Any], Scope, str, Callable[[], None]], ReportRun]


class Starts:
    """The one route of every start: ``Gateway.start``, each scope of ``run_many`` and each
    entry ``resume`` finishes. The scope is checked against what the provider declares
    (``Drivers.where``) before anything is journaled or sent, so no path can report on the
    wrong account; the journal is consulted when it is on.

    ``announce`` tells the ``report_gateway_run_changed`` hooks of a created run; the
    journal is not written through it, since a journaled start writes the run id with its
    first status itself (``record_run``: one write, where a status write could not even
    find the entry, its run id not yet known).
    """

    def __init__(
        self,
        gateway: Gateway,
        drivers: Drivers,
        admissions: Admissions,
        announce: Callable[[ReportRun, ReportRun | None], None],
    ) -> None:
        self._gateway, self._drivers = gateway, drivers
        self._admissions, self._announce = admissions, announce
        #: Per provider: its driver and the endpoint settings it was made with.
        self._endpoints: dict[str, tuple[ProviderDriver, dict[str, str]]] = {}

    def endpoint(self, provider: str) -> dict[str, str]:
        """``endpoint_settings`` as the provider's driver was made with them: resolving the
        layered settings costs more than a journal write, and the driver (hence where its
        runs go) is made once; a new driver reads them anew."""
        driver = self._drivers.get(provider)
        known = self._endpoints.get(provider)
        if known is None or known[0] is not driver:
            known = self._endpoints[provider] = (driver, endpoint_settings(self._gateway, provider))
        return known[1]

    def _creator(self, on_progress: Callable[[StartProgress], None] | None) -> Create:
        """The create every start sends: admitted (``Admissions.start``), then announced."""
        gateway = self._gateway

        def create(
            provider: str,
            report_id: str,
            params: Mapping[str, Any],
            where: Scope,
            key: str,
            sending: Callable[[], None],
        ) -> ReportRun:
            progress = start_reporter(provider, report_id, on_progress)
            spec, driver = gateway.spec(provider), self._drivers.get(provider)
            key_id, calls = gateway.credential_id(provider), self._drivers.calls[provider]
            with provider_errors(provider, scrub=gateway.scrub):
                run = self._admissions.start(
                    spec, key_id, driver, calls, report_id, params, where,
                    key=key, sending=sending, progress=progress,
                )  # fmt: skip
            self._announce(run, None)
            return run

        return create

    def start(
        self,
        provider: str,
        report_id: str,
        parameters: Mapping[str, Any],
        scope: Scope | None,
        *,
        key: str,
        reuse: Reuse,
        on_progress: Callable[[StartProgress], None] | None = None,
        output: str | os.PathLike[str] | None = None,
    ) -> tuple[ReportRun | None, JournalEntry | None]:
        """The run (None: the journal's entry is already downloaded and verified) and its
        entry (None when the journal is off); see ``journaled_start``."""
        where = self._drivers.where(provider, scope)
        reuse_window(reuse)  # a bad value is named before anything is sent
        create = self._creator(on_progress)
        journal = self._gateway.journal
        if journal is None:
            return create(provider, report_id, parameters, where, key, lambda: None), None
        return journaled_start(
            self._gateway, journal, create, provider, report_id, parameters, where,
            key=key, reuse=reuse, output=output, endpoint=self.endpoint(provider),
        )  # fmt: skip

    def run(
        self,
        provider: str,
        report_id: str,
        parameters: Mapping[str, Any],
        scope: Scope | None,
        *,
        key: str | None,
        reuse: Reuse,
        on_progress: Callable[[StartProgress], None] | None = None,
        output: str | os.PathLike[str] | None = None,
    ) -> ReportRun:
        """``start``'s run, a verified entry's as it is now (``Gateway.start``); a new
        idempotency key unless ``key``."""
        key = key or str(uuid.uuid4())
        run, entry = self.start(
            provider, report_id, parameters, scope, key=key, reuse=reuse,
            on_progress=on_progress, output=output,
        )  # fmt: skip
        if run is None and output is None:  # downloaded and verified: its run, as it is now
            assert entry is not None
            assert entry.run_id is not None
            with contextlib.suppress(RunNotFoundError):  # the provider forgot it: start anew
                return self._gateway.get(provider, entry.run_id, scope=entry.scope)
        if run is None:
            # A file is asked for again (``run -o FILE`` once more): that day's data, from a
            # new run; only an unfinished run is taken up.
            run, _ = self.start(
                provider, report_id, parameters, scope, key=key, reuse=False,
                on_progress=on_progress, output=output,
            )  # fmt: skip
            assert run is not None
        return run

    def resume(
        self, journal: Journal, entry: JournalEntry, *, any_endpoint: bool = False
    ) -> ReportRun:
        """An unfinished entry's run (``resume_entry``), its scope checked first, and its
        endpoint: an entry started against another endpoint is refused (its run id sent to
        this gateway's host could reach another account's, even production), unless
        ``any_endpoint`` (the user named where its runs are now)."""
        self._drivers.where(entry.provider, entry.scope)
        here = endpoint_settings(self._gateway, entry.provider)
        if not any_endpoint and here != dict(entry.endpoint):
            raise ConfigurationError(
                f"{entry.provider} run of {entry.report_id} was started against "
                f"{_endpoint_text(entry.endpoint)}, this gateway's {entry.provider} endpoint is "
                f"{_endpoint_text(here)}: finish it with `report-gateway resume` (one "
                "gateway per endpoint) or a Gateway configured with that endpoint"
            )
        return resume_entry(self._gateway, journal, self._creator(None), entry)


def _endpoint_text(endpoint: Mapping[str, str]) -> str:
    if not endpoint:
        return "the default host"
    return ", ".join(f"{k}={v}" for k, v in sorted(endpoint.items()))


def _refused(exc: BaseException) -> bool:
    """Whether a failed create certainly made no run (so the entry is finished)."""
    if isinstance(exc, RunLimitError):
        return True
    if isinstance(exc, ProviderError):
        if not exc.request_sent:
            return True
        status = exc.status
        return status is not None and 400 <= status < 500 and status not in (409, 429)
    return isinstance(exc, GatewayError) and not isinstance(exc, RunMayExistError)


def journaled_start(
    gateway: Gateway,
    journal: Journal,
    create: Create,
    provider: str,
    report_id: str,
    parameters: Mapping[str, Any],
    scope: Scope,
    *,
    key: str,
    reuse: Reuse,
    output: str | os.PathLike[str] | None = None,
    endpoint: Mapping[str, str] | None = None,
) -> tuple[ReportRun | None, JournalEntry]:
    """Start a run with the journal: reuse the job's entry when asked, else a new one
    (``endpoint``: the provider's ``endpoint_settings``, looked up when None).

    Returns the run (None when the entry was already downloaded and verified: nothing to
    do) and the entry it belongs to (``entry.key != key``: an earlier one, reused). A run
    that never finished is returned as a fresh snapshot (wait on it); one failed, canceled,
    refused, lost, or downloaded to a file no longer there starts anew.
    """
    credential = gateway.credential_id(provider)
    idempotent = bool(getattr(gateway.driver(provider), "idempotent_create", False))
    if endpoint is None:
        endpoint = endpoint_settings(gateway, provider)
    # Taken up within the window only (``Journal.claim``): the same command on another
    # night wants that night's data (a report without dates gives whatever is current);
    # ``resume`` still finishes an old entry left unfinished. One downloaded to a file since
    # moved or changed is not taken up either. Find-or-write is one transaction, so two
    # processes starting the same job at once share the entry and its idempotency key.
    entry, new = journal.claim(
        provider, report_id, scope, parameters, key=key, credential=credential,
        output=output, endpoint=endpoint, window=reuse_window(reuse), sending=idempotent,
    )  # fmt: skip
    if new:
        crash_point("after-journal")
        return _create_for(journal, create, entry), entry
    if entry.verified:
        return None, entry
    # Never finished (running, a create maybe lost, succeeded but not downloaded): the same
    # run. Another process may be sending its create right now: without idempotent
    # creates, its run id is waited for a while rather than a second run made.
    if entry.run_id is None and not idempotent:
        entry = _await_run_id(journal, entry)
    try:
        return resume_entry(gateway, journal, create, entry), entry
    except RunNotFoundError as exc:
        # The provider no longer knows the run (a sandbox restarted, runs expired): nothing
        # to take up; the entry is abandoned and the job started anew.
        journal.record_error(entry.id, exc, state=ABANDONED)
    entry, _ = journal.claim(
        provider, report_id, scope, parameters, key=key, credential=credential,
        output=output, endpoint=endpoint, sending=idempotent,
    )  # fmt: skip
    crash_point("after-journal")
    return _create_for(journal, create, entry), entry


#: How long a start waits for the run id of the same job's entry another process is
#: creating (a create without idempotency key), before looking for the run itself.
TAKE_UP_SECONDS = 30.0


def _await_run_id(journal: Journal, entry: JournalEntry) -> JournalEntry:
    """``entry`` once its run id is written (or it finished, or it was left untouched for
    ``TAKE_UP_SECONDS``: its process is gone, ``resume_entry`` resolves it)."""
    while entry.run_id is None and not entry.finished:
        if journal.now() - entry.updated_at > TAKE_UP_SECONDS:
            break
        time.sleep(0.1)
        fresh = journal.get(entry.id)
        if fresh is None:
            break
        entry = fresh
    return entry


#: How long a job's journal entry is taken up again by ``reuse=True`` (seconds): a re-run
#: after a crash or a failed scope, the same day, finishes the job without a second run; the
#: next night's run of the same command starts anew.
DEFAULT_REUSE_WINDOW = 12 * 3600.0

#: ``reuse=``: True (within ``DEFAULT_REUSE_WINDOW``), False, or a window in seconds.
Reuse = bool | float


def reuse_window(reuse: Reuse) -> float | None:
    """The reuse window in seconds, None when reuse is off; a bad value is named."""
    if isinstance(reuse, bool):
        return DEFAULT_REUSE_WINDOW if reuse else None
    if not isinstance(reuse, int | float) or reuse != reuse or reuse <= 0:
        raise ConfigurationError(
            f"reuse must be True, False or a window in seconds above 0, not {reuse!r}"
        )
    return float(reuse)


#: The provider settings that say where its API is: journaled with each start (they hold no
#: secret), so ``resume`` reaches a run started against another endpoint (a sandbox).
ENDPOINT_SETTINGS = ("base_url", "files_base_url")


def endpoint_settings(gateway: Gateway, provider: str) -> dict[str, str]:
    """The provider's endpoint settings as set in some layer (none: its default hosts)."""
    try:
        settings = gateway.settings(provider)
    except GatewayError:
        return {}
    return {k: str(settings[k]) for k in ENDPOINT_SETTINGS if settings.get(k)}


def _nothing() -> None:
    pass


def _create_for(journal: Journal, create: Create, entry: JournalEntry) -> ReportRun:
    """Send the entry's create, then write down its run (id and first status: one write).

    The entry is marked ``sending`` before each attempt (its ``updated_at`` tells a process
    waiting for the run id that this one is alive), except one written so at once
    (idempotent creates: nobody waits for its run id, a resume sends it again).
    """

    def sending() -> None:
        journal.record_sending(entry.id)

    try:
        run = create(
            entry.provider, entry.report_id, entry.parameters, entry.scope, entry.key,
            _nothing if entry.state == SENDING else sending,
        )  # fmt: skip
    except BaseException as exc:
        if isinstance(exc, RunMayExistError):
            journal.record_error(entry.id, exc, state=LOST)
        elif isinstance(exc, Exception) and _refused(exc):
            journal.record_error(entry.id, exc, state=ABANDONED)
        else:
            journal.record_error(entry.id, exc)  # ambiguous: resume resolves it
        raise
    crash_point("after-create")
    # Idempotent creates (the entry was written ``sending``): a crash before this write
    # commits leaves the entry as if the answer never came, and ``resume`` sends the same
    # create with the same key, which gives back this run; so it waits for the next write.
    journal.record_run(entry.id, run, deferred=entry.state == SENDING)
    return run


def resume_entry(
    gateway: Gateway, journal: Journal, create: Create, entry: JournalEntry
) -> ReportRun:
    """The run of an unfinished entry: a fresh snapshot of it, or the create resolved.

    Raises ``RunMayExistError`` (the entry is then ``lost``) when a create may have made a
    run that neither an idempotent retry nor the driver's lookup can recover.
    """
    if entry.run_id is not None:
        return gateway.get(entry.provider, entry.run_id, scope=entry.scope)
    if entry.state == JOURNALED:
        return _create_for(journal, create, entry)  # the request never left
    driver = gateway.driver(entry.provider)
    if getattr(driver, "idempotent_create", False):
        return _create_for(journal, create, entry)  # the same key: the same run
    find = getattr(driver, "find_created", None)
    started = datetime.fromtimestamp(entry.created_at).astimezone()
    try:
        if find is None:
            raise RunMayExistError(
                entry.provider,
                entry.report_id,
                "the process ended while the create was being sent, and the provider has "
                "neither idempotent creates nor a lookup",
                started_after=started,
            )
        _lookup_can_tell(journal, entry, started)
        validated = gateway.validate(
            entry.provider, entry.report_id, entry.parameters, scope=entry.scope
        )
        owned = journal.owned_run_ids(entry)
        # ``exclude``: the run ids other entries own, for a lookup that takes them (Zuora's).
        extra = {"exclude": owned} if "exclude" in inspect.signature(find).parameters else {}
        run: ReportRun = find(
            entry.report_id, validated, scope=entry.scope, started_after=started, **extra
        )
        if run.id in owned:  # a driver without ``exclude``
            raise RunMayExistError(
                entry.provider, entry.report_id,
                f"the run found ({run.id}) belongs to another journal entry",
                started_after=started,
            )  # fmt: skip
    except RunMayExistError as exc:
        journal.record_error(entry.id, exc, state=LOST)
        raise
    journal.record_run(entry.id, run)
    return run


#: How much earlier than an entry another entry may have been started and still have
#: made its run after it (clocks of processes, the provider's ``startedOn``).
_LOOKUP_SKEW = 120.0


def _lookup_can_tell(journal: Journal, entry: JournalEntry, started: datetime) -> None:
    """Refuse a lookup that could adopt another job's run: another entry of the same report
    and scope with other parameters, started around or after this one, may have made the
    run the lookup would find (it sees only report, scope and start time)."""
    others = [
        e
        for e in journal.neighbours(entry, entry.created_at - _LOOKUP_SKEW)
        if e.parameters_hash != entry.parameters_hash and e.state != JOURNALED
    ]
    if others:
        raise RunMayExistError(
            entry.provider,
            entry.report_id,
            "the process ended while the create was being sent, and another job ran the same "
            f"report and scope with other parameters since ({len(others)} in the journal), so "
            "a lookup cannot tell this job's run from theirs",
            started_after=started,
            hint=(
                f"check `report-gateway last {entry.provider} {entry.report_id}` (and the "
                f"provider's runs started after {started.isoformat(timespec='seconds')}) "
                "before starting it again"
            ),
        )


def iter_since(text: str | None, *, now: float | None = None) -> float | None:
    """``--since`` as unix seconds: an ISO date/datetime, or a duration (``90m``, ``2h``,
    ``7d``, ``30s``) back from now."""
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    now = time.time() if now is None else now
    word = text.strip()
    if word[-1:] in units and word[:-1].replace(".", "", 1).isdigit():
        return now - float(word[:-1]) * units[word[-1]]
    try:
        moment = datetime.fromisoformat(word)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected an ISO date or datetime, or a duration like 2h or 7d"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


def unfinished(journal: Journal) -> Iterator[JournalEntry]:
    """Entries with a wait or a download left (what ``report-gateway resume`` finishes)."""
    yield from journal.entries(unfinished=True)
