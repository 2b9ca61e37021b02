"""``run --accounts/--contexts/--entities``, ``journal`` and ``resume``: many runs at once.

A fan-out prints one line on stderr each time a scope moves between queued, running, done
and failed (a nightly job's log then shows where it stands), then a summary table on
stdout, or the whole ``FanOutResult`` as JSON with ``--json``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import exits
from .exits import UsageError, exit_code_for
from .output import format_bytes, format_seconds, table
from .params import parse_parameters
from .speak import speak_cli

if TYPE_CHECKING:
    from report_gateway.fanout import FanOutProgress, FanOutResult, ScopeOutcome
    from report_gateway.journal import Journal, JournalEntry
    from report_gateway.models import Scope

    from .commands import Session

__all__ = ["cmd_journal", "cmd_resume", "cmd_run_many", "read_scopes"]


def read_scopes(path: str, field: str) -> list[Scope]:
    """One scope per non-empty line of ``path`` (``#`` starts a comment), in order.

    An id holding a space or a comma is refused, naming its line: two ids on one line
    (``acct_1, acct_2``) sent as one would fail at the provider after the others' runs.
    """
    from report_gateway.models import Scope

    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a BOM is no part of an id
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path} is not UTF-8 text (byte {exc.start}): one id per line, UTF-8"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    ids: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.split("#", 1)[0].strip()
        if any(c.isspace() or c == "," for c in value):
            raise UsageError(
                f"{path} line {number}: {value!r} is not one id (one id per line, no spaces"
                " or commas; '#' starts a comment)"
            )
        if value:
            ids.append(value)
    scopes = [Scope(**{field: value}) for value in dict.fromkeys(ids)]
    if not scopes:
        raise UsageError(f"{path} lists no ids (one per line, '#' starts a comment)")
    return scopes


def _progress_line(s: Session) -> object:
    def show(p: FanOutProgress) -> None:
        s.stderr.write(
            f"{p.running} running, {p.done + p.skipped} done, {p.failed} failed"
            f" ({p.queued} queued of {p.total})\n"
        )
        s.stderr.flush()

    return show


def _state_text(outcome: ScopeOutcome, resumed: bool = False) -> str:
    """A scope's state, saying when its run is an earlier one (a skip or a reuse is then
    visible: a job without dates gives that earlier day's data); ``resumed``: the table of
    ``resume``, whose every entry is an earlier one it finishes."""
    state = outcome.state
    if outcome.reused_from is not None:
        when = _when(outcome.reused_from)
        if state == "skipped":
            state = f"skipped (file of run from {when})"
        elif state == "superseded":
            state = f"superseded (run from {when})"
        else:
            state = f"{state} ({'resumed' if resumed else 'reused'} run from {when})"
    if outcome.stale_from is not None:
        state += f"; stale file from {_when(outcome.stale_from)} left in place"
    return state


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).isoformat(sep=" ", timespec="seconds")


def _report(s: Session, result: FanOutResult, resumed: bool = False) -> int:
    from report_gateway.fanout import scope_label

    rows = [
        (
            scope_label(o.scope),
            _state_text(o, resumed),
            o.run_id,
            o.path.name if o.path is not None else o.stale.name if o.stale is not None else None,
            format_bytes(o.size) if o.size is not None else None,
            None
            if o.error is None
            else str(o.error)
            if o.state == "interrupted"
            else speak_cli(str(o.error) or type(o.error).__name__, s.args),
        )
        for o in result.outcomes
    ]
    counts = result.summary()
    stopped = f", {counts['interrupted']} interrupted" if "interrupted" in counts else ""
    if "superseded" in counts:
        stopped += f", {counts['superseded']} superseded"
    footer = (
        f"{counts['done']} done, {counts['skipped']} skipped (already downloaded), "
        f"{counts['failed']} failed{stopped} of {counts['total']} in"
        f" {format_seconds(result.elapsed)}; at most {counts['peak_active']} runs active"
    )
    if result.combined is not None:
        footer += f"\ncombined: {result.combined}"
        if result.combined_lacks:
            footer += f" (PARTIAL: lacks {', '.join(result.combined_lacks)}, which failed)"
    if result.combined_stale is not None and result.combined_stale_from is not None:
        footer += (
            f"\nnot combined: every scope failed; {result.combined_stale.name} from"
            f" {_when(result.combined_stale_from)} left unchanged (an earlier run's data)"
        )
    human = table(["scope", "state", "run id", "file", "size", "error"], rows) + "\n\n" + footer
    s.out.emit(result.as_json(), human if rows else footer)
    failed = result.failed
    if not failed:
        return exits.OK
    unfinished = [o for o in failed if o.run_id is not None and not _run_ended_badly(o.error)]
    if unfinished:
        # A failed download or wait leaves a run that can still give its file.
        again = "without --no-reuse" if getattr(s.args, "no_reuse", False) else "the same command"
        s.stderr.write(
            f"report-gateway: {len(unfinished)} of the failed scopes have a run that can"
            f" still be finished: re-run {again} (it takes up their runs) or"
            " `report-gateway resume`\n"
        )
        s.stderr.flush()
    first = failed[0].error
    return exit_code_for(first) if first is not None else exits.INTERNAL


def _run_ended_badly(error: BaseException | None) -> bool:
    """The run itself failed or was canceled: finishing it again gives no file; or its
    file was left for one the user asked to keep: finishing it again refuses again (its
    error says what to do)."""
    from report_gateway.errors import RunCanceledError, RunFailedError
    from report_gateway.fanout import KeptFileError

    return isinstance(error, RunFailedError | RunCanceledError | KeptFileError)


def cmd_run_many(s: Session) -> int:
    args = s.args
    if args.output is None or args.output == "-":
        raise UsageError("--accounts/--contexts/--entities need -o DIR (one file per scope)")
    if args.no_wait:
        raise UsageError("--no-wait does not go with --accounts/--contexts/--entities")
    _check_output_folder(args.output)
    if s.scope is not None:
        raise UsageError("--account/--context/--entity-* select one scope; a fan-out reads a file")
    if args.accounts:
        scopes = read_scopes(args.accounts, "account")
    elif args.contexts:
        scopes = read_scopes(args.contexts, "context")
    else:
        scopes = read_scopes(args.entities, "entity_id")
    from report_gateway.errors import ConfigurationError
    from report_gateway.fanout import plan_outputs

    try:  # run_many checks these too: here they are usage errors (exit 2), before any run
        plan_outputs(args.output, scopes, args.combine)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    return _interruptible(s, lambda: s.gateway.run_many(
        args.provider,
        args.report,
        parse_parameters(args.params),
        scopes=scopes,
        max_concurrency=args.max_concurrency,
        output_dir=args.output,
        combine=args.combine,
        on_progress=_progress_line(s),  # type: ignore[arg-type]
        timeout=args.timeout,
        raw=args.raw,
        reuse=not args.no_reuse,
    ))  # fmt: skip


def _check_output_folder(output: str) -> None:
    """-o of a fan-out is a folder (one file per scope): a file named there, or a name that
    looks like one, is a mistake to stop on before any run is made."""
    target = Path(output)
    if target.exists() and not target.is_dir():
        raise UsageError(
            f"-o {output} is a file; a fan-out writes one file per scope into a folder"
            " (-o DIR, and --combine NAME for one CSV of every scope)"
        )
    if not target.exists() and target.suffix.lower() in FILE_SUFFIXES:
        raise UsageError(
            f"-o {output} names a file; a fan-out writes one file per scope into a folder"
            f" (-o {target.with_suffix('')}/ --combine {target.name} for one CSV of every scope)"
        )


#: What ``-o`` of a fan-out is refused as when no folder of that name exists.
FILE_SUFFIXES = frozenset({".csv", ".tsv", ".zip", ".parquet", ".jsonl", ".json", ".txt"})


def cmd_resume(s: Session) -> int:
    """Every unfinished entry (of ``--provider``), finished through a gateway configured for
    the endpoint it was started against: one per provider and endpoint. ``--base-url`` and
    ``--set`` say where one provider's runs are now: its entries then go through them."""
    from report_gateway.fanout import FanOutInterrupted
    from report_gateway.gateway import Gateway

    from .commands import command_overrides, gateway_options

    args = s.args
    if args.max_concurrency is not None and args.max_concurrency < 1:
        raise UsageError(f"--max-concurrency must be at least 1, not {args.max_concurrency}")
    journal = s.gateway.journal
    if journal is None:
        raise UsageError(
            "the run journal is turned off (journal setting or $REPORT_GATEWAY_JOURNAL)"
        )
    overrides = command_overrides(args)
    entries = journal.entries(unfinished=True)
    if args.resume_provider:
        entries = [e for e in entries if e.provider == args.resume_provider]
    providers = sorted({e.provider for e in entries})
    if overrides and len(providers) > 1:
        raise UsageError(
            f"--base-url and --set apply to one provider; the unfinished runs are of "
            f"{', '.join(providers)}: choose with --provider NAME"
        )
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[JournalEntry]] = {}
    for e in entries:
        endpoint = () if overrides else tuple(sorted(e.endpoint.items()))
        groups.setdefault((e.provider, endpoint), []).append(e)

    def resume_all() -> FanOutResult:
        if not groups:
            return s.gateway.resume(entries=[])
        done: list[FanOutResult] = []
        for (provider, endpoint), group in groups.items():
            settings = overrides or dict(endpoint)
            with Gateway({provider: settings} if settings else {}, **gateway_options(args)) as gw:
                try:
                    done.append(gw.resume(
                        entries=group, any_endpoint=bool(overrides), on_progress=_progress_line(s),
                        timeout=args.timeout, max_concurrency=args.max_concurrency,
                    ))  # fmt: skip
                except FanOutInterrupted as stopped:
                    raise FanOutInterrupted(_merged([*done, stopped.result])) from None
        return _merged(done)

    return _interruptible(s, resume_all, resumed=True)


def _merged(results: list[FanOutResult]) -> FanOutResult:
    """The results of several gateways' resumes (run one after the other) as one."""
    from report_gateway.fanout import FanOutResult

    return FanOutResult(
        outcomes=tuple(o for r in results for o in r.outcomes),
        peak_active=max((r.peak_active for r in results), default=0),
        elapsed=sum(r.elapsed for r in results),
    )


def _interruptible(s: Session, fan_out: Callable[[], FanOutResult], resumed: bool = False) -> int:
    """The fan-out's table; on Ctrl-C the table so far (run ids of the runs that go on)
    and how to finish, exit 130."""
    from report_gateway.fanout import FanOutInterrupted

    try:
        result = fan_out()
    except FanOutInterrupted as stopped:
        s.progress.finish()
        _report(s, stopped.result, resumed)
        s.stderr.write(
            "report-gateway: interrupted; the runs started go on at the provider: re-run the"
            " same command (or `report-gateway resume`) to finish\n"
        )
        s.stderr.flush()
        return exits.INTERRUPTED
    return _report(s, result, resumed)


def cmd_journal(s: Session) -> int:
    from report_gateway.fanout import scope_label
    from report_gateway.journal import iter_since

    try:
        since = iter_since(s.args.since)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    journal = s.gateway.journal
    if journal is None:
        raise UsageError(
            "the run journal is turned off (journal setting or $REPORT_GATEWAY_JOURNAL)"
        )
    if s.args.abandon:
        return _abandon(s, journal, s.args.abandon)
    entries = journal.entries(since=since, unfinished=s.args.unfinished)
    rows = [
        (
            e.id[:ID_SHOWN],
            datetime.fromtimestamp(e.created_at).isoformat(timespec="seconds"),
            e.provider,
            e.report_id,
            scope_label(e.scope) if e.scope.fields() else "-",
            e.run_id,
            e.state,
            e.path,
        )
        for e in entries
    ]
    s.out.emit(
        {"journal": str(journal.path), "runs": [e.as_json() for e in entries]},
        table(["id", "started", "provider", "report", "scope", "run id", "state", "file"], rows)
        if rows
        else f"no runs in {journal.path}",
    )
    return exits.OK


#: How much of an entry's id ``journal`` shows (``--abandon`` takes any unique prefix).
ID_SHOWN = 12


def _abandon(s: Session, journal: Journal, ids: list[str]) -> int:
    """``journal --abandon ID...``: each unfinished entry named (by a unique id prefix)
    marked abandoned, so ``resume`` leaves it; every id is checked before any is dropped."""
    everything = journal.entries()
    chosen: list[JournalEntry] = []
    for given in ids:
        matches = [e for e in everything if e.id.startswith(given.lower())] if given else []
        if len(matches) != 1:
            found = "no entry" if not matches else f"{len(matches)} entries"
            raise UsageError(f"--abandon {given}: {found} with that id (see `journal`)")
        if matches[0].finished:
            raise UsageError(
                f"--abandon {given}: that entry is already finished ({matches[0].state})"
            )
        chosen.append(matches[0])
    for entry in chosen:
        journal.abandon(entry.id)
    s.out.emit(
        {"abandoned": [e.id for e in chosen]},
        "\n".join(f"abandoned {e.id[:ID_SHOWN]} ({e.provider} {e.report_id})" for e in chosen),
    )
    return exits.OK
