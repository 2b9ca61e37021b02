"""The subcommands, and the error handling that turns any failure into one line and an exit code.

Imported only after the command line parsed, so ``--help`` never pays for it; the gateway
itself (pluggy, attrs, the plugins) is imported only when a command first needs it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from . import exits
from .exits import UsageError, exit_code_for
from .formats import check_format
from .output import (
    Output,
    format_bytes,
    key_values,
    run_block,
    run_json,
    table,
    template_json,
)
from .params import parse_parameters, parse_settings
from .parser import PROG
from .progress import Progress
from .speak import speak_cli

if TYPE_CHECKING:
    from report_gateway.gateway import Gateway
    from report_gateway.models import ReportRun, ReportTemplate, Scope

__all__ = ["COMMANDS", "Session", "execute", "open_gateway"]

T = TypeVar("T")


def open_gateway(args: argparse.Namespace, **extra: Any) -> Gateway:
    """Build the Gateway the command line asks for (``extra`` goes to ``Gateway``).

    ``--base-url`` and ``--set`` apply to the provider the command names (``listen``, which
    names none: to its ``--provider`` ones, else to the Stripe providers, since a v2 thin
    event's run is fetched from the API it names); they are explicit
    settings, so they win over the config file and the environment (a plugin whose settings
    depend on each other, like Stripe's files host on ``base_url``, weighs the layers itself).
    """
    from report_gateway.gateway import Gateway

    overrides = command_overrides(args)
    provider: str | None = getattr(args, "provider", None)
    options = gateway_options(args, **extra)
    if getattr(args, "command", None) == "resume":
        # The journal is read with this one; ``cli.fanout.cmd_resume`` opens one gateway
        # per provider and endpoint of the unfinished entries, --base-url/--set applied.
        return Gateway({}, **options)
    targets: list[str] | None = getattr(args, "webhook_providers", None)
    if overrides and provider is None and targets is None:
        raise UsageError("--base-url and --set need a command that names a PROVIDER")
    if not overrides:
        return Gateway({}, **options)
    if provider is not None:
        return Gateway({provider: overrides}, **options)
    if not targets:  # listen without --provider: the Stripe providers installed
        with Gateway({}, **options) as probe:
            targets = [name for name in probe.providers() if name.split("-")[0] == "stripe"]
    return Gateway({name: overrides for name in targets}, **options)


def command_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--set`` and ``--base-url`` as provider settings (the URL checked)."""
    overrides: dict[str, Any] = parse_settings(getattr(args, "settings", None))
    base_url = getattr(args, "base_url", None)
    if base_url:
        _check_url("--base-url", base_url)
        overrides["base_url"] = base_url
    return overrides


def gateway_options(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The ``Gateway`` keywords of the command line other than provider settings."""
    return {
        "config_file": getattr(args, "config", None),
        "profile": getattr(args, "profile", None),
        "ca_bundle": getattr(args, "ca_bundle", None),
        **extra,
    }


def _check_url(option: str, url: str) -> None:
    """A URL without ``http://`` or ``https://`` is a typo to stop on, not a warning from
    deep in the HTTP stack."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"{option} {url}: expected a URL starting with https:// (or http:// for a local "
            "sandbox), e.g. https://rest.zuora.com"
        )


#: The path prefixes of Zuora's Reporting API (REST host; zconnect host).
_ZUORA_PREFIXES = ("/reporting/api/rest/v1", "/api/rest/v1")


def _base_url_hint(
    exc: BaseException, args: argparse.Namespace, gateway: Gateway | None = None
) -> str | None:
    """A 404 from Zuora when ``--base-url`` lacks the API prefix, or a 401 for the password
    pair on the REST prefix: say which prefix, the one the credentials in use can call (the
    two pairs live on different endpoint families)."""
    from report_gateway.errors import UnknownReportError

    base_url = getattr(args, "base_url", None)
    if (
        getattr(args, "provider", None) != "zuora"
        or not base_url
        or not (getattr(exc, "status", None) in (401, 404) or isinstance(exc, UnknownReportError))
    ):
        return None
    from urllib.parse import urlsplit

    path = urlsplit(base_url).path.rstrip("/")
    if path.endswith(_ZUORA_PREFIXES[0]) and not _zuora_oauth(args, gateway):
        if getattr(exc, "status", None) == 401:
            root = base_url.rstrip("/").removesuffix(_ZUORA_PREFIXES[0])
            return (
                f"--base-url {base_url} is on the REST endpoint family "
                f"({_ZUORA_PREFIXES[0]}), which takes only OAuth (client_id/client_secret); "
                "the username/password pair (ZUORA_API_ACCESS_KEY_ID, "
                f"ZUORA_API_SECRET_ACCESS_KEY) needs the zconnect endpoint {root}/api/rest/v1"
            )
        return None
    if getattr(exc, "status", None) == 401:
        return None
    if path.endswith(_ZUORA_PREFIXES):
        return None
    root = base_url.rstrip("/")
    if _zuora_oauth(args, gateway):
        return (
            f"--base-url {base_url} has no API prefix: with client_id/client_secret the "
            f"Reporting API is under {root}/reporting/api/rest/v1 (added for you), so check "
            "that the host is a Zuora REST host (e.g. https://rest.zuora.com)"
        )
    return (
        f"--base-url {base_url} has no API prefix: with the username/password pair "
        f"(ZUORA_API_ACCESS_KEY_ID, ZUORA_API_SECRET_ACCESS_KEY) use the zconnect "
        f"endpoint {root}/api/rest/v1"
    )


def _zuora_oauth(args: argparse.Namespace, gateway: Gateway | None) -> bool:
    """Whether the Zuora credentials in use are the OAuth client pair (not the password)."""
    if any(item.split("=", 1)[0].strip() == "client_id" for item in args.settings or ()):
        return True
    if gateway is None:
        return False
    try:
        return bool(gateway.settings("zuora").get("client_id"))
    except Exception:  # a hint must never hide the error it explains
        return False


class Session:
    """One command's state: its options, output streams, gateway, and the run in progress.

    The run is remembered so that an interrupt or an error can say which run to resume.
    """

    def __init__(self, args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> None:
        self.args = args
        self.stdout = stdout
        self.stderr = stderr

        def scrub(text: str) -> str:
            return _redact(text, _secrets(args, self))

        self.out = Output(stdout, as_json=bool(args.json), scrub=scrub)
        self.progress = Progress(stderr, scrub=scrub)
        self.run: ReportRun | None = None
        #: The command that finishes the job from the current step (a wait or a download),
        #: printed when that step is interrupted or fails, so no run is ever stranded.
        self.resume: str | None = None
        self._gateway: Gateway | None = None

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:
            self._gateway = open_gateway(self.args)
        return self._gateway

    @gateway.setter
    def gateway(self, gateway: Gateway) -> None:
        """Use a gateway built elsewhere (the demo builds its own, aimed at the sandbox)."""
        self._gateway = gateway

    @property
    def opened_gateway(self) -> Gateway | None:
        """The gateway if one was built (reporting an error must not build one)."""
        return self._gateway

    @property
    def scope(self) -> Scope | None:
        values = {
            name: getattr(self.args, name, None)
            for name in ("account", "context", "entity_id", "entity_name")
        }
        if not any(values.values()):
            return None  # the provider falls back to the scope in its settings
        from report_gateway.models import Scope

        return Scope(**values)

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()

    # -- shared steps ----------------------------------------------------------------------

    def wait(self, run: ReportRun, timeout: float | None) -> ReportRun:
        self.run = run
        try:
            run = self.gateway.wait(run, timeout=timeout, on_progress=self.progress.waiting)
        finally:
            self.progress.finish()
        self.run = run
        return run

    def command(
        self, verb: str, run: ReportRun, output: str | None = None, *, untyped: bool = False
    ) -> str:
        """The exact command line that does ``verb`` (wait, download) for ``run``.

        It repeats what decides where the command goes (profile, config file, endpoint,
        non-secret ``--set``, scope) so that it works as printed; a secret given with
        ``--set`` is left out (it is never printed), to be given again.
        """
        args = self.args
        parts = [PROG, verb, run.provider, run.id]
        if output is not None:
            parts += ["-o", output]
            parts += [flag for flag in ("--unzip", "--raw") if getattr(args, flag[2:], False)]
            if getattr(args, "format", "csv") != "csv":
                parts += ["--format", args.format]
                if untyped or getattr(args, "untyped", False):
                    parts.append("--untyped")
        for flag, name in (
            ("--profile", "profile"),
            ("--config", "config"),
            ("--ca-bundle", "ca_bundle"),
            ("--base-url", "base_url"),
        ):
            value = getattr(args, name, None)
            if value:
                parts += [flag, str(value)]
        declared, _ = _declared_secrets(args, self)
        from report_gateway.config import is_secret_key

        for key, value in _settings_quietly(getattr(args, "settings", None)):
            if not declared.get(key, is_secret_key(key)):
                parts += ["--set", f"{key}={value}"]
        for field, value in run.scope.fields().items():
            parts += [f"--{field.replace('_', '-')}", str(value)]
        return " ".join(shlex.quote(part) for part in parts)

    def download(self, run: ReportRun, output: str, *, unzip: bool, raw: bool) -> dict[str, Any]:
        """Save the result to ``output`` (``-``: stdout); return where, how many bytes, and
        notes for the reader (a ZIP renamed ``.zip``, a file replaced)."""
        self.resume = self.command("download", run, output)
        fmt = getattr(self.args, "format", "csv")
        if fmt != "csv":
            from report_gateway.tabular import ColumnTypeError

            from .formats import save_as

            self.progress.start_download()
            typed = not getattr(self.args, "untyped", False)
            try:
                return save_as(
                    self.gateway, run, output, fmt, self.stdout, self.progress, typed=typed
                )
            except ColumnTypeError as exc:
                if exc.by_schema:  # the way out is the same download, untyped
                    self.resume = self.command("download", run, output, untyped=True)
                raise
        _check_room(run, output)
        self.progress.start_download(run, unzip=unzip, raw=raw)
        if output == "-":
            with tempfile.TemporaryDirectory(prefix="report-gateway-") as folder:
                path = self.gateway.download(
                    run,
                    Path(folder) / "result",
                    unzip=unzip,
                    raw=raw,
                    on_progress=self.progress.downloading,
                )
                size = path.stat().st_size
                self.progress.finish()
                _copy_to(path, self.stdout)
            return {"path": "-", "bytes": size}
        target, note = _zip_target(run, output, unzip)
        notes = [note] if note else []
        final = _final_path(run, target, unzip)
        replaced = final is not None and final.is_file()
        path = self.gateway.download(
            run, target, unzip=unzip, raw=raw, on_progress=self.progress.downloading
        )
        size = path.stat().st_size
        self.progress.downloaded(size, str(path))
        saved: dict[str, Any] = {"path": str(path), "bytes": size}
        if replaced:
            saved["replaced"] = True
            notes.append(f"replaced the existing file {path}")
        if notes:
            saved["notes"] = notes
        return saved


def _copy_to(path: Path, stream: IO[str]) -> None:
    binary = getattr(stream, "buffer", None)
    stream.flush()
    with path.open("rb") as fh:
        if binary is not None:
            shutil.copyfileobj(fh, binary)
            binary.flush()
        else:  # a text-only stream (tests): the result is UTF-8 CSV
            stream.write(fh.read().decode("utf-8", errors="replace"))
            stream.flush()


def _check_output(output: str | None) -> None:
    """Refuse a target that cannot be written before a run is started for nothing.

    The target must not be a device node, FIFO or socket (``download.not_a_file``). The
    folder must exist (a trailing ``/`` names a folder, never a file), must take a new
    file (permissions, a read-only file system) and must have some space left. The same
    check, and so the same exit code (2), for ``run``, ``wait -o`` and ``download``.
    """
    if output is None or output == "-":
        return
    from report_gateway.download import not_a_file

    target = Path(output)
    if output.endswith(("/", os.sep)) and not target.is_dir():
        raise UsageError(
            f"-o {output}: folder {output} does not exist (a trailing / names a folder)"
        )
    folder = target if target.is_dir() else target.parent
    if not folder.is_dir():
        raise UsageError(f"-o {output}: folder {folder} does not exist")
    why = None if target.is_dir() else not_a_file(target)
    if why is not None:
        # A device node or FIFO (-o /dev/null as root): the download would replace it.
        raise UsageError(f"-o {output}: {why}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".report-gateway-probe-", dir=folder)
        try:
            os.write(fd, b"\n")
        finally:
            os.close(fd)
            os.unlink(probe)
        free = _free_bytes(folder)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"-o {output}: cannot write in folder {folder}: {reason}") from None
    if free == 0:
        raise UsageError(f"-o {output}: no space left on the device of folder {folder}")


def _free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged writer may still use in ``folder`` (None: unknown here)."""
    statvfs = getattr(os, "statvfs", None)
    if statvfs is None:  # pragma: no cover - not POSIX
        return None
    info = statvfs(folder)
    return int(info.f_bavail * info.f_frsize)


def _check_room(run: ReportRun, output: str) -> None:
    """Once the result's size is known: refuse a download that cannot fit (exit 7, with the
    command to finish the job) rather than fail at the end of a long transfer."""
    from report_gateway.errors import DownloadError

    if output == "-" or run.result is None or not run.result.size:
        return
    target = Path(output)
    folder = target if target.is_dir() else target.parent
    try:
        free = _free_bytes(folder)
    except OSError:
        return
    if free is not None and free < run.result.size:
        raise DownloadError(
            f"cannot write the {format_bytes(run.result.size)} result to {output}: "
            f"only {format_bytes(free)} free in {folder}"
        )


def _final_path(run: ReportRun, target: str, unzip: bool) -> Path | None:
    """Where ``Gateway.download`` will write (None: it will refuse, and say why)."""
    from report_gateway import download
    from report_gateway.errors import DownloadError
    from report_gateway.models import CONTENT_ZIP

    unpack = unzip and run.result is not None and run.result.content_type == CONTENT_ZIP
    try:
        return download._target(run, target, unpack=unpack)
    except DownloadError:
        return None


def _zip_target(run: ReportRun, output: str, unzip: bool) -> tuple[str, str | None]:
    """A ZIP result saved as it is gets a ``.zip`` name, never ``out.csv`` holding a ZIP;
    returns the target and a note saying so."""
    from report_gateway.models import CONTENT_ZIP

    result = run.result
    if (
        output == "-"
        or unzip
        or result is None
        or result.content_type != CONTENT_ZIP
        or Path(output).is_dir()
        or output.lower().endswith(".zip")
    ):
        return output, None
    renamed = str(Path(output).with_suffix(".zip"))
    return renamed, f"the result is a ZIP file: saved as {renamed} (--unzip saves its CSV)"


def _templates_table(templates: list[ReportTemplate]) -> str:
    if not templates:
        return "no reports found"
    return table(
        ["id", "name", "data available"],
        [
            (
                t.id,
                t.name,
                f"{t.available_from:%Y-%m-%d} .. {t.available_until:%Y-%m-%d}"
                if t.available_from and t.available_until
                else None,
            )
            for t in templates
        ],
    )


# -- the commands ---------------------------------------------------------------------------


def cmd_providers(s: Session) -> int:
    gw = s.gateway
    specs = [gw.spec(name) for name in gw.providers()]
    s.out.emit(
        [{"name": spec.name, "description": spec.description} for spec in specs],
        table(["provider", "description"], [(spec.name, spec.description) for spec in specs])
        if specs
        else "no providers installed (pip install report-gateway-stripe report-gateway-zuora)",
    )
    return exits.OK


def cmd_plugins(s: Session) -> int:
    infos = s.gateway.plugins()
    s.out.emit(
        [
            {
                "name": i.name,
                "version": i.version,
                "distribution": i.distribution,
                "hooks": list(i.hooks),
            }
            for i in infos
        ],
        table(
            ["name", "version", "hooks"],
            [(i.name, i.version, ", ".join(i.hooks)) for i in infos],
        ),
    )
    return exits.OK


def cmd_templates(s: Session) -> int:
    templates = s.gateway.templates(s.args.provider, scope=s.scope)
    s.out.emit([template_json(t) for t in templates], _templates_table(templates))
    return exits.OK


def cmd_search(s: Session) -> int:
    templates = s.gateway.search(s.args.provider, s.args.query, scope=s.scope)
    s.out.emit([template_json(t) for t in templates], _templates_table(templates))
    return exits.OK


def cmd_template(s: Session) -> int:
    t = _by_name(s, lambda report: s.gateway.template(s.args.provider, report, scope=s.scope))
    head = key_values(
        [
            ("provider", t.provider),
            ("id", t.id),
            ("name", t.name),
            ("description", t.description),
            ("available from", t.available_from),
            ("available until", t.available_until),
        ]
    )
    rows = []
    for p in t.parameters.values():
        accepts: Any = None
        if p.allowed_values:
            accepts = ", ".join(p.allowed_values)
        elif p.minimum is not None or p.maximum is not None:
            accepts = f"{output_cell(p.minimum)} .. {output_cell(p.maximum)}"
        kind = f"{p.type}[{p.element_type}]" if p.element_type else p.type
        rows.append((p.name, kind, "yes" if p.required else "no", accepts, p.description))
    params = (
        table(["parameter", "type", "required", "accepts", "description"], rows)
        if rows
        else "parameters: none"
    )
    s.out.emit(template_json(t), f"{head}\n\n{params}")
    return exits.OK


def output_cell(value: Any) -> str:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return "" if value is None else str(value)


def _run_text(run: ReportRun, hint: str | None = None) -> str:
    return run_block(run) + (f"\n\n{hint}" if hint else "")


def _by_name(s: Session, action: Callable[[str], T]) -> T:
    """``action(report)``; when the provider knows no such id, the report whose name is
    exactly the one given (resolved through search, case aside).

    Zuora's reports are known by their names but run by 32-character ids; a name with
    several matches lists them, one with none points at ``search``.
    """
    from report_gateway.errors import GatewayError, UnknownReportError

    provider, report = s.args.provider, s.args.report
    try:
        return action(report)
    except UnknownReportError as exc:
        unknown = exc
    try:
        found = s.gateway.search(provider, report, scope=s.scope)
    except GatewayError:
        found = []
    exact = [t for t in found if t.name.casefold() == report.casefold()]
    if len(exact) == 1:
        s.progress.note(f"{provider} report {report!r} is {exact[0].id}")
        return action(exact[0].id)
    if exact:
        listed = "; ".join(f"{t.id} ({t.name})" for t in exact)
        raise UsageError(
            f"{provider}: {len(exact)} reports are named {report!r}: {listed}; "
            "give the id of the one to use"
        )
    hint = _base_url_hint(unknown, s.args, s.opened_gateway)
    if hint:
        raise UsageError(f"{unknown}; {hint}") from None
    search = f"{PROG} search {provider} {shlex.quote(report)}"
    raise UsageError(f"{unknown}; find reports by name with `{search}`") from None


def _saved_text(run: ReportRun, saved: dict[str, Any], with_run: bool) -> str:
    lines = [f"wrote {saved['path']} ({saved['bytes']} bytes)", *saved.get("notes", ())]
    text = "\n".join(lines)
    return _run_text(run, text) if with_run else text


def cmd_run(s: Session) -> int:
    args = s.args
    if args.accounts or args.contexts or args.entities:
        from .fanout import cmd_run_many

        return cmd_run_many(s)
    if args.combine or args.max_concurrency:
        raise UsageError("--combine and --max-concurrency go with --accounts/--contexts/--entities")
    parameters = parse_parameters(args.params)
    if args.output == "-" and args.json:
        raise UsageError("-o - writes the result to stdout: it cannot be combined with --json")
    _check_output(args.output)
    check_format(args)
    provider = args.provider
    # ``-o FILE`` is journaled with the run (``resume`` downloads there after a kill), and the
    # same command run again takes up the job's unfinished run (``--no-reuse``: a new one).
    to_file = args.output not in (None, "-")
    run = _by_name(
        s,
        lambda report: s.gateway.start(
            provider,
            report,
            parameters,
            scope=s.scope,
            on_progress=s.progress.starting,
            output=args.output if to_file else None,
            reuse=to_file and not args.no_reuse,
        ),
    )
    s.run = run
    s.progress.note(f"started {provider} run {run.id} ({run.report_id})")
    if args.no_wait:
        s.out.emit(
            run_json(run),
            _run_text(run, f"wait for it: {s.command('wait', run, args.output)}"),
        )
        return exits.OK
    s.resume = s.command("wait", run, args.output)
    run = s.wait(run, args.timeout)
    if args.output is None:
        s.out.emit(
            run_json(run),
            _run_text(run, f"download it: {s.command('download', run, 'FILE')}"),
        )
        return exits.OK
    saved = s.download(run, args.output, unzip=args.unzip, raw=args.raw)
    if args.output != "-":
        s.out.emit({**run_json(run), "download": saved}, _saved_text(run, saved, True))
    return exits.OK


def _get(s: Session) -> ReportRun:
    run = s.gateway.get(s.args.provider, s.args.run_id, scope=s.scope)
    s.run = run
    return run


def cmd_status(s: Session) -> int:
    run = _get(s)
    s.out.emit(run_json(run), run_block(run))
    return exits.OK


def cmd_wait(s: Session) -> int:
    """Wait, and with ``-o`` download too: the one command that resumes ``run -o FILE``."""
    args = s.args
    if args.output == "-" and args.json:
        raise UsageError("-o - writes the result to stdout: it cannot be combined with --json")
    _check_output(args.output)
    check_format(args)
    run = _get(s)
    s.resume = s.command("wait", run, args.output)
    run = s.wait(run, args.timeout)
    if args.output is None:
        s.out.emit(run_json(run), run_block(run))
        return exits.OK
    saved = s.download(run, args.output, unzip=args.unzip, raw=args.raw)
    if args.output != "-":
        s.out.emit({**run_json(run), "download": saved}, _saved_text(run, saved, True))
    return exits.OK


def cmd_download(s: Session) -> int:
    args = s.args
    if args.output == "-" and args.json:
        raise UsageError("-o - writes the result to stdout: it cannot be combined with --json")
    _check_output(args.output)
    check_format(args)
    run = _get(s)
    if run.status.is_terminal:
        from report_gateway.polling import finish

        finish(run)  # a failed or canceled run has nothing to download: say why
    else:
        from report_gateway.errors import DownloadError

        raise DownloadError(
            f"{run.provider} run {run.id} has no result yet (still {run.status.value}): wait "
            f"for it and download it with `{s.command('wait', run, args.output)}`"
        )
    saved = s.download(run, args.output, unzip=args.unzip, raw=args.raw)
    if args.output != "-":
        s.out.emit({**run_json(run), "download": saved}, _saved_text(run, saved, False))
    return exits.OK


def cmd_cancel(s: Session) -> int:
    run = s.gateway.cancel(_get(s))
    s.run = run
    s.out.emit(run_json(run), run_block(run))
    return exits.OK


def cmd_last(s: Session) -> int:
    run = _by_name(
        s, lambda report: s.gateway.last_completed(s.args.provider, report, scope=s.scope)
    )
    s.run = run
    s.out.emit(
        run_json(run),
        _run_text(run, f"download it: {PROG} download {run.provider} {run.id} -o FILE"),
    )
    return exits.OK


def cmd_runs(s: Session) -> int:
    if s.args.limit < 1:
        raise UsageError("--limit must be at least 1")
    runs = list(s.gateway.runs(s.args.provider, limit=s.args.limit, scope=s.scope))
    s.out.emit(
        [run_json(r) for r in runs],
        table(
            ["run id", "report", "status", "created"],
            [(r.id, r.report_id, r.status.value, r.created_at) for r in runs],
        )
        if runs
        else "no runs",
    )
    return exits.OK


def cmd_journal(s: Session) -> int:
    from .fanout import cmd_journal

    return cmd_journal(s)


def cmd_resume(s: Session) -> int:
    from .fanout import cmd_resume

    return cmd_resume(s)


def cmd_demo(s: Session) -> int:
    from .demo import run_demo

    return run_demo(s)


def cmd_listen(s: Session) -> int:
    from .listen import run_listen

    return run_listen(s)


COMMANDS: dict[str, Callable[[Session], int]] = {
    "providers": cmd_providers,
    "plugins": cmd_plugins,
    "templates": cmd_templates,
    "template": cmd_template,
    "search": cmd_search,
    "run": cmd_run,
    "status": cmd_status,
    "wait": cmd_wait,
    "download": cmd_download,
    "cancel": cmd_cancel,
    "last": cmd_last,
    "runs": cmd_runs,
    "journal": cmd_journal,
    "resume": cmd_resume,
    "demo": cmd_demo,
    "listen": cmd_listen,
}


# -- errors, warnings, logging --------------------------------------------------------------


def _secrets(args: argparse.Namespace, session: Session | None = None) -> list[str]:
    """Values that must never reach the terminal, whatever an error message contains.

    The exact secrets the session's gateway holds (``Gateway.held_secrets``: the credentials
    it resolved, from any source, and what the auth policies hold), plus settings and
    environment values that are secret by declaration (``Option.secret`` or ``credential``,
    declared by the provider plugins) or, when no plugin declares them, by name
    (``config.is_secret_key``), in case the error came before the gateway resolved them.
    """
    from report_gateway.config import is_secret_key

    declared, secret_env = _declared_secrets(args, session)
    values = [
        value
        for key, value in _settings_quietly(getattr(args, "settings", None))
        if declared.get(key, is_secret_key(key))
    ]
    values += [v for k, v in os.environ.items() if k in secret_env or is_secret_key(k)]
    found = {v for v in values if len(v) >= 6}  # judged by name only: short ones are noise
    gateway = session._gateway if session is not None else None
    if gateway is not None:
        from reporting_runtime.redaction import MIN_SECRET_LENGTH

        found |= {v for v in gateway.held_secrets() if len(v) >= MIN_SECRET_LENGTH}
    return sorted(found, key=len, reverse=True)


def _redact(text: str, secrets: list[str]) -> str:
    """``text`` (any number of lines) with every secret and key-shaped string hidden."""
    from reporting_runtime.redaction import scrub_text

    for secret in secrets:
        text = text.replace(secret, "<redacted>")
    return scrub_text(text)


def _redact_data(value: Any, secrets: list[str]) -> Any:
    """JSON-ready data with every string redacted (a run's provider-written fields too)."""
    if isinstance(value, str):
        return _redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_data(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_data(v, secrets) for v in value]
    return value


class _RedactingFormatter(logging.Formatter):
    """--debug logs: each formatted record (message, arguments, traceback) redacted with
    the secrets known at that moment, so a record logged after the gateway resolved its
    credentials is covered."""

    def __init__(self, fmt: str, secrets: Callable[[], list[str]]) -> None:
        super().__init__(fmt)
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return _redact(super().format(record), self._secrets())


def _declared_secrets(
    args: argparse.Namespace, session: Session | None
) -> tuple[dict[str, bool], set[str]]:
    """The named provider's setting key -> secret or not, and every secret option's env var.

    Empty without a gateway, or when its plugins cannot load (the error being reported may
    be that very failure).
    """
    gateway = session.opened_gateway if session is not None else None
    declared: dict[str, bool] = {}
    secret_env: set[str] = set()
    if gateway is None:
        return declared, secret_env
    # Never load plugins from here: this also runs for a warning a plugin emits while it
    # loads (a legacy spec's DeprecationWarning), and loading again would deadlock.
    specs = gateway.loaded_specs()
    provider = getattr(args, "provider", None)
    for spec in specs:
        for opt in spec.options:
            if spec.name == provider:
                declared[opt.key] = opt.hidden
            if opt.hidden and opt.env:
                secret_env.add(opt.env)
    return declared, secret_env


def _settings_quietly(items: list[str] | None) -> Iterator[tuple[str, str]]:
    """``--set`` pairs without ``parse_settings``'s checks.

    This runs while reporting an error, possibly the one a malformed ``--set`` caused.
    """
    for item in items or ():
        key, sep, value = item.partition("=")
        if sep:
            yield key, value


def _one_line(text: str, secrets: list[str]) -> str:
    return " ".join(_redact(text, secrets).split())


def _error_payload(exc: BaseException, code: int, message: str, s: Session) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type(exc).__name__, "message": message, "exit_code": code}
    run = getattr(exc, "run", None) or s.run
    if run is not None:
        error["run"] = run_json(run)
    for name in ("provider", "run_id", "status", "code", "request_id", "parameter"):
        value = getattr(exc, name, None)
        if isinstance(value, str | int):
            error[name] = value
    if _resume_hint(s, code) is not None:
        error["resume"] = s.resume
    return {"error": error}


#: Exit codes after which the step in progress can be taken up again as it was.
_RESUMABLE = frozenset({exits.INTERNAL, exits.TIMEOUT, exits.PROVIDER, exits.DOWNLOAD})


def _resume_hint(s: Session, code: int, where: str | None = None) -> str | None:
    """How to finish the job the failed step left (None: nothing to take up again)."""
    if s.resume is None or (code not in _RESUMABLE and code != exits.INTERRUPTED):
        return None
    run = s.run
    if where is None:
        where = f"{run.provider} run {run.id}" if run is not None else "the run"
    if s.resume.split()[1] == "download":
        return f"{where} succeeded: get its result with `{s.resume}`"
    return f"{where} goes on at the provider: resume with `{s.resume}`"


def _interrupted(s: Session) -> str:
    hint = _resume_hint(s, exits.INTERRUPTED)
    run = s.run
    if hint is not None:
        return f"interrupted; {hint}"
    if run is not None and not run.status.is_terminal:
        return (
            f"interrupted; {run.provider} run {run.id} goes on at the provider: resume with "
            f"`{s.command('wait', run)}`"
        )
    if run is not None:
        return f"interrupted ({run.provider} run {run.id})"
    if s.args.command == "run":
        return f"interrupted; a run may have been created: check `{PROG} runs {s.args.provider}`"
    return "interrupted"


def _describe(exc: BaseException, code: int, s: Session) -> str:
    from report_gateway.errors import WaitTimeoutError

    if isinstance(exc, WaitTimeoutError):
        status = getattr(exc.last_status, "value", exc.last_status) or "unknown"
        after = f" after {exc.elapsed:.0f}s" if exc.elapsed is not None else ""
        resume = _resume_hint(s, code, "it") or (
            f"it goes on at the provider: resume with `{PROG} wait {exc.provider} {exc.run_id}`"
        )
        return f"{exc.provider} run {exc.run_id} is still {status}{after}; {resume}"
    hint = _resume_hint(s, code)
    text = speak_cli(str(exc) or type(exc).__name__, s.args)
    base_url_hint = _base_url_hint(exc, s.args, s.opened_gateway)
    if base_url_hint:
        text = f"{text}; {base_url_hint}"
    if code == exits.INTERNAL:
        text = f"unexpected {type(exc).__name__}: {text} (rerun with --debug for the traceback)"
    return f"{text}; {hint}" if hint else text


def execute(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """Run the chosen command; every failure becomes one stderr line and an exit code."""
    session = Session(args, stdout, stderr)
    debug = bool(args.debug)
    handler: logging.Handler | None = None
    if debug:
        handler = logging.StreamHandler(stderr)
        handler.setFormatter(
            _RedactingFormatter("%(name)s: %(message)s", lambda: _secrets(args, session))
        )
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)

    def show_warning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: IO[str] | None = None,
        line: str | None = None,
    ) -> None:
        session.progress.finish()
        stderr.write(f"{PROG}: warning: {_one_line(str(message), _secrets(args, session))}\n")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = show_warning
            return COMMANDS[args.command](session)
    except KeyboardInterrupt:
        session.progress.finish()
        message = _interrupted(session)
        stderr.write(f"{PROG}: {message}\n")
        if session.out.as_json:
            payload = _error_payload(KeyboardInterrupt(), exits.INTERRUPTED, message, session)
            session.out.emit(payload, None)
        return exits.INTERRUPTED
    except BrokenPipeError:
        # `report-gateway runs x | head`: the reader left; not an error worth a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return exits.OK
    except Exception as exc:
        session.progress.finish()
        code = exit_code_for(exc)
        secrets = _secrets(args, session)
        message = _one_line(_describe(exc, code, session), secrets)
        if debug:
            stderr.write(_redact(traceback.format_exc(), secrets))
        stderr.write(f"{PROG}: error: {message}\n")
        if session.out.as_json:
            payload = _error_payload(exc, code, message, session)
            session.out.emit(_redact_data(payload, secrets), None)
        return code
    finally:
        session.close()
        if handler is not None:
            logging.getLogger().removeHandler(handler)
