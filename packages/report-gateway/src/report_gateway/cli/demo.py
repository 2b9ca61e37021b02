"""``report-gateway demo``: one report per provider, end to end, against the embedded sandbox.

Nothing outside the process is touched: the sandbox serves the three APIs on a loopback port
in a thread, the gateway is pointed at it with the sandbox's test credentials, and the
user's environment and config file are kept out (a real key in STRIPE_API_KEY must never be
sent to the sandbox, and a profile's settings must not redirect the demo elsewhere).
"""

from __future__ import annotations

import csv
import re
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from . import exits
from .exits import exit_code_for
from .output import table

if TYPE_CHECKING:
    from report_gateway.gateway import Gateway
    from report_gateway.models import ReportTemplate

    from .commands import Session

__all__ = ["DEMO_PROVIDERS", "DemoResult", "run_demo"]

#: The providers the demo runs, in the order the table shows them.
DEMO_PROVIDERS = ("stripe", "stripe-v2", "zuora")

STRIPE_REPORT = "balance.summary.1"
STRIPE_V2_REPORT = "report_balance_summary"
ZUORA_QUERY = "Customer report"


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


def _stripe(gw: Gateway) -> tuple[str, dict[str, Any]]:
    template = gw.template("stripe", STRIPE_REPORT)
    since, until = _window(template.available_from, template.available_until)
    return STRIPE_REPORT, {
        "interval_start": int(since.timestamp()),
        "interval_end": int(until.timestamp()),
    }


def _stripe_v2(gw: Gateway) -> tuple[str, dict[str, Any]]:
    template = gw.template("stripe-v2", STRIPE_V2_REPORT)
    spec = template.parameters.get("interval_start")
    first = _as_datetime(spec.minimum) if spec is not None else None
    last = _as_datetime(spec.maximum) if spec is not None else None
    since, until = _window(first, last)
    return STRIPE_V2_REPORT, {"interval_start": _rfc3339(since), "interval_end": _rfc3339(until)}


def _view_type(template: ReportTemplate) -> str:
    """Zuora's viewType must match the report's kind: from the plugin's schema, else raw."""
    spec = template.parameters.get("viewType")
    if spec is not None:
        if spec.default:
            return str(spec.default)
        if spec.allowed_values and len(spec.allowed_values) == 1:
            return spec.allowed_values[0]
    raw = template.raw or {}
    return str(raw.get("reportType") or "Summary")


def _zuora(gw: Gateway) -> tuple[str, dict[str, Any]]:
    found = gw.search("zuora", ZUORA_QUERY)
    if not found:
        from report_gateway.errors import UnknownReportError

        raise UnknownReportError("zuora", ZUORA_QUERY, "search found nothing")
    exact = [t for t in found if t.name == ZUORA_QUERY]
    template = (exact or found)[0]
    return template.id, {"viewType": _view_type(template)}


_CHOOSERS: dict[str, Callable[[Gateway], tuple[str, dict[str, Any]]]] = {
    "stripe": _stripe,
    "stripe-v2": _stripe_v2,
    "zuora": _zuora,
}
_LABELS = {"stripe": STRIPE_REPORT, "stripe-v2": STRIPE_V2_REPORT, "zuora": ZUORA_QUERY}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower()


def _count_rows(path: Path) -> int:
    """Data rows (the header row excluded), read as CSV so quoted newlines count once."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return max(0, sum(1 for _ in csv.reader(fh)) - 1)


def _loadable_plugins() -> tuple[list[str], dict[str, str]]:
    """Entry points that import, and why the others do not (shown under the table).

    Loading them here means one broken plugin marks its providers "not installed" instead
    of stopping the whole demo.
    """
    import os
    from importlib.metadata import entry_points

    from report_gateway.gateway import LOAD_PLUGINS_ENV

    wanted = os.environ.get(LOAD_PLUGINS_ENV)
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    loadable: list[str] = []
    broken: dict[str, str] = {}
    for entry_point in entry_points(group="report_gateway"):
        if allowed is not None and entry_point.name not in allowed:
            continue
        try:
            entry_point.load()
        except Exception as exc:
            broken[entry_point.name] = f"{type(exc).__name__}: {exc}"
        else:
            loadable.append(entry_point.name)
    return loadable, broken


def _run_one(s: Session, gw: Gateway, provider: str, folder: Path) -> DemoResult:
    result = DemoResult(provider, _LABELS[provider])
    started = time.monotonic()
    try:
        report_id, parameters = _CHOOSERS[provider](gw)
        if provider != "zuora":  # Zuora ids are opaque hex: the name says more
            result.report = report_id
        run = gw.start(provider, report_id, parameters)
        result.run_id = run.id
        result.status = run.status.value
        run = s.wait(run, timeout=300.0)
        result.status = run.status.value
        label = _LABELS[provider] if provider == "zuora" else report_id
        target = folder / f"{provider}-{_slug(label)}.csv"
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


def run_demo(s: Session) -> int:
    args = s.args
    try:
        from report_gateway_sandbox import (
            STRIPE_TEST_KEY,
            ZUORA_ACCESS_KEY_ID,
            ZUORA_SECRET_ACCESS_KEY,
            Sandbox,
            SandboxConfig,
        )
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
    loadable, broken = _loadable_plugins()
    config = SandboxConfig(run_seconds=args.run_seconds, result_rows=args.rows)
    results: list[DemoResult] = []
    with Sandbox(config) as sandbox, tempfile.TemporaryDirectory() as empty_home:
        settings = {
            "stripe": {
                "api_key": STRIPE_TEST_KEY,
                "base_url": sandbox.stripe_base_url,
                "files_base_url": sandbox.files_base_url,
            },
            "stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sandbox.stripe_base_url},
            "zuora": {
                "api_access_key_id": ZUORA_ACCESS_KEY_ID,
                "api_secret_access_key": ZUORA_SECRET_ACCESS_KEY,
                "base_url": sandbox.zuora_base_url,
            },
        }
        # A private environment: only the plugin allow-list, and a config home with no file.
        environ = {LOAD_PLUGINS_ENV: ",".join(loadable), "XDG_CONFIG_HOME": empty_home}
        s.progress.note(f"sandbox serving on {sandbox.url}; writing files to {folder}")
        with Gateway(settings, environ=environ) as gw:
            s.gateway = gw
            installed = set(gw.providers())
            for provider in DEMO_PROVIDERS:
                if provider not in installed:
                    results.append(
                        DemoResult(
                            provider,
                            _LABELS[provider],
                            status="not installed",
                            error=f"no installed plugin provides {provider!r}",
                            exit_code=exits.CONFIG,
                        )
                    )
                    continue
                results.append(_run_one(s, gw, provider, folder))
    failures = [r for r in results if r.exit_code != exits.OK]
    notes = [f"{r.provider}: {r.error}" for r in failures if r.error]
    notes += [f"plugin {name!r} failed to load: {why}" for name, why in broken.items()]
    human = table(
        ["provider", "report", "run id", "status", "rows", "bytes", "seconds"],
        [
            (
                r.provider,
                r.report,
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
