"""The ``Gateway`` facade: one object that runs any installed provider's reports.

It owns the pluggy plugin manager (project and entry-point group ``report_gateway``), loads
entry-point plugins once on first use (never at import), registers its own defaults through
the same hooks, resolves settings and credentials per provider, creates each provider's
driver once (under a lock: a Gateway is shared across threads), and does the
provider-neutral work around the drivers: validation before creation, one idempotency key
per start, waiting, downloading, rows, and wrapping runtime errors in ``ProviderError``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import pluggy

from . import hookspecs
from .config import (
    Credentials,
    ProfileFile,
    ProviderSettings,
    layer_settings,
    load_profile,
    resolve_ca_bundle,
)
from .errors import (
    ConfigurationError,
    CredentialsError,
    DownloadError,
    GatewayError,
    ProviderError,
    UnknownProviderError,
)
from .hookspecs import PROJECT
from .models import WAITING_FOR_SLOT, ReportRun, ReportTemplate, RunStatus, Scope, StartProgress
from .provider import (
    ProviderContext,
    ProviderDriver,
    ProviderSpec,
    ResultResponse,
    StartReporter,
    start_progress_to,
)

if TYPE_CHECKING:
    from reporting_runtime import RetryConfig, Transport

    from .download import DownloadProgress, ZipLimits
    from .limits import RunSlots
    from .polling import ProgressCallback

__all__ = ["LOAD_PLUGINS_ENV", "Gateway", "PluginInfo", "hookimpl"]

hookimpl = pluggy.HookimplMarker(PROJECT)

#: Comma-separated entry-point names to load (empty: none); unset loads every plugin.
LOAD_PLUGINS_ENV = "REPORT_GATEWAY_LOAD_PLUGINS"
DEFAULT_PLUGIN_NAME = "report_gateway.defaults"

T = TypeVar("T")


@attrs.frozen
class PluginInfo:
    """One registered plugin, as ``report-gateway plugins`` lists it.

    ``version`` and ``distribution`` come from the installed distribution's metadata for
    entry-point plugins; they are None for objects passed with ``Gateway(plugins=[...])``.
    """

    name: str
    version: str | None
    hooks: tuple[str, ...]
    distribution: str | None = None


class _Defaults:
    """The gateway's own answers, registered like any plugin and asked last."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    @hookimpl(trylast=True)
    def report_gateway_credentials(
        self, provider: str, settings: ProviderSettings
    ) -> Credentials | None:
        """Credentials from the layered settings: explicit, then profile file, then env."""
        keys = self._gateway.spec(provider).credential_keys
        if not all(settings.get(key) for key in keys):
            return None
        origins = sorted({settings.origin(key) or "settings" for key in keys})
        return Credentials(
            {key: str(settings[key]) for key in keys}, source=", ".join(origins) or "none needed"
        )

    @hookimpl(trylast=True)
    def report_gateway_map_status(self, raw_status: str) -> RunStatus | None:
        """Accept the neutral words themselves (``succeeded``, ``CANCELLED``...)."""
        word = raw_status.strip().lower()
        if word == "cancelled":
            return RunStatus.CANCELED
        try:
            return RunStatus(word)
        except ValueError:
            return None


def _start_reporter(
    provider: str, report_id: str, on_progress: Callable[[StartProgress], None]
) -> StartReporter:
    """The route from a driver's ``report_start_progress`` to a caller's ``on_progress``."""

    def report(state: str, waited: float, position: int | None, reason: str) -> None:
        event = StartProgress(
            provider=provider,
            report_id=report_id,
            state=state,
            waited_seconds=waited,
            position=position,
            reason=reason,
        )
        try:
            on_progress(event)
        except Exception:
            # A broken progress display must not abort a start that may be about to succeed.
            logging.getLogger("report_gateway").warning(
                "%s: on_progress for start of %s raised; ignored",
                provider,
                report_id,
                exc_info=True,
            )

    return report


class Gateway:
    """Run any installed provider's reports through one API.

    ``settings`` maps a provider name to its settings (highest precedence; see
    ``report_gateway.config`` for the profile file and the environment). ``plugins`` are extra
    plugin objects (modules or instances with ``@hookimpl`` methods) registered before the
    entry points; ``load_entrypoints=False`` keeps installed plugins out (tests, embedding).
    ``transport`` is a ``reporting_runtime.Transport`` to share; one is created on first use
    otherwise. ``ca_bundle`` is a PEM file of CA certificates that replaces the system trust
    store for every provider (a TLS-intercepting corporate proxy, a private CA); without it
    ``$REPORT_GATEWAY_CA_BUNDLE`` is used. Verification stays on either way; a missing or
    unreadable bundle is a ``ConfigurationError`` here, before any request. A ``transport``
    given explicitly brings its own trust (``Transport(ca_certs=...)``), so it excludes
    ``ca_bundle`` and ignores the environment variable.
    ``environ`` replaces ``os.environ`` for settings lookups (tests).
    ``max_active_runs`` caps the runs this process keeps active per provider and key (an int
    for every provider, or ``{"stripe-v2": 5}``); ``start`` waits up to ``slot_timeout``
    seconds for a slot, then raises ``RunLimitError`` (see ``report_gateway.limits``).
    """

    def __init__(
        self,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        config_file: str | os.PathLike[str] | None = None,
        profile: str | None = None,
        plugins: Sequence[object] | None = None,
        load_entrypoints: bool = True,
        transport: Transport | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        retry: RetryConfig | None = None,
        user_agent: str | None = None,
        environ: Mapping[str, str] | None = None,
        max_active_runs: int | Mapping[str, int] | None = None,
        slot_timeout: float = 600.0,
    ) -> None:
        self._explicit = {name: dict(values) for name, values in (settings or {}).items()}
        self._config_file = config_file
        self._profile_name = profile
        self._environ = environ
        self._extra_plugins = list(plugins or ())
        self._load_entrypoints = load_entrypoints
        if transport is not None and ca_bundle is not None:
            raise ConfigurationError(
                "give either transport= or ca_bundle=, not both: a Transport you build "
                "takes its CA bundle as Transport(ca_certs=...)"
            )
        self._ca_bundle = None if transport is not None else resolve_ca_bundle(ca_bundle, environ)
        self._transport = transport
        self._owns_transport = transport is None
        self._retry = retry
        self._max_active_runs = max_active_runs
        self._slot_timeout = slot_timeout
        self._key_ids: dict[str, str] = {}
        from . import __version__

        self._user_agent = user_agent or f"report-gateway/{__version__}"
        self._lock = threading.RLock()
        self._loaded = False
        self._specs: dict[str, ProviderSpec] = {}
        self._drivers: dict[str, ProviderDriver] = {}
        self._profile: ProfileFile | None = None
        self._distributions: dict[str, tuple[str, str]] = {}
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.pm.register(_Defaults(self), name=DEFAULT_PLUGIN_NAME)

    def __repr__(self) -> str:
        names = sorted(self._specs) if self._loaded else "not loaded"
        return f"<Gateway providers={names}>"

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool if this Gateway created it."""
        with self._lock:
            transport, self._transport = self._transport, None
        if transport is not None and self._owns_transport:
            for name in ("close", "clear"):
                method = getattr(transport, name, None)
                if callable(method):
                    method()
                    break

    # -- plugins and providers -------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._load_plugins()

    def _load_plugins(self) -> None:
        """Register extra plugins and entry points once, then collect the provider specs."""
        for plugin in self._extra_plugins:
            if not self.pm.is_registered(plugin):
                self.pm.register(plugin)
        if self._load_entrypoints:
            self._load_entry_points()
        self.pm.check_pending()
        specs: dict[str, ProviderSpec] = {}
        for answer in reversed(self.pm.hook.report_gateway_providers()):
            for spec in answer or ():
                if spec.name in specs:
                    raise ConfigurationError(f"two plugins register the provider {spec.name!r}")
                specs[spec.name] = spec
        self._specs = specs
        self._loaded = True

    def _load_entry_points(self) -> None:
        """Import and register each ``report_gateway`` entry point (honouring the allow-list).

        A plugin that fails to import is a ConfigurationError naming it, rather than a bare
        ImportError from deep inside the plugin manager.
        """
        from importlib.metadata import entry_points

        env = os.environ if self._environ is None else self._environ
        allowed = env.get(LOAD_PLUGINS_ENV)
        wanted = None
        if allowed is not None:
            wanted = {name.strip() for name in allowed.split(",") if name.strip()}
        for entry_point in entry_points(group=PROJECT):
            name = entry_point.name
            if wanted is not None and name not in wanted:
                continue
            if self.pm.get_plugin(name) is not None or self.pm.is_blocked(name):
                continue
            try:
                plugin = entry_point.load()
            except Exception as exc:
                dist = entry_point.dist.name if entry_point.dist else "unknown distribution"
                raise ConfigurationError(
                    f"plugin {name!r} ({dist}) failed to load: {type(exc).__name__}: {exc}; "
                    f"uninstall it or set {LOAD_PLUGINS_ENV} to the plugins to load"
                ) from exc
            self.pm.register(plugin, name=name)
            if entry_point.dist is not None:
                self._distributions[name] = (entry_point.dist.name, entry_point.dist.version)

    def providers(self) -> list[str]:
        """Names of the providers the installed plugins add, sorted."""
        self._ensure_loaded()
        return sorted(self._specs)

    def spec(self, provider: str) -> ProviderSpec:
        """How a provider was announced (settings keys, env vars, poll hints)."""
        self._ensure_loaded()
        try:
            return self._specs[provider]
        except KeyError:
            raise UnknownProviderError(provider, self._specs) from None

    def plugins(self) -> list[PluginInfo]:
        """Every registered plugin with its distribution version and the hooks it implements."""
        self._ensure_loaded()
        from . import __version__

        listing: list[PluginInfo] = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = tuple(sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ()))
            if name in self._distributions:
                dist_name, version = self._distributions[name]
                info = PluginInfo(name, version, hooks, dist_name)
            elif name == DEFAULT_PLUGIN_NAME:
                info = PluginInfo(name, __version__, hooks, "report-gateway")
            else:
                info = PluginInfo(name, None, hooks)
            listing.append(info)
        return sorted(listing, key=lambda info: info.name)

    def driver(self, provider: str) -> ProviderDriver:
        """The provider's driver, created once (settings, credentials, auth resolved then)."""
        driver = self._drivers.get(provider)
        if driver is not None:
            return driver
        spec = self.spec(provider)
        with self._lock:
            driver = self._drivers.get(provider)
            if driver is None:
                with self._wrapped(provider):
                    driver = spec.factory(self._context(spec))
                self._drivers[provider] = driver
        return driver

    def settings(self, provider: str) -> ProviderSettings:
        """The provider's layered settings (explicit > profile file > environment)."""
        spec = self.spec(provider)
        with self._lock:
            if self._profile is None:
                self._profile = load_profile(self._config_file, self._profile_name, self._environ)
            profile = self._profile
        resolved = layer_settings(
            provider,
            explicit=self._explicit.get(provider),
            profile=profile,
            env_vars=spec.env_vars,
            environ=self._environ,
        )
        if spec.settings_keys:
            unknown = sorted(set(resolved) - set(spec.settings_keys))
            if unknown:
                import warnings

                warnings.warn(
                    f"{provider}: unknown settings {unknown} (known: {list(spec.settings_keys)})",
                    stacklevel=2,
                )
        return resolved

    def _context(self, spec: ProviderSpec) -> ProviderContext:
        settings = self.settings(spec.name)
        credentials = self._credentials(spec, settings)
        from .limits import credential_id

        self._key_ids[spec.name] = credential_id(credentials)
        hook = self.pm.hook
        auth = hook.report_gateway_auth(provider=spec.name, credentials=credentials)

        def scope_headers(scope: Scope) -> Mapping[str, str] | None:
            result: Mapping[str, str] | None = hook.report_gateway_scope_headers(
                provider=spec.name, scope=scope
            )
            return result

        def map_status(raw_status: str) -> RunStatus | None:
            result: RunStatus | None = hook.report_gateway_map_status(
                provider=spec.name, raw_status=raw_status
            )
            return result

        return ProviderContext(
            spec=spec,
            settings=settings,
            credentials=credentials,
            auth=auth,
            scope_headers=scope_headers,
            map_status=map_status,
            transport_factory=self.transport,
            retry=self._retry,
            user_agent=self._user_agent,
        )

    def _credentials(self, spec: ProviderSpec, settings: ProviderSettings) -> Credentials:
        answer = self.pm.hook.report_gateway_credentials(provider=spec.name, settings=settings)
        if isinstance(answer, Credentials):
            return answer
        if answer is not None:
            return Credentials({str(k): str(v) for k, v in dict(answer).items()}, source="plugin")
        tried: list[str] = []
        for key in spec.credential_keys:
            if settings.get(key):
                continue
            where = [f"settings[{spec.name!r}][{key!r}]"]
            profile = self._profile
            if profile is not None and profile.path is not None:
                where.append(f"[profiles.{profile.profile}.{spec.name}] {key} in {profile.path}")
            elif profile is not None:
                from .config import default_config_path

                where.append(f"config file (none at {default_config_path(self._environ)})")
            if key in spec.env_vars:
                where.append(f"env {spec.env_vars[key]}")
            tried.append(f"{key}: " + ", ".join(where))
        others = [
            name
            for name, plugin in self.pm.list_name_plugin()
            if name != DEFAULT_PLUGIN_NAME
            and plugin is not None
            and any(
                c.name == "report_gateway_credentials"
                for c in self.pm.get_hookcallers(plugin) or ()
            )
        ]
        if others:
            tried.append("credential plugins: " + ", ".join(others))
        raise CredentialsError(spec.name, tried)

    def transport(self) -> Transport:
        """The shared ``reporting_runtime.Transport`` (one connection pool for all providers)."""
        transport = self._transport
        if transport is not None:
            return transport
        with self._lock:
            if self._transport is None:
                from reporting_runtime import Transport

                self._transport = Transport(ca_certs=self._ca_bundle)
            return self._transport

    @contextlib.contextmanager
    def _wrapped(self, provider: str) -> Iterator[None]:
        """Turn runtime errors into ``ProviderError`` (gateway errors pass through)."""
        try:
            yield
        except GatewayError:
            raise
        except Exception as exc:
            if _is_runtime_error(exc):
                raise ProviderError(exc, provider=provider) from exc
            raise

    def _call(self, provider: str, action: Callable[[ProviderDriver], T]) -> T:
        driver = self.driver(provider)
        with self._wrapped(provider):
            return action(driver)

    def _iterate(self, provider: str, items: Callable[[], Iterator[T]]) -> Iterator[T]:
        with self._wrapped(provider):
            yield from items()

    def _changed(self, run: ReportRun, previous: ReportRun | None) -> None:
        self.pm.hook.report_gateway_run_changed(run=run, previous=previous)

    # -- templates ------------------------------------------------------------------------

    def templates(self, provider: str, *, scope: Scope | None = None) -> list[ReportTemplate]:
        """Every report the provider offers (Stripe report types, v2 reports, Zuora reports)."""
        return list(self._call(provider, lambda d: d.templates(scope=scope or Scope())))

    def template(
        self, provider: str, report_id: str, *, scope: Scope | None = None
    ) -> ReportTemplate:
        """One report with its parameter schema; ``UnknownReportError`` if there is none."""
        return self._call(provider, lambda d: d.template(report_id, scope=scope or Scope()))

    def search(
        self, provider: str, query: str, *, scope: Scope | None = None
    ) -> list[ReportTemplate]:
        """Reports whose name matches ``query``."""
        return list(self._call(provider, lambda d: d.search(query, scope=scope or Scope())))

    # -- runs -----------------------------------------------------------------------------

    def validate(
        self,
        provider: str,
        report_id: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        scope: Scope | None = None,
    ) -> dict[str, Any]:
        """Check parameters without creating a run; return them as the provider wants them."""
        params = dict(parameters or {})
        return self._call(provider, lambda d: d.validate(report_id, params, scope=scope or Scope()))

    def start(
        self,
        provider: str,
        report_id: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        scope: Scope | None = None,
        idempotency_key: str | None = None,
        on_progress: Callable[[StartProgress], None] | None = None,
    ) -> ReportRun:
        """Validate the parameters, then create a run (once, even if the request is retried).

        One idempotency key is made per call (or taken from ``idempotency_key``, to make a
        retried job reuse its run); the runtime reuses it on every retry of the request.
        ``on_progress`` hears, in the calling thread, why a start is taking long (waiting
        for a free run slot under ``max_active_runs`` or a provider's concurrency limit);
        a callback that raises is logged and ignored, never costing the run.
        """
        where = scope or Scope()
        key = idempotency_key or str(uuid.uuid4())
        params = dict(parameters or {})
        report = None if on_progress is None else _start_reporter(provider, report_id, on_progress)

        def create(driver: ProviderDriver) -> ReportRun:
            valid = driver.validate(report_id, params, scope=where)
            slots = self._run_slots(provider)
            if slots is None:
                with start_progress_to(report):
                    return driver.start(report_id, valid, scope=where, idempotency_key=key)
            self._take_slot(provider, driver, slots, report)
            try:
                with start_progress_to(report):
                    created = driver.start(report_id, valid, scope=where, idempotency_key=key)
            except BaseException:
                slots.cancel_reservation()
                raise
            slots.confirm(created)
            return created

        run = self._call(provider, create)
        self._changed(run, None)
        return run

    def get(self, provider: str, run_id: str, *, scope: Scope | None = None) -> ReportRun:
        """A fresh snapshot of a run (resume a wait from a saved id with ``wait(get(...))``)."""
        return self._seen(self._call(provider, lambda d: d.get(run_id, scope=scope or Scope())))

    # -- run slots (max_active_runs) ------------------------------------------------------

    def _limit(self, provider: str) -> int | None:
        cap = self._max_active_runs
        if cap is None or isinstance(cap, int):
            return cap
        return cap.get(provider)

    def _run_slots(self, provider: str) -> RunSlots | None:
        """The process-wide slots for this provider and key, if a cap applies to it."""
        if self._limit(provider) is None:
            return None
        from .limits import slots_for

        self.driver(provider)  # resolves the credentials, hence the key id
        return slots_for(provider, self._key_ids.get(provider, ""))

    def _seen(self, run: ReportRun) -> ReportRun:
        """Free the run's slot once it is seen finished."""
        if run.status.is_terminal and self._limit(run.provider) is not None:
            slots = self._run_slots(run.provider)
            if slots is not None:
                slots.release(run.id)
        return run

    def _take_slot(
        self,
        provider: str,
        driver: ProviderDriver,
        slots: RunSlots,
        report: StartReporter | None = None,
    ) -> None:
        """Reserve a slot, re-reading the runs that hold them while none is free."""
        import time

        from .errors import RunLimitError, RunNotFoundError

        limit = self._limit(provider)
        assert limit is not None
        spec = self.spec(provider)
        started = time.monotonic()
        delay = spec.first_poll_interval
        while not slots.try_reserve(limit):
            for held in slots.holders():
                try:
                    fresh = driver.get(held.id, scope=held.scope)
                except RunNotFoundError:
                    slots.release(held.id)  # gone (deleted, expired): it holds nothing
                    continue
                if fresh.status.is_terminal:
                    slots.release(held.id)
            if slots.try_reserve(limit):
                return
            waited = time.monotonic() - started
            if waited >= self._slot_timeout:
                raise RunLimitError(provider, limit, [r.id for r in slots.holders()], waited)
            logging.getLogger("report_gateway").info(
                "%s: %d run(s) active, the max_active_runs limit; waiting %.1fs for one to end",
                provider,
                limit,
                delay,
            )
            if report is not None:
                report(WAITING_FOR_SLOT, waited, None, f"max_active_runs={limit} reached")
            time.sleep(min(delay, max(0.0, self._slot_timeout - waited)))
            delay = min(delay * 1.5, spec.max_poll_interval)

    def wait(
        self,
        run: ReportRun,
        *,
        timeout: float | None = 3600.0,
        on_progress: ProgressCallback | None = None,
        poll_interval: float | None = None,
        max_interval: float | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> ReportRun:
        """Poll until the run ends; return it SUCCEEDED or raise.

        Raises ``RunFailedError`` (with the provider's reason), ``RunCanceledError``, or
        ``WaitTimeoutError`` after ``timeout`` seconds (None: no deadline). ``on_progress(run,
        elapsed)`` is called before the first poll and after each one; every status change
        fires ``report_gateway_run_changed``. ``poll_interval``/``max_interval`` override the
        provider's hints; ``clock``/``sleep`` replace ``time.monotonic``/``time.sleep``.
        """
        import time

        from .polling import Backoff, wait_for

        spec = self.spec(run.provider)
        first = poll_interval or spec.first_poll_interval
        backoff = Backoff(first=first, maximum=max(first, max_interval or spec.max_poll_interval))
        self._seen(run)
        return wait_for(
            run,
            lambda: self._seen(self._call(run.provider, lambda d: d.get(run.id, scope=run.scope))),
            timeout=timeout,
            backoff=backoff,
            on_progress=on_progress,
            on_change=self._changed,
            clock=clock or time.monotonic,
            sleep=sleep or time.sleep,
        )

    def cancel(self, run: ReportRun) -> ReportRun:
        """Ask the provider to stop the run; return its new snapshot."""
        canceled = self._seen(self._call(run.provider, lambda d: d.cancel(run)))
        if canceled.status is not run.status:
            self._changed(canceled, run)
        return canceled

    def last_completed(
        self, provider: str, report_id: str, *, scope: Scope | None = None
    ) -> ReportRun:
        """The newest succeeded run of a report; ``RunNotFoundError`` when there is none."""
        return self._call(provider, lambda d: d.last_completed(report_id, scope=scope or Scope()))

    def runs(
        self, provider: str, *, limit: int | None = 100, scope: Scope | None = None
    ) -> Iterator[ReportRun]:
        """Recent runs, newest first, pages followed lazily up to ``limit`` (None: all)."""
        driver = self.driver(provider)
        return self._iterate(provider, lambda: driver.runs(limit=limit, scope=scope or Scope()))

    # -- results --------------------------------------------------------------------------

    def _opener(self, run: ReportRun) -> Callable[..., ResultResponse]:
        if run.status is not RunStatus.SUCCEEDED or run.result is None:
            raise DownloadError(
                f"{run.provider} run {run.id} has no result yet (status {run.raw_status}); "
                "wait for it first"
            )
        driver = self.driver(run.provider)
        from .transfer import accepts_if_range

        validated = accepts_if_range(driver.open_result)

        def open_result(offset: int, if_range: str | None = None) -> ResultResponse:
            with self._wrapped(run.provider):
                if if_range is not None and validated:
                    return driver.open_result(run, offset=offset, if_range=if_range)  # type: ignore[call-arg]
                return driver.open_result(run, offset=offset)

        return open_result

    def download(
        self,
        run: ReportRun,
        path: str | os.PathLike[str],
        *,
        unzip: bool = False,
        raw: bool = False,
        overwrite: bool = True,
        on_progress: DownloadProgress | None = None,
        durable: bool = True,
        zip_limits: ZipLimits | None = None,
    ) -> Path:
        """Save the result atomically and verified; return the path written.

        ``unzip`` unpacks a ZIP result to its CSV; Zuora's UTF-16 export is converted to UTF-8
        CSV unless ``raw``; ``on_progress(bytes, total)`` follows the transfer; ``durable=False``
        skips the fsyncs (still atomic, not crash-safe); ``zip_limits`` bounds what a ZIP
        member may expand to (``ZipLimits()`` defaults).
        """
        from .download import download

        opener = self._opener(run)
        with self._wrapped(run.provider):
            return download(
                run,
                path,
                opener,
                unzip=unzip,
                raw=raw,
                overwrite=overwrite,
                on_progress=on_progress,
                durable=durable,
                zip_limits=zip_limits,
            )

    def rows(self, run: ReportRun) -> Iterator[dict[str, str]]:
        """The result's rows as dicts keyed by the header row, streamed (see ``rows``)."""
        from .rows import iter_rows
        from .transfer import ResultBody

        opener = self._opener(run)
        assert run.result is not None  # checked by _opener
        body = ResultBody(
            opener,
            expected_size=run.result.size,
            description=f"{run.provider} run {run.id} result",
        )
        content_type = run.result.content_type
        return self._iterate(run.provider, lambda: iter_rows(body, content_type))


def _is_runtime_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from reporting_runtime (checked without importing it)."""
    runtime = sys.modules.get("reporting_runtime")
    base = getattr(runtime, "ReportingError", None)
    return isinstance(base, type) and isinstance(exc, base)
