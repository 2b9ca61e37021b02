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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from reporting_runtime.redaction import scrub_text

from .admission import Admissions
from .config import ProviderSettings, SettingsSource
from .connections import SharedTransport
from .credentials import resolve_credentials
from .defaults import BuiltinHooks
from .download import download
from .errors import provider_errors
from .events import RunEvents
from .hookspecs import hookimpl
from .journal import JournalHolder, journaled_start
from .models import ReportRun, ReportTemplate, Scope, StartProgress
from .plugins import LOAD_PLUGINS_ENV, PluginInfo, PluginRegistry
from .polling import Backoff, wait_for
from .provider import (
    DriverCalls,
    ProviderContext,
    ProviderDriver,
    ProviderSpec,
    start_reporter,
)
from .rows import iter_rows
from .transfer import ResultBody, result_opener

if TYPE_CHECKING:
    from reporting_runtime import RetryConfig, Transport

    from .download import DownloadProgress, ZipLimits
    from .fanout import FanOutProgress, FanOutResult
    from .journal import Create, Journal, JournalEntry
    from .polling import ProgressCallback

__all__ = ["LOAD_PLUGINS_ENV", "Gateway", "PluginInfo", "hookimpl"]

T = TypeVar("T")
_UNSET = object()


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
    ``journal`` is the SQLite run journal's path (default: in the user data folder; None
    turns it off): every start is written down there first (``report_gateway.journal``).
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
        journal: str | os.PathLike[str] | None | object = _UNSET,
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
            journal=None if journal is _UNSET else (journal or ""),
        )
        self._journal = JournalHolder(options)
        self._transport = SharedTransport(transport, options)
        self._admission = Admissions(options.max_active_runs, options.slot_timeout)
        self._key_ids: dict[str, str] = {}
        self._contexts: dict[str, ProviderContext] = {}
        self._calls: dict[str, DriverCalls] = {}
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
        """Release the connection pool if this Gateway created it, and the journal."""
        self._transport.close()
        self._journal.close()

    @property
    def journal(self) -> Journal | None:
        """The run journal (opened on first use), or None when turned off."""
        return self._journal.get()

    # -- plugins and providers -------------------------------------------------------------

    def providers(self) -> list[str]:
        """Names of the providers the installed plugins add, sorted."""
        return sorted(self._registry.specs())

    def loaded_specs(self) -> list[ProviderSpec]:
        """Every spec, loading the plugins if need be, but empty when called from inside
        that loading (a warning handler hearing a plugin's warning): loading again there
        would deadlock. Empty too when the plugins fail to load."""
        if self._registry.loading_here:
            return []
        try:
            return list(self._registry.specs().values())
        except Exception:
            return []

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
                # Which optional keywords (progress=, deadline=, ...) its methods take.
                self._calls[provider] = DriverCalls.of(driver)
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

    def credential_id(self, provider: str) -> str:
        """A hash naming the provider's credentials (never the credentials themselves)."""
        self.driver(provider)
        return self._key_ids.get(provider, "")

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
        journal = self.journal
        if journal is not None:
            journal.record_status(
                run.provider,
                run.id,
                run.status,
                run.raw_status,
                credential=self._key_ids.get(run.provider),
                scope=run.scope,
            )
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
        reuse: bool = False,
    ) -> ReportRun:
        """Validate the parameters, then create a run (once, even if the request is retried).

        One idempotency key is made per call (or taken from ``idempotency_key``, to make a
        retried job reuse its run); the runtime reuses it on every retry of the request.
        ``on_progress`` hears, in the calling thread, why a start is taking long (waiting
        for a free run slot under ``max_active_runs`` or a provider's concurrency limit);
        a callback that raises is logged and ignored, never costing the run.
        The start is journaled before its create is sent; ``reuse=True`` first looks there
        for the same job (provider, report, parameters, scope, credentials) and returns its
        run when it is still going or succeeded, recovering a create whose answer was lost.
        """
        run, entry = self._journaled_start(
            provider,
            report_id,
            dict(parameters or {}),
            self._where(provider, scope),
            key=idempotency_key or str(uuid.uuid4()),
            reuse=reuse,
            on_progress=on_progress,
        )
        if run is None:  # downloaded and verified: the journal's run, as it is now
            assert entry is not None
            assert entry.run_id is not None
            run = self.get(provider, entry.run_id, scope=entry.scope)
        return run

    def _journaled_start(
        self,
        provider: str,
        report_id: str,
        params: dict[str, Any],
        where: Scope,
        *,
        key: str,
        reuse: bool,
        on_progress: Callable[[StartProgress], None] | None = None,
        output: str | os.PathLike[str] | None = None,
    ) -> tuple[ReportRun | None, JournalEntry | None]:
        create = self._creator(on_progress)
        if self.journal is None:
            return create(provider, report_id, params, where, key, lambda: None), None
        return journaled_start(
            self, self.journal, create, provider, report_id, params, where,
            key=key, reuse=reuse, output=output,
        )  # fmt: skip

    def _creator(self, on_progress: Callable[[StartProgress], None] | None = None) -> Create:
        return lambda *args: self._create(*args, on_progress=on_progress)

    def _create(
        self,
        provider: str,
        report_id: str,
        params: Mapping[str, Any],
        where: Scope,
        key: str,
        sending: Callable[[], None],
        *,
        on_progress: Callable[[StartProgress], None] | None,
    ) -> ReportRun:
        progress = start_reporter(provider, report_id, on_progress)

        def create(driver: ProviderDriver) -> ReportRun:
            valid = driver.validate(report_id, dict(params), scope=where)
            # A driver whose start predates ``progress=`` is called without it.
            extra = self._calls[provider].keywords("start", progress=progress)

            def send() -> ReportRun:
                sending()
                return driver.start(report_id, valid, scope=where, idempotency_key=key, **extra)

            return self._admission.admit(
                self.spec(provider),
                self._key_ids.get(provider, ""),
                get=lambda run_id, held_scope: driver.get(run_id, scope=held_scope),
                create=send,
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
        ``timeout`` is a deadline for the whole call: each poll's request gets what is left
        (retries and Retry-After included), so the wait ends within moments of it whatever
        the server does.
        Between polls it sleeps on ``self.events``: a terminal snapshot published there (by
        ``report_gateway.webhooks``) ends the sleep and is taken instead of the next poll; a
        run the journal says ended (a listener in another process) is polled at once.
        """
        spec = self.spec(run.provider)
        first = poll_interval or spec.first_poll_interval
        backoff = Backoff(first=first, maximum=max(first, max_interval or spec.max_poll_interval))
        journal = self.journal  # opened before the deadline starts counting
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        self._seen(run)
        self.driver(run.provider)
        extra = self._calls[run.provider].keywords("get", deadline=deadline)
        fetch, pause = self.events.watch(
            run,
            lambda: self._call(run.provider, lambda d: d.get(run.id, scope=run.scope, **extra)),
            sleep,
            journal=journal,
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
        timeout: float | None = None,
        stall_timeout: float | None = None,
    ) -> Path:
        """Save the result atomically and verified; return the path written.

        ``unzip`` unpacks a ZIP result to its CSV; Zuora's UTF-16 export is converted to UTF-8
        CSV unless ``raw``; ``on_progress(bytes, total)`` follows the transfer; ``durable=False``
        skips the fsyncs (still atomic, not crash-safe); ``zip_limits`` bounds what a ZIP
        member may expand to (``ZipLimits()`` defaults). ``timeout``: seconds the whole
        transfer may take, reconnects included (None: no limit); ``stall_timeout``: the
        longest wait for any byte (None: the transport's read timeout, 60 s by default).
        Either ends the call with a ``DownloadError``, nothing written.
        """
        return self._download(
            run,
            path,
            unzip=unzip,
            raw=raw,
            overwrite=overwrite,
            on_progress=on_progress,
            durable=durable,
            zip_limits=zip_limits,
            timeout=timeout,
            stall_timeout=stall_timeout,
        )

    def _download(
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
        timeout: float | None = None,
        stall_timeout: float | None = None,
        entry_id: str | None = None,
    ) -> Path:
        """``download``, recorded on journal entry ``entry_id`` when the caller knows it
        (run ids repeat: a sandbox's after a restart), else on the newest entry of the run
        under these credentials and scope."""
        opener = result_opener(run, self.driver, self._calls, self.scrub, timeout, stall_timeout)
        with provider_errors(run.provider, scrub=self.scrub):
            saved = download(
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
        if self.journal is not None:
            self.journal.record_download(
                run.provider,
                run.id,
                saved,
                saved.stat().st_size,
                entry_id=entry_id,
                credential=self._key_ids.get(run.provider),
                scope=run.scope,
            )
        return saved

    def rows(
        self,
        run: ReportRun,
        *,
        timeout: float | None = None,
        stall_timeout: float | None = None,
    ) -> Iterator[dict[str, str]]:
        """The result's rows as dicts keyed by the header row, streamed (see ``rows``);
        ``timeout`` (from this call) and ``stall_timeout`` as for ``download``."""
        opener = result_opener(run, self.driver, self._calls, self.scrub, timeout, stall_timeout)
        assert run.result is not None  # checked by _opener
        body = ResultBody(
            opener,
            expected_size=run.result.size,
            description=f"{run.provider} run {run.id} result",
        )
        content_type = run.result.content_type
        return self._iterate(run.provider, lambda: iter_rows(body, content_type))

    def to_arrow(self, run: ReportRun, **options: Any) -> Any:
        """The result as a typed ``pyarrow.Table`` (``report-gateway[arrow]``; ``tabular``)."""
        from .tabular import to_arrow

        return to_arrow(self, run, **options)

    def to_parquet(self, run: ReportRun, path: str | os.PathLike[str], **options: Any) -> Path:
        """The result as a Parquet file, atomically, in record batches (``tabular``)."""
        from .tabular import to_parquet

        return to_parquet(self, run, path, **options)

    # -- many runs ------------------------------------------------------------------------

    def run_many(
        self,
        provider: str,
        report_id: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        scopes: Iterable[Scope],
        max_concurrency: int | None = None,
        output_dir: str | os.PathLike[str],
        combine: str | None = None,
        on_progress: Callable[[FanOutProgress], None] | None = None,
        **options: Any,
    ) -> FanOutResult:
        """One run per scope, at most ``max_concurrency`` active at once, each result in its
        own file in ``output_dir`` (optionally ``combine``d into one CSV with a leading scope
        column); a scope's failure is collected, never stops the others (``fanout``)."""
        from .fanout import run_many

        return run_many(
            self, provider, report_id, dict(parameters or {}), scopes=list(scopes),
            max_concurrency=max_concurrency, output_dir=output_dir, combine=combine,
            on_progress=on_progress, **options,
        )  # fmt: skip

    def resume(self, *, max_concurrency: int | None = None, **options: Any) -> FanOutResult:
        """Finish every unfinished wait and download in the journal (``fanout.resume``)."""
        from .fanout import resume

        return resume(self, max_concurrency=max_concurrency, **options)
