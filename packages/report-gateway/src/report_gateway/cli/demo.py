"""``report-gateway demo``: one report per provider, end to end, against the embedded sandbox.

Nothing outside the process is touched: the sandbox serves the three APIs on a loopback port
in a thread, the gateway is pointed at it with the settings each provider declares on its
``ProviderSpec.demo`` (test credentials only), and the user's environment and config file are
kept out (a real key in STRIPE_API_KEY must never be sent to the sandbox, and a profile's
settings must not redirect the demo elsewhere). Every loaded provider that declares a demo
takes part, a third-party one included.
"""

from __future__ import annotations

import csv
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from . import exits
from .exits import exit_code_for
from .output import table

if TYPE_CHECKING:
    from report_gateway.demo import DemoSpec
    from report_gateway.gateway import Gateway
    from report_gateway.models import ReportTemplate

    from .commands import Session

__all__ = ["SHIPPED", "DemoResult", "run_demo"]

#: The providers of the distributions this project ships -> the distribution to install.
#: Only a list to show first and to name what to install when one is missing ("not
#: installed" rather than silently left out): what each runs, with which settings and
#: credentials, comes from its own ``ProviderSpec.demo``.
SHIPPED = {
    "stripe": "report-gateway-stripe",
    "stripe-v2": "report-gateway-stripe",
    "zuora": "report-gateway-zuora",
}


@attrs.define
class DemoResult:
    """One line of the summary table."""

    provider: str
    report: str
    run_id: str | None = None
    status: str = "not run"
    rows: int | None = None
    bytes: int | None = None
    seconds: float | None = None
    file: str | None = None
    error: str | None = None
    exit_code: int = exits.OK


def _midnight(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _window(
    start: datetime | None, end: datetime | None, days: int = 7
) -> tuple[datetime, datetime]:
    """The last ``days`` whole days inside the data the provider says it has."""
    until = _midnight(end) if end is not None else _midnight(datetime.now(UTC))
    since = until - timedelta(days=days)
    if start is not None and since < start:
        since = start
    return since, until


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return _as_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _template(gw: Gateway, provider: str, demo: DemoSpec) -> ReportTemplate:
    if not demo.search:
        return gw.template(provider, demo.report, scope=demo.scope)
    found = gw.search(provider, demo.report, scope=demo.scope)
    if not found:
        from report_gateway.errors import UnknownReportError

        raise UnknownReportError(provider, demo.report, "search found nothing")
    exact = [t for t in found if t.name == demo.report]
    return (exact or found)[0]


def _parameters(template: ReportTemplate, demo: DemoSpec) -> dict[str, Any]:
    """The declared parameters, the data window, then what the template itself fixes."""
    parameters = dict(demo.parameters)
    if demo.window is not None:
        first_name, last_name = demo.window
        spec = template.parameters.get(first_name)
        first = template.available_from
        if first is None and spec is not None:
            first = _as_datetime(spec.minimum)
        last = template.available_until
        if last is None and spec is not None:
            last = _as_datetime(spec.maximum)
        since, until = _window(first, last)
        if demo.window_as == "unix":
            parameters[first_name], parameters[last_name] = (
                int(since.timestamp()),
                int(until.timestamp()),
            )
        else:
            parameters[first_name], parameters[last_name] = _rfc3339(since), _rfc3339(until)
    for name, spec in template.parameters.items():
        if name in parameters or not spec.required:
            continue
        if spec.default is not None:
            parameters[name] = spec.default
        elif spec.allowed_values and len(spec.allowed_values) == 1:
            parameters[name] = spec.allowed_values[0]
    return parameters


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower()


def _count_rows(path: Path) -> int:
    """Data rows (the header row excluded), read as CSV so quoted newlines count once."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return max(0, sum(1 for _ in csv.reader(fh)) - 1)


def _installed_demos(s: Session) -> tuple[dict[str, DemoSpec | None], list[str], dict[str, str]]:
    """Every loadable provider's demo (None: it declares none), the entry points that load,
    and why the others do not (shown under the table).

    The plugins are found the gateway's way (``PluginRegistry``, honouring the
    ``load_plugins`` option from the command line's profile or the environment), except
    that one broken plugin marks its providers "not installed" instead of stopping the demo.
    """
    from report_gateway.plugins import PluginRegistry

    allowed = s.gateway.options.load_plugins  # resolved only: no plugin loads here
    registry = PluginRegistry(defaults=_NoDefaults(), allowed=allowed, skip_broken=True)
    demos = {name: spec.demo for name, spec in registry.specs().items()}
    return demos, list(registry.entry_points), dict(registry.broken)


class _NoDefaults:
    """The probe needs the plugins' specs only, not the gateway's built-in hook answers."""


def _run_one(s: Session, gw: Gateway, provider: str, demo: DemoSpec, folder: Path) -> DemoResult:
    result = DemoResult(provider, demo.report)
    started = time.monotonic()
    try:
        template = _template(gw, provider, demo)
        parameters = _parameters(template, demo)
        run = gw.start(provider, template.id, parameters, scope=demo.scope)
        result.run_id = run.id
        result.status = run.status.value
        run = s.wait(run, timeout=300.0)
        result.status = run.status.value
        target = folder / f"{provider}-{_slug(demo.report)}.csv"
        saved = s.download(run, str(target), unzip=True, raw=False)
        result.file = saved["path"]
        result.bytes = saved["bytes"]
        result.rows = _count_rows(Path(saved["path"]))
    except Exception as exc:
        s.progress.finish()
        result.exit_code = exit_code_for(exc)
        failed_run = getattr(exc, "run", None)
        if failed_run is not None:
            result.status = failed_run.status.value
        elif result.exit_code == exits.TIMEOUT:
            result.status = "timed out"
        else:
            result.status = "error"
        result.error = " ".join(str(exc).split()) or type(exc).__name__
    finally:
        result.seconds = time.monotonic() - started
    return result


def _not_run(provider: str, status: str, error: str) -> DemoResult:
    return DemoResult(provider, "", status=status, error=error, exit_code=exits.CONFIG)


def run_demo(s: Session) -> int:
    args = s.args
    try:
        from report_gateway_sandbox import Sandbox, SandboxConfig
    except ImportError as exc:
        from report_gateway.errors import ConfigurationError

        raise ConfigurationError(
            f"the demo needs the sandbox: pip install report-gateway-sandbox ({exc})"
        ) from exc
    from report_gateway.gateway import LOAD_PLUGINS_ENV, Gateway

    if args.rows < 1:
        from .exits import UsageError

        raise UsageError("--rows must be at least 1")
    folder = Path(args.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    declared, loadable, broken = _installed_demos(s)
    config = SandboxConfig(run_seconds=args.run_seconds, result_rows=args.rows)
    results: list[DemoResult] = []
    with Sandbox(config) as sandbox, tempfile.TemporaryDirectory() as empty_home:
        # A private environment: only the plugin allow-list, and a config home with no file.
        environ = {LOAD_PLUGINS_ENV: ",".join(loadable), "XDG_CONFIG_HOME": empty_home}
        demos = {name: demo for name, demo in declared.items() if demo is not None}
        settings = {name: demo.settings_for(sandbox.url) for name, demo in demos.items()}
        s.progress.note(f"sandbox serving on {sandbox.url}; writing files to {folder}")
        with Gateway(settings, environ=environ, journal=None) as gw:  # throwaway runs
            s.gateway.close()
            s.gateway = gw
            # The shipped providers first, in their order, then any other that declares one.
            for provider in (*SHIPPED, *(p for p in demos if p not in SHIPPED)):
                demo = demos.get(provider)
                if provider not in declared:
                    error = f"no installed plugin provides {provider!r}"
                    if provider in SHIPPED:
                        error += f" (pip install {SHIPPED[provider]})"
                    results.append(_not_run(provider, "not installed", error))
                elif demo is None:
                    error = f"the {provider!r} plugin declares no demo"
                    results.append(_not_run(provider, "no demo", error))
                else:
                    results.append(_run_one(s, gw, provider, demo, folder))
    failures = [r for r in results if r.exit_code != exits.OK]
    notes = [f"{r.provider}: {r.error}" for r in failures if r.error]
    notes += [f"plugin {name!r} failed to load: {why}" for name, why in broken.items()]
    human = table(
        ["provider", "report", "run id", "status", "rows", "bytes", "seconds"],
        [
            (
                r.provider,
                r.report or None,
                r.run_id,
                r.status,
                r.rows,
                r.bytes,
                f"{r.seconds:.1f}" if r.seconds is not None else None,
            )
            for r in results
        ],
        right=(4, 5, 6),
    )
    succeeded = len(results) - len(failures)
    human += f"\n\n{succeeded} of {len(results)} runs succeeded; files in {folder.resolve()}"
    if notes:
        human += "\n" + "\n".join(f"  {note}" for note in notes)
    s.out.emit(
        {
            "ok": not failures,
            "output_dir": str(folder.resolve()),
            "runs": [attrs.asdict(r) for r in results],
            "plugin_errors": broken,
        },
        human,
    )
    return failures[0].exit_code if failures else exits.OK
