"""The subcommands, and the error handling that turns any failure into one line and an exit code.

Imported only after the command line parsed, so ``--help`` never pays for it; the gateway
itself (pluggy, attrs, the plugins) is imported only when a command first needs it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import exits
from .exits import UsageError, exit_code_for
from .output import (
    Output,
    key_values,
    run_block,
    run_json,
    table,
    template_json,
)
from .params import parse_parameters, parse_settings
from .parser import PROG
from .progress import Progress

if TYPE_CHECKING:
    from report_gateway.gateway import Gateway
    from report_gateway.models import ReportRun, ReportTemplate, Scope

__all__ = ["COMMANDS", "Session", "execute", "open_gateway"]


def open_gateway(args: argparse.Namespace, **extra: Any) -> Gateway:
    """Build the Gateway the command line asks for (``extra`` goes to ``Gateway``).

    ``--base-url`` and ``--set`` apply to the provider the command names; they are explicit
    settings, so they win over the config file and the environment (a plugin whose settings
    depend on each other, like Stripe's files host on ``base_url``, weighs the layers itself).
    """
    from report_gateway.gateway import Gateway

    overrides: dict[str, Any] = parse_settings(getattr(args, "settings", None))
    base_url = getattr(args, "base_url", None)
    if base_url:
        overrides["base_url"] = base_url
    provider: str | None = getattr(args, "provider", None)
    if overrides and provider is None:
        raise UsageError("--base-url and --set need a command that names a PROVIDER")
    options = {
        "config_file": getattr(args, "config", None),
        "profile": getattr(args, "profile", None),
        "ca_bundle": getattr(args, "ca_bundle", None),
        **extra,
    }
    settings = {provider: overrides} if overrides and provider is not None else {}
    return Gateway(settings, **options)


class Session:
    """One command's state: its options, output streams, gateway, and the run in progress.

    The run is remembered so that an interrupt or an error can say which run to resume.
    """

    def __init__(self, args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> None:
        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        self.out = Output(stdout, as_json=bool(args.json))
        self.progress = Progress(stderr)
        self.run: ReportRun | None = None
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

    def download(self, run: ReportRun, output: str, *, unzip: bool, raw: bool) -> dict[str, Any]:
        """Save the result to ``output`` (``-``: stdout); return where and how many bytes."""
        self.progress.start_download()
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
        path = self.gateway.download(
            run, output, unzip=unzip, raw=raw, on_progress=self.progress.downloading
        )
        size = path.stat().st_size
        self.progress.downloaded(size, str(path))
        return {"path": str(path), "bytes": size}


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
    """Refuse a target folder that does not exist before a run is started for nothing."""
    if output is None or output == "-":
        return
    target = Path(output)
    if not target.is_dir() and not target.parent.is_dir():
        raise UsageError(f"-o {output}: folder {target.parent} does not exist")


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
    t = s.gateway.template(s.args.provider, s.args.report, scope=s.scope)
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
    provider = args.provider
    run = s.gateway.start(
        provider, args.report, parameters, scope=s.scope, on_progress=s.progress.starting
    )
    s.run = run
    s.progress.note(f"started {provider} run {run.id} ({run.report_id})")
    if args.no_wait:
        s.out.emit(
            run_json(run),
            _run_text(run, f"wait for it: {PROG} wait {provider} {run.id}"),
        )
        return exits.OK
    run = s.wait(run, args.timeout)
    if args.output is None:
        s.out.emit(
            run_json(run),
            _run_text(run, f"download it: {PROG} download {provider} {run.id} -o FILE"),
        )
        return exits.OK
    saved = s.download(run, args.output, unzip=args.unzip, raw=args.raw)
    if args.output != "-":
        s.out.emit(
            {**run_json(run), "download": saved},
            _run_text(run, f"wrote {saved['path']} ({saved['bytes']} bytes)"),
        )
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
    run = s.wait(_get(s), s.args.timeout)
    s.out.emit(run_json(run), run_block(run))
    return exits.OK


def cmd_download(s: Session) -> int:
    args = s.args
    if args.output == "-" and args.json:
        raise UsageError("-o - writes the result to stdout: it cannot be combined with --json")
    run = _get(s)
    if run.status.is_terminal:
        from report_gateway.polling import finish

        finish(run)  # a failed or canceled run has nothing to download: say why
    saved = s.download(run, args.output, unzip=args.unzip, raw=args.raw)
    if args.output != "-":
        s.out.emit(
            {**run_json(run), "download": saved}, f"wrote {saved['path']} ({saved['bytes']} bytes)"
        )
    return exits.OK


def cmd_cancel(s: Session) -> int:
    run = s.gateway.cancel(_get(s))
    s.run = run
    s.out.emit(run_json(run), run_block(run))
    return exits.OK


def cmd_last(s: Session) -> int:
    run = s.gateway.last_completed(s.args.provider, s.args.report, scope=s.scope)
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
    try:
        specs = [gateway.spec(name) for name in gateway.providers()]
    except Exception:
        return declared, secret_env
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
    return {"error": error}


def _describe(exc: BaseException, code: int) -> str:
    text = str(exc) or type(exc).__name__
    if code == exits.INTERNAL:
        return f"unexpected {type(exc).__name__}: {text} (rerun with --debug for the traceback)"
    return text


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
        run = session.run
        message = "interrupted"
        if run is not None and not run.status.is_terminal:
            message += (
                f"; {run.provider} run {run.id} goes on at the provider: resume with "
                f"`{PROG} wait {run.provider} {run.id}`"
            )
        elif run is not None:
            message += f" ({run.provider} run {run.id})"
        elif args.command == "run":
            message += f"; a run may have been created: check `{PROG} runs {args.provider}`"
        stderr.write(f"{PROG}: {message}\n")
        if session.out.as_json:
            session.out.emit(
                _error_payload(KeyboardInterrupt(), exits.INTERRUPTED, message, session), None
            )
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
        message = _one_line(_describe(exc, code), secrets)
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
