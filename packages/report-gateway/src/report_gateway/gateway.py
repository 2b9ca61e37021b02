"""The ``Gateway`` facade: one object that runs any installed provider's reports.

It reads as a sequence of calls to collaborators: the plugin registry (``plugins``), the
built-in hook answers (``defaults``), settings (``config``), credentials (``credentials``),
run admission (``admission``), waiting (``polling``), downloads and rows. It creates each
provider's driver once (under a lock: a Gateway is shared across threads) and wraps
runtime errors in ``ProviderError`` (``errors.provider_errors``).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from reporting_runtime.redaction import scrub_text

from .admission import Admissions
from .config import ProviderSettings, SettingsSource
from .connections import SharedTransport
from .credentials import resolve_credentials
from .defaults import BuiltinHooks
from .download import download
from .errors import DownloadError, provider_errors
from .events import RunEvents
from .hookspecs import hookimpl
from .models import ReportRun, ReportTemplate, RunStatus, Scope, StartProgress
from .plugins import LOAD_PLUGINS_ENV, PluginInfo, PluginRegistry
from .polling import Backoff, wait_for
from .provider import (
    ProviderContext,
    ProviderDriver,
    ProviderSpec,
    ResultResponse,
    accepts_progress,
    start_reporter,
)
from .rows import iter_rows
from .transfer import ResultBody, accepts_if_range

if TYPE_CHECKING:
    from reporting_runtime import RetryConfig, Transport

    from .download import DownloadProgress, ZipLimits
    from .polling import ProgressCallback

__all__ = ["LOAD_PLUGINS_ENV", "Gateway", "PluginInfo", "hookimpl"]

T = TypeVar("T")


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
    seconds (default 600) for a slot, then raises ``RunLimitError`` (``report_gateway.admission``).
    Gateway-wide keywords left out come from the profile's ``gateway`` table, then the
    environment (``options``).
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
        slot_timeout: float | None = None,
    ) -> None:
        self._settings = SettingsSource(
            settings, config_file=config_file, profile=profile, environ=environ
        )
        self.options = options = self._settings.gateway_options(
            ca_bundle=ca_bundle,
            retry=retry,
            user_agent=user_agent,
            max_active_runs=max_active_runs,
            slot_timeout=slot_timeout,
        )
        self._transport = SharedTransport(transport, options)
        self._admission = Admissions(options.max_active_runs, options.slot_timeout)
        self._key_ids: dict[str, str] = {}
        self._contexts: dict[str, ProviderContext] = {}
        self._progress_aware: dict[str, bool] = {}
        self._lock = threading.RLock()
        self._drivers: dict[str, ProviderDriver] = {}
        #: Terminal snapshots pushed to this process (``report_gateway.webhooks``) end waits.
        self.events = RunEvents()
        self._registry = PluginRegistry(
            defaults=BuiltinHooks(lambda name: self._registry.specs().get(name)),
            plugins=list(plugins or ()),
            load_entrypoints=load_entrypoints,
            allowed=options.load_plugins,
        )
        self.pm = self._registry.pm

    def __repr__(self) -> str:
        names = sorted(self._registry.specs()) if self._registry.loaded else "not loaded"
        return f"<Gateway providers={names}>"

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool if this Gateway created it."""
        self._transport.close()

    # -- plugins and providers -------------------------------------------------------------

    def providers(self) -> list[str]:
        """Names of the providers the installed plugins add, sorted."""
        return sorted(self._registry.specs())

    def spec(self, provider: str) -> ProviderSpec:
        """How a provider was announced (settings keys, env vars, poll hints)."""
        return self._registry.spec(provider)

    def plugins(self) -> list[PluginInfo]:
        """Every registered plugin with its distribution version and the hooks it implements."""
        return self._registry.listing()

    def driver(self, provider: str) -> ProviderDriver:
        """The provider's driver, created once (settings, credentials, auth resolved then)."""
        driver = self._drivers.get(provider)
        if driver is not None:
            return driver
        spec = self.spec(provider)
        with self._lock:
            driver = self._drivers.get(provider)
            if driver is None:
                with provider_errors(provider):
                    driver = spec.factory(self._context(spec))
                start = getattr(driver, "start", None)
                self._progress_aware[provider] = start is not None and accepts_progress(start)
                self._drivers[provider] = driver
        return driver

    def settings(self, provider: str) -> ProviderSettings:
        """The provider's layered settings (explicit > profile file > environment)."""
        spec = self.spec(provider)
        return self._settings.for_provider(provider, spec)

    def _context(self, spec: ProviderSpec) -> ProviderContext:
        settings = self.settings(spec.name)
        credentials = resolve_credentials(
            self.pm,
            spec,
            settings,
            profile=self._settings.profile,
            environ=self._settings.environ,
            credential_plugins=self._registry.implementing("report_gateway_credentials"),
        )
        hook = self.pm.hook
        context = ProviderContext(
            spec=spec,
            settings=settings,
            credentials=credentials,
            auth=hook.report_gateway_auth(provider=spec.name, credentials=credentials),
            scope_headers=lambda scope: hook.report_gateway_scope_headers(
                provider=spec.name, scope=scope
            ),
            map_status=lambda raw: hook.report_gateway_map_status(
                provider=spec.name, raw_status=raw
            ),
            transport_factory=self.transport,
            retry=self.options.retry,
            user_agent=self.options.user_agent,
        )
        self._key_ids[spec.name] = context.credential_id
        self._contexts[spec.name] = context
        return context

    def held_secrets(self) -> frozenset[str]:
        """Every secret value this Gateway holds now: the credentials it resolved and what
        each provider's auth policy holds (``AuthPolicy.secret_values``: a token it obtained
        too). What ``scrub`` hides; a provider not used yet holds nothing."""
        values: set[str] = set()
        for context in list(self._contexts.values()):
            values.update(v for v in context.credentials.values() if isinstance(v, str))
            if context.auth is not None:
                values.update(context.auth.secret_values())
        return frozenset(v for v in values if v)

    def scrub(self, text: str) -> str:
        """``text`` with every held secret (and key-shaped string) replaced by REDACTED."""
        return scrub_text(text, self.held_secrets())

    def transport(self) -> Transport:
        """The shared ``reporting_runtime.Transport`` (one connection pool for all providers)."""
        return self._transport.get()

    def _call(self, provider: str, action: Callable[[ProviderDriver], T]) -> T:
        driver = self.driver(provider)
        with provider_errors(provider, scrub=self.scrub):
            return action(driver)

    def _where(self, provider: str, scope: Scope | None) -> Scope:
        """``scope`` (None: empty) checked against what the provider declares it can send,
        before any driver call: a driver that forgets ``scope_headers`` cannot then ignore a
        field and report on the wrong account (ScopeError instead)."""
        where = scope or Scope()
        if not where.is_empty:
            self.driver(provider)
            self._contexts[provider].scope_headers(where)
        return where

    def _iterate(self, provider: str, items: Callable[[], Iterator[T]]) -> Iterator[T]:
        with provider_errors(provider, scrub=self.scrub):
            yield from items()

    def _changed(self, run: ReportRun, previous: ReportRun | None) -> None:
        self.pm.hook.report_gateway_run_changed(run=run, previous=previous)

    # -- templates ------------------------------------------------------------------------

    def templates(self, provider: str, *, scope: Scope | None = None) -> list[ReportTemplate]:
        """Every report the provider offers (Stripe report types, v2 reports, Zuora reports)."""
        where = self._where(provider, scope)
        return list(self._call(provider, lambda d: d.templates(scope=where)))

    def template(
        self, provider: str, report_id: str, *, scope: Scope | None = None
    ) -> ReportTemplate:
        """One report with its parameter schema; ``UnknownReportError`` if there is none."""
        where = self._where(provider, scope)
        return self._call(provider, lambda d: d.template(report_id, scope=where))

    def search(
        self, provider: str, query: str, *, scope: Scope | None = None
    ) -> list[ReportTemplate]:
        """Reports whose name matches ``query``."""
        where = self._where(provider, scope)
        return list(self._call(provider, lambda d: d.search(query, scope=where)))

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
        params, where = dict(parameters or {}), self._where(provider, scope)
        return self._call(provider, lambda d: d.validate(report_id, params, scope=where))

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
        where = self._where(provider, scope)
        key = idempotency_key or str(uuid.uuid4())
        params = dict(parameters or {})
        progress = start_reporter(provider, report_id, on_progress)

        def create(driver: ProviderDriver) -> ReportRun:
            valid = driver.validate(report_id, params, scope=where)
            # A driver whose start predates ``progress=`` is called without it.
            extra = {"progress": progress} if self._progress_aware.get(provider) else {}
            return self._admission.admit(
                self.spec(provider),
                self._key_ids.get(provider, ""),
                get=lambda run_id, held_scope: driver.get(run_id, scope=held_scope),
                create=lambda: driver.start(
                    report_id, valid, scope=where, idempotency_key=key, **extra
                ),
                limit=getattr(driver, "provider_limit", None),
                progress=progress,
                report_id=report_id,
                scope=where,
            )

        run = self._call(provider, create)
        self._changed(run, None)
        return run

    def get(self, provider: str, run_id: str, *, scope: Scope | None = None) -> ReportRun:
        """A fresh snapshot of a run (resume a wait from a saved id with ``wait(get(...))``)."""
        where = self._where(provider, scope)
        return self._seen(self._call(provider, lambda d: d.get(run_id, scope=where)))

    def _seen(self, run: ReportRun) -> ReportRun:
        """Free the run's slot once it is seen finished (and let a waiting start try)."""
        return self._admission.seen(run, self._key_ids.get(run.provider, ""))

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
        Between polls it sleeps on ``self.events``: a terminal snapshot published there (by
        ``report_gateway.webhooks``) ends the sleep and is taken instead of the next poll.
        """
        spec = self.spec(run.provider)
        first = poll_interval or spec.first_poll_interval
        backoff = Backoff(first=first, maximum=max(first, max_interval or spec.max_poll_interval))
        self._seen(run)
        fetch, pause = self.events.watch(
            run, lambda: self._call(run.provider, lambda d: d.get(run.id, scope=run.scope)), sleep
        )
        with provider_errors(run.provider, scrub=self.scrub):  # a failed run's reason too
            return wait_for(
                run,
                lambda: self._seen(fetch()),
                timeout=timeout,
                backoff=backoff,
                on_progress=on_progress,
                on_change=self._changed,
                clock=clock or time.monotonic,
                sleep=pause,
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
        where = self._where(provider, scope)
        return self._call(provider, lambda d: d.last_completed(report_id, scope=where))

    def runs(
        self, provider: str, *, limit: int | None = 100, scope: Scope | None = None
    ) -> Iterator[ReportRun]:
        """Recent runs, newest first, pages followed lazily up to ``limit`` (None: all)."""
        driver, where = self.driver(provider), self._where(provider, scope)
        return self._iterate(provider, lambda: driver.runs(limit=limit, scope=where))

    # -- results --------------------------------------------------------------------------

    def _opener(self, run: ReportRun) -> Callable[..., ResultResponse]:
        if run.status is not RunStatus.SUCCEEDED or run.result is None:
            raise DownloadError(
                f"{run.provider} run {run.id} has no result yet (status {run.raw_status}); "
                "wait for it first"
            )
        driver = self.driver(run.provider)

        validated = accepts_if_range(driver.open_result)

        def open_result(offset: int, if_range: str | None = None) -> ResultResponse:
            with provider_errors(run.provider, scrub=self.scrub):
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
        opener = self._opener(run)
        with provider_errors(run.provider, scrub=self.scrub):
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
        opener = self._opener(run)
        assert run.result is not None  # checked by _opener
        body = ResultBody(
            opener,
            expected_size=run.result.size,
            description=f"{run.provider} run {run.id} result",
        )
        content_type = run.result.content_type
        return self._iterate(run.provider, lambda: iter_rows(body, content_type))
