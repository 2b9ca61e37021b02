"""Fan-out: the same report for many scopes (connected accounts, contexts, entities).

A platform runs one report for hundreds of accounts a night. ``run_many`` gives each scope
its own run, waited on and downloaded to its own file, with at most ``max_concurrency``
scopes in flight at once (a scope holds its place from its start to its verified file or
failure). A few threads start runs and a few download results, shared by the Gateway's
fan-outs running at the time; a waiting run is a record
in one shared ``waiter.Waiter`` (one scheduler thread, a small poll pool, the same
``polling.Polling`` rules as ``Gateway.wait``), so ten thousand waiting runs cost ten
thousand small records, not ten thousand threads, and a scope still queued costs nothing
but its task. The provider's own limit (Stripe v2's 429 over its concurrent runs) is absorbed by the
admission line as for any start. A scope's failure is collected with its run id, never
stopping the others. Every start goes through the journal (``report_gateway.journal``):
a scope already downloaded and verified is skipped, one still running is waited on again,
so running the same fan-out after a crash finishes it; ``resume`` finishes every
unfinished entry of the journal, whatever started it.
"""

from __future__ import annotations

import csv
import functools
import os
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import attrs

from .download import _replace, download_target, not_a_file, safe_name
from .errors import ConfigurationError, DownloadError, ParameterError
from .journal import ABANDONED, JournalEntry, crash_point, endpoint_settings, reuse_window
from .models import ReportRun, RunStatus, Scope
from .polling import finish
from .waiter import POLLERS, Waiter, gateway_paces
from .waiter import Stopped as _Stopped

if TYPE_CHECKING:
    from .gateway import Gateway

__all__ = [
    "DEFAULT_CONCURRENCY",
    "SCOPE_COLUMN",
    "FanOutInterrupted",
    "FanOutProgress",
    "FanOutResult",
    "ScopeOutcome",
    "combine_csv",
    "file_names",
    "plan_outputs",
    "resume",
    "run_many",
    "scope_label",
]

#: Runs a fan-out keeps active when neither ``max_concurrency`` nor ``max_active_runs`` says.
DEFAULT_CONCURRENCY = 8
#: The leading column of a combined CSV: which scope the row came from.
SCOPE_COLUMN = "scope"

# A scope's states, in order; the last four are final.
QUEUED, STARTING, RUNNING, DOWNLOADING = "queued", "starting", "running", "downloading"
DONE, SKIPPED, FAILED, INTERRUPTED = "done", "skipped", "failed", "interrupted"
#: ``resume`` only: an entry a newer entry of the same job (or file) replaced, abandoned.
SUPERSEDED = "superseded"
#: How often a fan-out's main thread looks whether Ctrl-C came.
_STOP_CHECK_SECONDS = 0.5
#: Threads that start runs, and that download results, shared by every fan-out of one
#: Gateway running at the time (made as work comes, so never more than that work needs);
#: polls are ``waiter.POLLERS`` threads more, waits none.
STARTERS = 16
DOWNLOADERS = 16


def scope_label(scope: Scope) -> str:
    """What names a scope in file names, the combined CSV and the summary: its one set
    field's value (``acct_1``), fields joined with ``+`` if several, ``default`` if none."""
    values = list(scope.fields().values())
    return "+".join(values) if values else "default"


def file_names(scopes: Sequence[Scope], suffix: str = ".csv") -> list[str]:
    """One safe, distinct file name per scope (``acct_1.csv``; ``a_b-2.csv`` when two
    scopes clean up to the same name)."""
    names: list[str] = []
    taken: set[str] = set()
    for scope in scopes:
        stem = safe_name(scope_label(scope), fallback="default", name_max=200)
        name, number = stem + suffix, 1
        while name.lower() in taken:
            number += 1
            name = f"{stem}-{number}{suffix}"
        taken.add(name.lower())
        names.append(name)
    return names


@attrs.frozen(kw_only=True)
class FanOutProgress:
    """The fan-out's counts after one scope changed state (``scope`` moved to ``state``).

    ``running`` counts scopes between start and saved file (starting, waiting, downloading).
    """

    total: int
    queued: int
    running: int
    done: int
    failed: int
    skipped: int
    scope: Scope
    state: str
    run_id: str | None = None


@attrs.frozen(kw_only=True)
class ScopeOutcome:
    """What became of one scope: ``done`` (``path``, ``size``), ``skipped`` (already
    downloaded and verified: the journal's ``path``) or ``failed`` (``error``; ``run_id``
    when a run exists: resume or inspect it); with ``resume``, also ``superseded`` (a newer
    entry of the same job or file exists: ``error`` says which; nothing was downloaded)."""

    scope: Scope
    state: str
    run_id: str | None = None
    run: ReportRun | None = attrs.field(default=None, repr=False, eq=False)
    path: Path | None = None
    size: int | None = None
    error: BaseException | None = attrs.field(default=None, eq=False)
    #: When the journal entry whose run this is was started, if earlier than this fan-out
    #: (a run reused, or a file skipped); None: a run started now.
    reused_from: float | None = None
    #: A failed scope's file from an earlier run, left in place (never deleted: it is the
    #: user's), and when it was last written: not this fan-out's data.
    stale: Path | None = None
    stale_from: float | None = None

    @property
    def ok(self) -> bool:
        return self.state in (DONE, SKIPPED, SUPERSEDED)

    def as_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope.fields(),
            "label": scope_label(self.scope),
            "state": self.state,
            "run_id": self.run_id,
            "path": None if self.path is None else str(self.path),
            "size": self.size,
            "reused_from": None
            if self.reused_from is None
            else datetime.fromtimestamp(self.reused_from)
            .astimezone()
            .isoformat(timespec="seconds"),
            "error": None
            if self.error is None
            else {"type": type(self.error).__name__, "message": str(self.error)},
            "stale": _left(self.stale, self.stale_from),
        }


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def _left(path: Path | None, stamp: float | None) -> dict[str, str] | None:
    """A file left in place from an earlier run, as JSON: its path and last write."""
    if path is None or stamp is None:
        return None
    return {"path": str(path), "modified": _when(stamp)}


@attrs.frozen(kw_only=True)
class FanOutResult:
    """Every scope's outcome (in the order the scopes were given) and the summary."""

    outcomes: tuple[ScopeOutcome, ...]
    combined: Path | None = None
    peak_active: int = 0
    elapsed: float = 0.0
    #: Labels of the scopes the combined file lacks (they failed): it is partial.
    combined_lacks: tuple[str, ...] = ()
    #: No combined file was written (every scope failed), but one of that name from an
    #: earlier run is there, left unchanged: its path and last write.
    combined_stale: Path | None = None
    combined_stale_from: float | None = None

    @property
    def done(self) -> list[ScopeOutcome]:
        return [o for o in self.outcomes if o.state == DONE]

    @property
    def skipped(self) -> list[ScopeOutcome]:
        return [o for o in self.outcomes if o.state == SKIPPED]

    @property
    def failed(self) -> list[ScopeOutcome]:
        return [o for o in self.outcomes if o.state == FAILED]

    @property
    def interrupted(self) -> list[ScopeOutcome]:
        return [o for o in self.outcomes if o.state == INTERRUPTED]

    @property
    def ok(self) -> bool:
        """Every scope has its verified file."""
        return not self.failed and not self.interrupted

    def summary(self) -> dict[str, int]:
        counts = {
            "total": len(self.outcomes),
            "done": len(self.done),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "peak_active": self.peak_active,
        }
        if self.interrupted:  # only a fan-out stopped by Ctrl-C has any
            counts["interrupted"] = len(self.interrupted)
        superseded = [o for o in self.outcomes if o.state == SUPERSEDED]
        if superseded:  # only resume has any
            counts["superseded"] = len(superseded)
        return counts

    def as_json(self) -> dict[str, Any]:
        return {
            "summary": {**self.summary(), "elapsed_seconds": round(self.elapsed, 3)},
            "combined": None if self.combined is None else str(self.combined),
            "combined_lacks": list(self.combined_lacks),
            "combined_stale": _left(self.combined_stale, self.combined_stale_from),
            "outcomes": [o.as_json() for o in self.outcomes],
        }


class FanOutInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a fan-out: ``result`` holds every scope's outcome (``interrupted``
    with its run id when one was started; not started ones are journaled, so the same
    fan-out run again, or ``resume``, finishes them)."""

    def __init__(self, result: FanOutResult) -> None:
        super().__init__("fan-out interrupted")
        self.result = result


class _Tracker:
    """Counts scopes per state and active runs; reports each change, one at a time."""

    def __init__(self, total: int, report: Callable[[FanOutProgress], None] | None) -> None:
        self.counts = {QUEUED: total, RUNNING: 0, DONE: 0, FAILED: 0, SKIPPED: 0}
        self.counts[INTERRUPTED] = 0
        self.total = total
        self.active = 0
        self.peak = 0
        self._report = report
        #: A KeyboardInterrupt or SystemExit the progress callback raised: the fan-out stops.
        self.interrupt: BaseException | None = None
        self._lock = threading.Lock()
        self._report_lock = threading.Lock()  # reports in order, outside the counting lock

    def move(self, scope: Scope, old: str, new: str, run_id: str | None = None) -> None:
        with self._report_lock:
            with self._lock:
                bucket = {STARTING: RUNNING, DOWNLOADING: RUNNING}
                self.counts[bucket.get(old, old)] -= 1
                self.counts[bucket.get(new, new)] += 1
                counts = dict(self.counts)
            if self._report is not None and bucket.get(old, old) != bucket.get(new, new):
                try:
                    self._report(
                        FanOutProgress(
                            total=self.total,
                            queued=counts[QUEUED],
                            running=counts[RUNNING],
                            done=counts[DONE],
                            failed=counts[FAILED],
                            skipped=counts[SKIPPED],
                            scope=scope,
                            state=new,
                            run_id=run_id,
                        )
                    )
                except Exception:  # a display must never cost a run
                    import logging

                    logging.getLogger(__name__).exception("fan-out progress callback failed")
                except BaseException as exc:  # KeyboardInterrupt, SystemExit
                    # Raised on a pool thread it would end that scope's task unrecorded
                    # and the fan-out would wait for it forever: it stops the fan-out
                    # instead, as Ctrl-C does (``_FanOut.execute``).
                    if self.interrupt is None:
                        self.interrupt = exc

    def run_active(self, delta: int) -> None:
        with self._lock:
            self.active += delta
            self.peak = max(self.peak, self.active)


@attrs.frozen(kw_only=True)
class _Task:
    """One scope's work: start (or resume ``entry``), wait, download to ``path``."""

    provider: str
    report_id: str
    parameters: Mapping[str, Any]
    scope: Scope
    path: Path | None
    entry: JournalEntry | None = None
    #: ``overwrite`` of the download (False: a journaled ``download(overwrite=False)``).
    overwrite: bool = True


@attrs.frozen(kw_only=True)
class _Settings:
    timeout: float | None
    poll_interval: float | None
    max_interval: float | None
    raw: bool
    reuse: bool | float
    #: ``resume(any_endpoint=True)``: entries of other endpoints go through this gateway's.
    any_endpoint: bool = False
    #: Set on Ctrl-C: every wait and download of the fan-out gives up at once.
    stop: threading.Event = attrs.field(factory=threading.Event)


def _concurrency(gw: Gateway, provider: str, given: int | None, count: int) -> int:
    if given is not None:
        if isinstance(given, bool) or given < 1:
            raise ConfigurationError(f"max_concurrency must be at least 1, not {given!r}")
        return min(given, max(1, count))
    cap = gw.options.max_active_runs
    if isinstance(cap, Mapping):
        cap = cap.get(provider)
    return min(cap or DEFAULT_CONCURRENCY, max(1, count))


def _start(
    gw: Gateway, task: _Task, settings: _Settings
) -> tuple[ReportRun | None, JournalEntry | None, bool]:
    """The task's run (None: the entry's verified file is the result), its journal entry,
    and whether that entry is an earlier one (reused) rather than started now."""
    journal = gw.journal
    if task.entry is not None and journal is not None:
        if task.entry.verified:
            return None, task.entry, True
        resumed = gw._starts.resume(journal, task.entry, any_endpoint=settings.any_endpoint)
        return resumed, task.entry, True
    key = str(uuid.uuid4())
    run, entry = gw._starts.start(
        task.provider,
        task.report_id,
        dict(task.parameters),
        task.scope,
        key=key,
        reuse=settings.reuse,
        output=task.path,
    )
    reused = entry is not None and entry.key != key
    if run is not None:
        return run, entry, reused
    assert entry is not None
    assert entry.run_id is not None
    if task.path is not None and entry.path != str(task.path.absolute()):
        # Downloaded and verified, but elsewhere: the same run's result, saved here too.
        return gw.get(task.provider, entry.run_id, scope=entry.scope), entry, True
    return None, entry, True


class KeptFileError(DownloadError):
    """``resume`` left a file that a download of the entry's run was told to keep
    (``overwrite=False``): finishing the entry again the same way refuses again, so the
    command line does not suggest it."""


def _download(
    gw: Gateway,
    run: ReportRun,
    path: Path,
    settings: _Settings,
    *,
    overwrite: bool = True,
    entry: JournalEntry | None = None,
) -> Path:
    def downloading(received: int, total: int | None) -> None:
        if settings.stop.is_set():
            raise _Stopped("interrupted while downloading")
        if received:
            crash_point("mid-download")

    target = download_target(run, path, unzip=True) if not overwrite else path
    if not overwrite and os.path.lexists(target):
        # ``resume`` of a run whose download was asked with overwrite=False: refused before
        # the transfer (the file in the output folder when the output is one), with what the
        # user can do about it; the download's own refusal says "pass overwrite=True",
        # which resume cannot.
        which = "ID" if entry is None else entry.id
        raise KeptFileError(
            f"{target} exists, and the download of {run.provider} run {run.id} was asked not "
            "to replace an existing file (overwrite=False): move that file away and resume "
            f"again, or drop the entry (report-gateway journal --abandon {which})"
        )
    # The journal notes the file on the newest entry of this run id under these
    # credentials and scope (``JournalHolder.downloaded``): this job's entry.
    return gw.download(
        run, path, unzip=True, raw=settings.raw, overwrite=overwrite, on_progress=downloading
    )


class _Engine:
    """The threads of a Gateway's fan-outs: one starter pool, one download pool and one
    ``Waiter``, shared by every ``run_many``/``resume`` of that Gateway running at the same
    time (ten calls at once used to make ten of each: 283 threads contending for one GIL
    for the work of 33), made by the first and ended when the last returns."""

    def __init__(self, gw: Gateway) -> None:
        self.starters = ThreadPoolExecutor(STARTERS, "fan-out-start")
        self.downloaders = ThreadPoolExecutor(DOWNLOADERS, "fan-out-download")
        # When a report's runs end is the Gateway's (``waiter.paced``): a nightly loop of
        # run_many calls learns it once.
        self.waiter = Waiter(gw, pollers=POLLERS, paces=gateway_paces(gw))
        self.users = 0

    def close(self) -> None:
        self.waiter.close()
        self.starters.shutdown(wait=True)
        self.downloaders.shutdown(wait=True)


_engines: weakref.WeakKeyDictionary[Gateway, _Engine] = weakref.WeakKeyDictionary()
_engines_lock = threading.Lock()


def _engine(gw: Gateway) -> _Engine:
    """The Gateway's fan-out threads, made if no fan-out of it is running; ``_let_go``
    once done with them."""
    with _engines_lock:
        engine = _engines.get(gw)
        if engine is None:
            engine = _engines[gw] = _Engine(gw)
        engine.users += 1
        return engine


def _let_go(gw: Gateway, engine: _Engine) -> None:
    """The fan-out no longer needs ``engine``: the last one to leave ends its threads."""
    with _engines_lock:
        engine.users -= 1
        last = engine.users == 0
        if last and _engines.get(gw) is engine:
            del _engines[gw]
    if last:
        engine.close()


class _FanOut:
    """One fan-out's scopes in flight: ``slots`` of them at once, a scope holding its slot
    from its start to its outcome (so never more active runs than ``slots``). Starts and
    downloads are tasks of the Gateway's two small pools (``_Engine``); a waiting run is a
    record of its one ``Waiter``, not a thread, so ten thousand waits cost ten thousand
    records.
    """

    def __init__(
        self,
        gw: Gateway,
        tasks: Sequence[_Task],
        slots: int,
        settings: _Settings,
        tracker: _Tracker,
    ) -> None:
        self.gw, self.tasks, self.settings, self.tracker = gw, tasks, settings, tracker
        self.slots = slots
        self.outcomes: list[ScopeOutcome | None] = [None] * len(tasks)
        self._lock = threading.Lock()
        self._next = 0  # the next task to launch
        self._left = len(tasks)
        self.finished = threading.Event()
        self._engine = _engine(gw)
        self._starters = self._engine.starters
        self._downloaders = self._engine.downloaders
        self._waiter = self._engine.waiter

    def execute(self) -> list[ScopeOutcome]:
        """Every task's outcome; on Ctrl-C, a ``_Partial`` with them all.

        The main thread waits in short slices, so Ctrl-C is seen at once; the scopes in
        flight then give up their waits and downloads (``settings.stop``), and the scopes
        not started are journaled so a re-run or ``resume`` does them.
        """
        # The first launches from a thread of their own: Ctrl-C (raised in the main thread
        # only) can then never fall between taking a scope and submitting its start.
        first = threading.Thread(target=self._launch_first, name="fan-out-launch", daemon=True)
        try:
            first.start()
            while not self.finished.wait(_STOP_CHECK_SECONDS):
                if self.tracker.interrupt is not None:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.settings.stop.set()
            self._waiter.interrupt()
            with self._lock:
                unstarted, self._next = range(self._next, len(self.tasks)), len(self.tasks)
            for index in unstarted:
                self._record(index, _not_started(self.gw, self.tasks[index]))
            self.finished.wait()  # quick: every wait and download in flight gives up
            self._close()
            raise _Partial([o for o in self.outcomes if o is not None]) from None
        self._close()
        return [o for o in self.outcomes if o is not None]

    def _close(self) -> None:
        _let_go(self.gw, self._engine)

    def _launch_first(self) -> None:
        for _ in range(min(self.slots, len(self.tasks))):
            self._launch()

    def _launch(self) -> None:
        with self._lock:
            if self._next >= len(self.tasks):
                return
            index, self._next = self._next, self._next + 1
        self._starters.submit(self._begin, index)

    def _record(self, index: int, outcome: ScopeOutcome) -> None:
        """A scope's outcome: its slot goes to the next scope."""
        with self._lock:
            self.outcomes[index] = outcome
            self._left -= 1
            if self._left == 0:
                self.finished.set()
        self._launch()

    def _begin(self, index: int) -> None:
        """Start the scope's run (or find its result), then hand the run to the waiter."""
        task, settings, tracker = self.tasks[index], self.settings, self.tracker
        if settings.stop.is_set():
            self._record(index, _not_started(self.gw, task))
            return
        tracker.move(task.scope, QUEUED, STARTING)
        flight = _Flight(index=index, task=task, entry=task.entry)
        try:
            flight.run, flight.entry, flight.reused = _start(self.gw, task, settings)
            run, entry = flight.run, flight.entry
            if run is None:
                assert entry is not None
                assert entry.path is not None
                tracker.move(task.scope, STARTING, SKIPPED, entry.run_id)
                self._record(
                    index,
                    ScopeOutcome(
                        scope=task.scope,
                        state=SKIPPED,
                        run_id=entry.run_id,
                        path=Path(entry.path),
                        size=entry.size,
                        reused_from=flight.since,
                    ),
                )
                return
            tracker.move(task.scope, STARTING, RUNNING, run.id)
            flight.state = RUNNING
            if run.status.is_terminal and run.status is not RunStatus.SUCCEEDED:
                finish(run)  # failed or canceled: raise its error
        except Exception as exc:
            self._failed(flight, exc)
            return
        tracker.run_active(+1)
        self._waiter.add(
            run,
            functools.partial(self._waited, flight),
            timeout=settings.timeout,
            on_progress=_crash_mid_wait(),
            poll_interval=settings.poll_interval,
            max_interval=settings.max_interval,
            stop=settings.stop,
        )

    def _waited(self, flight: _Flight, run: ReportRun | None, error: BaseException | None) -> None:
        self.tracker.run_active(-1)
        if error is not None or run is None:
            self._failed(flight, error or RuntimeError("wait ended without a run"))
            return
        flight.run = run
        if flight.task.path is None:
            self._done(flight, None)
            return
        self.tracker.move(flight.task.scope, RUNNING, DOWNLOADING, run.id)
        flight.state = DOWNLOADING
        self._downloaders.submit(self._fetch, flight)

    def _fetch(self, flight: _Flight) -> None:
        assert flight.run is not None
        assert flight.task.path is not None
        try:
            if self.settings.stop.is_set():
                raise _Stopped("interrupted before downloading")
            saved = _download(
                self.gw,
                flight.run,
                flight.task.path,
                self.settings,
                overwrite=flight.task.overwrite,
                entry=flight.task.entry,
            )
        except Exception as exc:
            self._failed(flight, exc)
            return
        self._done(flight, saved)

    def _done(self, flight: _Flight, saved: Path | None) -> None:
        run = flight.run
        assert run is not None
        self.tracker.move(flight.task.scope, flight.state, DONE, run.id)
        self._record(
            flight.index,
            ScopeOutcome(
                scope=flight.task.scope,
                state=DONE,
                run_id=run.id,
                run=run,
                path=saved,
                size=None if saved is None else saved.stat().st_size,
                reused_from=flight.since,
            ),
        )

    def _failed(self, flight: _Flight, exc: BaseException) -> None:
        _forget_locals(exc)
        run, entry = flight.run, flight.entry
        run_id = run.id if run is not None else (entry.run_id if entry else None)
        final = INTERRUPTED if isinstance(exc, _Stopped) else FAILED
        self.tracker.move(flight.task.scope, flight.state, final, run_id)
        self._record(
            flight.index,
            ScopeOutcome(
                scope=flight.task.scope,
                state=final,
                run_id=run_id,
                run=run,
                error=exc,
                reused_from=flight.since,
            ),
        )


@attrs.define(eq=False)
class _Flight:
    """A scope between its stages (start, wait, download)."""

    index: int
    task: _Task
    entry: JournalEntry | None
    run: ReportRun | None = None
    reused: bool = False
    state: str = STARTING

    @property
    def since(self) -> float | None:
        """When the reused journal entry was started (None: a run started now)."""
        return self.entry.created_at if self.reused and self.entry is not None else None


def _forget_locals(error: BaseException) -> None:
    """Drop the local variables of the frames ``error`` (and its causes) went through: an
    outcome keeps its error, and ten thousand failed scopes must not keep ten thousand
    waits' records, snapshots and HTTP state alive. The traceback still prints, from the
    first frame that has returned (the fan-out's own frames still running, which could not
    be cleared, are left out)."""
    running: set[int] = set()
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        running.add(id(frame))
        frame = frame.f_back
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None and id(tb.tb_frame) in running:
            tb = tb.tb_next
        current.__traceback__ = tb
        traceback.clear_frames(tb)
        current = current.__cause__ or current.__context__


def _crash_mid_wait() -> Callable[[ReportRun, float], None]:
    """A wait's progress callback that is the crash tests' ``mid-wait`` point: after the
    first poll (the first call is before any)."""
    calls = 0

    def waiting(_: ReportRun, elapsed: float) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            crash_point("mid-wait")

    return waiting


class _Partial(KeyboardInterrupt):
    def __init__(self, outcomes: list[ScopeOutcome]) -> None:
        super().__init__("fan-out interrupted")
        self.outcomes = outcomes


def _not_started(gw: Gateway, task: _Task) -> ScopeOutcome:
    """A scope Ctrl-C kept from starting: journaled as not started (a re-run or ``resume``
    starts it), unless it already has an entry."""
    journal = gw.journal
    if journal is not None and task.entry is None:
        journal.begin(
            task.provider,
            task.report_id,
            task.scope,
            task.parameters,
            key=str(uuid.uuid4()),
            credential=gw.credential_id(task.provider),
            output=task.path,
            endpoint=endpoint_settings(gw, task.provider),
        )
    return ScopeOutcome(
        scope=task.scope,
        state=INTERRUPTED,
        run_id=None if task.entry is None else task.entry.run_id,
        error=_Stopped("not started"),
    )


def plan_outputs(
    output_dir: str | os.PathLike[str], scopes: Sequence[Scope], combine: str | None
) -> tuple[Path, list[str], Path | None]:
    """The output folder (created, and proven writable), each scope's file name and the
    combined file's path; a ``ConfigurationError`` before any run is made otherwise.

    A folder that cannot take a file (``/proc/self``, read-only) would let every run be
    created and then fail every download; a combined file named like a scope's file would
    overwrite that scope's file; a device node or FIFO where a file goes would be refused
    by every download (``download.not_a_file``).
    """
    folder = Path(output_dir)
    probe = folder / f".report-gateway-probe-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as exc:
        raise ConfigurationError(
            f"output folder {folder} cannot be written: {exc.strerror or exc}"
        ) from None
    names = file_names(scopes)
    combined = None if not combine else safe_name(combine)
    for name in [*names, *([combined] if combined else [])]:
        # A FIFO or device node where a file goes would be replaced by the download.
        why = not_a_file(folder / name)
        if why is not None:
            raise ConfigurationError(why)
    if not combined:
        return folder, names, None
    clash = [n for n in names if n.lower() == combined.lower()]
    if clash:
        raise ConfigurationError(
            f"combine={combine!r} is the name of a scope's own file ({clash[0]}), which it"
            " would overwrite: name the combined file otherwise (all.csv, say)"
        )
    return folder, names, folder / combined


def run_many(
    gw: Gateway,
    provider: str,
    report_id: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    scopes: Iterable[Scope],
    max_concurrency: int | None = None,
    output_dir: str | os.PathLike[str],
    combine: str | None = None,
    on_progress: Callable[[FanOutProgress], None] | None = None,
    timeout: float | None = 3600.0,
    poll_interval: float | None = None,
    max_interval: float | None = None,
    raw: bool = False,
    reuse: bool | float = True,
) -> FanOutResult:
    """Run ``report_id`` once per scope; see the module docstring and ``Gateway.run_many``.

    ``output_dir`` is created; each scope's file is named after it (``scope_label``, made
    safe). ``combine`` names a CSV written there (atomically) with every row of every
    scope's file behind a leading ``scope`` column. ``timeout`` bounds each run's wait;
    ``poll_interval``/``max_interval`` as for ``Gateway.wait``; ``raw`` keeps Zuora's UTF-16
    export (not combinable); ``reuse=False`` ignores the journal's earlier runs of the job,
    ``reuse=SECONDS`` takes up only those started within that window (True: 12 hours).
    """
    reuse_window(reuse)  # a bad value is named before anything is sent
    chosen = list(scopes)
    if not chosen:
        raise ConfigurationError("run_many needs at least one scope")
    if len(set(chosen)) != len(chosen):
        raise ConfigurationError("run_many: a scope is given twice")
    for scope in chosen:
        # Before any create: a scope kind the provider cannot send (accounts for stripe-v2)
        # is one error now, not a failed row per scope after the others' runs were made.
        gw._drivers.where(provider, scope)
    folder, names, combined = plan_outputs(output_dir, chosen, combine)
    params = dict(parameters or {})
    try:
        # Once, before any create: parameters that cannot go with these scopes at all
        # (organization_report_granularity with a context) are one error, not one per scope.
        gw.validate(provider, report_id, params, scope=chosen[0])
    except ParameterError:
        raise
    except Exception:  # noqa: S110 (the scope's own start reports anything else, per scope)
        pass
    tasks = [
        _Task(provider=provider, report_id=report_id, parameters=params, scope=s, path=folder / n)
        for s, n in zip(chosen, names, strict=True)
    ]
    settings = _Settings(
        timeout=timeout,
        poll_interval=poll_interval,
        max_interval=max_interval,
        raw=raw,
        reuse=reuse,
    )
    return _finish(gw, tasks, _concurrency(gw, provider, max_concurrency, len(tasks)), settings,
                   on_progress, combined)  # fmt: skip


def resume(
    gw: Gateway,
    *,
    max_concurrency: int | None = None,
    on_progress: Callable[[FanOutProgress], None] | None = None,
    timeout: float | None = 3600.0,
    poll_interval: float | None = None,
    max_interval: float | None = None,
    entries: Iterable[JournalEntry] | None = None,
    any_endpoint: bool = False,
) -> FanOutResult:
    """Finish every unfinished entry of the journal (``entries``: those of them): recover
    its create if needed, wait, and download to the file it was meant for (when one was
    named).

    An entry a newer entry of the same job, or of the same file, replaced is ``superseded``:
    abandoned, never downloaded over the newer one's result. An entry started against
    another endpoint than this gateway's for its provider fails with the endpoint named
    (``report-gateway resume`` opens one gateway per endpoint), unless ``any_endpoint``:
    the caller configured where those runs are now.
    """
    journal = gw.journal
    if journal is None:
        raise ConfigurationError("resume needs the run journal, which is turned off")
    if max_concurrency is not None and (isinstance(max_concurrency, bool) or max_concurrency < 1):
        raise ConfigurationError(f"max_concurrency must be at least 1, not {max_concurrency!r}")
    chosen = journal.entries(unfinished=True) if entries is None else list(entries)
    replaced: list[ScopeOutcome] = []
    tasks: list[_Task] = []
    for e in chosen:
        newer = journal.newer(e)
        if newer is not None:
            when = datetime.fromtimestamp(newer.created_at).isoformat(sep=" ", timespec="seconds")
            error = ConfigurationError(f"superseded by the run of {when}")
            journal.record_error(e.id, str(error), state=ABANDONED)
            replaced.append(
                ScopeOutcome(
                    scope=e.scope,
                    state=SUPERSEDED,
                    run_id=e.run_id,
                    error=error,
                    reused_from=e.created_at,
                )
            )
            continue
        path = None if e.output is None else Path(e.output)
        tasks.append(
            _Task(
                provider=e.provider,
                report_id=e.report_id,
                parameters=e.parameters,
                scope=e.scope,
                path=path,
                entry=e,
                overwrite=not e.keep_existing,
            )
        )
    settings = _Settings(
        timeout=timeout,
        poll_interval=poll_interval,
        max_interval=max_interval,
        raw=False,
        reuse=True,
        any_endpoint=any_endpoint,
    )
    slots = max(1, min(max_concurrency or DEFAULT_CONCURRENCY, len(tasks) or 1))
    result = _finish(gw, tasks, slots, settings, on_progress, None)
    if not replaced:
        return result
    return attrs.evolve(result, outcomes=(*replaced, *result.outcomes))


def _finish(
    gw: Gateway,
    tasks: Sequence[_Task],
    slots: int,
    settings: _Settings,
    on_progress: Callable[[FanOutProgress], None] | None,
    combine: Path | None,
) -> FanOutResult:
    began = time.monotonic()
    tracker = _Tracker(len(tasks), on_progress)
    try:
        outcomes = _FanOut(gw, tasks, slots, settings, tracker).execute() if tasks else []
    except _Partial as stopped:
        raise FanOutInterrupted(
            FanOutResult(
                outcomes=tuple(stopped.outcomes),
                peak_active=tracker.peak,
                elapsed=time.monotonic() - began,
            )
        ) from None
    outcomes = [_stale(task, o) for task, o in zip(tasks, outcomes, strict=True)]
    combined, left = None, None
    lacks: tuple[str, ...] = ()
    if combine is not None and any(o.ok and o.path is not None for o in outcomes):
        combined = combine_csv(
            [(scope_label(o.scope), o.path) for o in outcomes if o.ok and o.path is not None],
            combine,
        )
        lacks = tuple(scope_label(o.scope) for o in outcomes if not o.ok)
    elif combine is not None:
        # Every scope failed: no combined file (a header alone would pass for "no rows"),
        # and an earlier one of that name is left, not deleted, but named in the result.
        left = _modified(combine)
    return FanOutResult(
        outcomes=tuple(outcomes),
        combined=combined,
        peak_active=tracker.peak,
        elapsed=time.monotonic() - began,
        combined_lacks=lacks,
        combined_stale=None if left is None else combine,
        combined_stale_from=left,
    )


def _modified(path: Path) -> float | None:
    """When the file at ``path`` was last written; None when there is none."""
    try:
        return path.stat().st_mtime if path.is_file() else None
    except OSError:
        return None


def _stale(task: _Task, outcome: ScopeOutcome) -> ScopeOutcome:
    """A failed scope's outcome naming the earlier run's file still at its path, if any.

    The download writes through a temporary renamed into place, so a file there after a
    failure was written before this fan-out: it is kept (deleting a user's file is worse
    than keeping an old one) but said to be stale, in the table and the JSON.
    """
    if outcome.state != FAILED or task.path is None or not task.overwrite:
        # (not ``overwrite``: the file there is one the user asked to keep, not stale)
        return outcome
    stamp = _modified(task.path)
    if stamp is None:
        return outcome
    return attrs.evolve(outcome, stale=task.path, stale_from=stamp)


def combine_csv(parts: Sequence[tuple[str, Path]], target: Path) -> Path:
    """Write every row of ``parts`` (label, CSV file) to ``target`` behind a leading
    ``scope`` column, atomically (a temporary beside it, fsynced, renamed).

    The header is the union of the parts' headers in first-seen order (a column a scope's
    file lacks is left empty), so scopes whose reports differ slightly still combine.
    """
    columns: list[str] = []
    for _, path in parts:
        with path.open(newline="", encoding="utf-8") as handle:
            for name in next(csv.reader(handle), []):
                if name not in columns:
                    columns.append(name)
    if SCOPE_COLUMN in columns:
        raise DownloadError(f"cannot combine: the results already have a {SCOPE_COLUMN!r} column")
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with temporary.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow([SCOPE_COLUMN, *columns])
            for label, path in parts:
                with path.open(newline="", encoding="utf-8") as handle:
                    for row in csv.DictReader(handle):
                        writer.writerow([label, *(row.get(c) or "" for c in columns)])
            out.flush()
            os.fsync(out.fileno())
        _replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return target
