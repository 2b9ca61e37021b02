"""The ``Gateway`` facade: one object that runs any installed provider's reports.

Each job is a collaborator's, so a feature extends one mechanism instead of growing here:
plugins (``plugins``, ``defaults``), settings (``config``), drivers and their contexts
(``drivers``, ``credentials``), starts (``journal.Starts``, ``admission``), waits
(``polling``, ``events``), results (``transfer``, ``download``, ``rows``, ``tabular``),
fan-out (``fanout``); runtime errors become ``ProviderError`` (``errors``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reporting_runtime.redaction import scrub_text

from . import fanout, tabular
from .admission import Admissions
from .config import ProviderSettings, SettingsSource
from .connections import SharedTransport
from .credentials import held_secrets
from .defaults import BuiltinHooks
from .download import download, not_a_file
from .drivers import Drivers
from .errors import ConfigurationError, provider_errors
from .events import RunEvents
from .hookspecs import hookimpl
from .journal import JournalHolder, Starts
from .models import ReportRun, ReportTemplate, Scope, StartProgress
from .plugins import LOAD_PLUGINS_ENV, PluginInfo, PluginRegistry
from .polling import deadline_after, poll_schedule, wait_for
from .provider import ProviderDriver, ProviderSpec
from .rows import result_rows
from .waiter import paced, watch

if TYPE_CHECKING:
    from reporting_runtime import RetryConfig, Transport

    from .download import DownloadProgress, ZipLimits
    from .fanout import FanOutProgress, FanOutResult
    from .journal import Journal
    from .polling import ProgressCallback

__all__ = ["LOAD_PLUGINS_ENV", "Gateway", "PluginInfo", "hookimpl"]

_UNSET = object()


class Gateway:
    """Run any installed provider's reports through one API.

    ``settings`` maps a provider name to its settings (over the profile file and the
    environment: ``config``). ``plugins`` are extra plugin objects registered before the
    entry points; ``load_entrypoints=False`` keeps installed plugins out (tests, embedding).
    ``transport`` is a ``reporting_runtime.Transport`` to share: it brings its own trust, so
    it excludes ``ca_bundle``. ``environ`` replaces ``os.environ`` (tests). The other
    keywords are the gateway-wide options (``config.GatewayOptions``: ``ca_bundle``,
    ``max_active_runs`` with ``slot_timeout``, ``journal``; None turns the journal off);
    left out, they come from the profile's ``gateway`` table, then the environment.
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
        #: Terminal snapshots pushed to this process (``report_gateway.webhooks``) end waits.
        self.events = RunEvents()
        self._registry = PluginRegistry(
            defaults=BuiltinHooks(lambda name: self._registry.specs().get(name)),
            plugins=list(plugins or ()),
            load_entrypoints=load_entrypoints,
            allowed=options.load_plugins,
        )
        self.pm = self._registry.pm
        self._drivers = Drivers(self._registry, self._settings, options, self.transport, self.scrub)
        self._starts = Starts(self, self._drivers, self._admission, self._announce)

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
        return self._drivers.get(provider)

    def settings(self, provider: str) -> ProviderSettings:
        """The provider's layered settings (explicit > profile file > environment)."""
        return self._settings.for_provider(provider, self.spec(provider))

    def credential_id(self, provider: str) -> str:
        """A hash naming the provider's credentials (never the credentials themselves)."""
        return self._drivers.context(provider).credential_id

    def held_secrets(self) -> frozenset[str]:
        """Every secret held now (credentials resolved, tokens its auth policies obtained):
        what ``scrub`` hides; a provider not used yet holds none (``credentials``)."""
        return held_secrets(self._drivers.contexts())

    def scrub(self, text: str) -> str:
        """``text`` with every held secret (and key-shaped string) replaced by REDACTED."""
        return scrub_text(text, self.held_secrets())

    def transport(self) -> Transport:
        """The shared ``reporting_runtime.Transport`` (one connection pool for all providers)."""
        return self._transport.get()

    def _changed(self, run: ReportRun, previous: ReportRun | None) -> None:
        self._journal.changed(run, self._drivers.credential_id(run.provider))
        self._announce(run, previous)

    def _announce(self, run: ReportRun, previous: ReportRun | None) -> None:
        self.pm.hook.report_gateway_run_changed(run=run, previous=previous)

    # -- templates ------------------------------------------------------------------------

    def templates(self, provider: str, *, scope: Scope | None = None) -> list[ReportTemplate]:
        """Every report the provider offers (Stripe report types, v2 reports, Zuora reports)."""
        where = self._drivers.where(provider, scope)
        return list(self._drivers.call(provider, lambda d: d.templates(scope=where)))

    def template(
        self, provider: str, report_id: str, *, scope: Scope | None = None
    ) -> ReportTemplate:
        """One report with its parameter schema; ``UnknownReportError`` if there is none."""
        where = self._drivers.where(provider, scope)
        return self._drivers.call(provider, lambda d: d.template(report_id, scope=where))

    def search(
        self, provider: str, query: str, *, scope: Scope | None = None
    ) -> list[ReportTemplate]:
        """Reports whose name matches ``query``."""
        where = self._drivers.where(provider, scope)
        return list(self._drivers.call(provider, lambda d: d.search(query, scope=where)))

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
        params, where = dict(parameters or {}), self._drivers.where(provider, scope)
        return self._drivers.call(provider, lambda d: d.validate(report_id, params, scope=where))

    def start(
        self,
        provider: str,
        report_id: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        scope: Scope | None = None,
        idempotency_key: str | None = None,
        on_progress: Callable[[StartProgress], None] | None = None,
        reuse: bool | float = False,
        output: str | os.PathLike[str] | None = None,
    ) -> ReportRun:
        """Validate the parameters, then create a run (once, even if the request is retried).

        One idempotency key per call (or ``idempotency_key``: a retried job reuses its run).
        ``on_progress`` hears, in the calling thread, why a start is taking long (no free run
        slot); a callback that raises is logged and ignored. Journaled before its create is
        sent, with ``output`` (its result's file: ``resume`` downloads there); ``reuse=True``
        returns the same job's unfinished run started within 12 hours (``reuse=SECONDS``).
        An ``output`` that is a device node, FIFO or socket is a ``ConfigurationError``
        before anything is sent: its download would be refused (``download.not_a_file``).
        """
        if output is not None and not Path(output).is_dir():
            why = not_a_file(output)
            if why is not None:
                raise ConfigurationError(why)
        return self._starts.run(provider, report_id, dict(parameters or {}), scope,
            key=idempotency_key, reuse=reuse, on_progress=on_progress, output=output)  # fmt: skip

    def get(self, provider: str, run_id: str, *, scope: Scope | None = None) -> ReportRun:
        """A fresh snapshot of a run (resume a wait from a saved id with ``wait(get(...))``)."""
        where = self._drivers.where(provider, scope)
        return self._seen(self._drivers.run(provider, run_id, where))

    def _seen(self, run: ReportRun) -> ReportRun:
        """Free the run's slot once it is seen finished (and let a waiting start try)."""
        return self._admission.seen(run, self._drivers.credential_id(run.provider))

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
        """Poll until the run ends; return it SUCCEEDED or raise ``RunFailedError`` (with the
        provider's reason), ``RunCanceledError``, or ``WaitTimeoutError``.

        ``timeout`` (None: none) bounds the whole call, each poll's retries included;
        ``on_progress(run, elapsed)`` hears every poll, ``report_gateway_run_changed`` every
        change. ``poll_interval``/``max_interval`` override the provider's hints; ``clock``/
        ``sleep`` replace ``time``'s. A snapshot published on ``self.events`` (a webhook) ends
        the wait early; a run the journal says ended (a listener elsewhere) is polled at once.
        """
        spec = self.spec(run.provider)
        fetch, pause = watch(self, run, timeout, sleep)  # shared with the fan-out's waiter
        # First poll when this report's runs were seen to end (``waiter``), real time only.
        pace, due, age = paced(self, run, own=poll_interval is not None or bool(clock or sleep))
        with provider_errors(run.provider, scrub=self.scrub):  # a failed run's reason too
            return wait_for(
                run,
                fetch,
                timeout=timeout,
                backoff=poll_schedule(spec, poll_interval, max_interval),
                on_progress=on_progress,
                on_change=self._changed,
                clock=clock or time.monotonic,
                sleep=pause,
                due=due,
                on_end=None if pace is None else lambda polling: pace.ended(polling, age),
            )

    def cancel(self, run: ReportRun) -> ReportRun:
        """Ask the provider to stop the run; return its new snapshot."""
        canceled = self._seen(self._drivers.call(run.provider, lambda d: d.cancel(run)))
        if canceled.status is not run.status:
            self._changed(canceled, run)
        return canceled

    def last_completed(
        self, provider: str, report_id: str, *, scope: Scope | None = None
    ) -> ReportRun:
        """The newest succeeded run of a report; ``RunNotFoundError`` when there is none."""
        where = self._drivers.where(provider, scope)
        return self._drivers.call(provider, lambda d: d.last_completed(report_id, scope=where))

    def runs(
        self, provider: str, *, limit: int | None = 100, scope: Scope | None = None
    ) -> Iterator[ReportRun]:
        """Recent runs, newest first, pages followed lazily up to ``limit`` (None: all)."""
        driver, where = self.driver(provider), self._drivers.where(provider, scope)
        return self._drivers.iterate(provider, lambda: driver.runs(limit=limit, scope=where))

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

        ``unzip`` unpacks a ZIP result to its CSV; Zuora's UTF-16 export becomes UTF-8 CSV
        unless ``raw``; ``durable=False`` skips the fsyncs (atomic, not crash-safe);
        ``zip_limits`` bounds a ZIP member's expansion. ``timeout`` bounds the whole transfer
        and ``stall_timeout`` the wait for any byte (None: the transport's read timeout):
        either ends it with a ``DownloadError``, nothing written.
        """
        opener = self._drivers.opener(run, timeout, stall_timeout)
        if not overwrite:
            # Before the transfer: a ``resume`` after a refusal (or a crash) must not
            # replace what this call was told to keep.
            self._journal.keeping_existing(
                run,
                self._drivers.credential_id(run.provider),
                lambda: self._starts.endpoint(run.provider),
            )
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
                deadline=deadline_after(timeout),
            )
        self._journal.downloaded(run, saved, self._drivers.credential_id(run.provider))
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
        opener = self._drivers.opener(run, timeout, stall_timeout)  # no result: raises now
        return self._drivers.iterate(run.provider, lambda: result_rows(run, opener))

    def to_arrow(self, run: ReportRun, **options: Any) -> Any:
        """The result as a typed ``pyarrow.Table``: [report_gateway.tabular.to_arrow][]."""
        return tabular.to_arrow(self, run, **options)

    def to_parquet(self, run: ReportRun, path: str | os.PathLike[str], **options: Any) -> Path:
        """The result as a Parquet file: [report_gateway.tabular.to_parquet][]."""
        return tabular.to_parquet(self, run, path, **options)

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
        return fanout.run_many(
            self, provider, report_id, dict(parameters or {}), scopes=list(scopes),
            max_concurrency=max_concurrency, output_dir=output_dir, combine=combine,
            on_progress=on_progress, **options,
        )  # fmt: skip

    def resume(self, *, max_concurrency: int | None = None, **options: Any) -> FanOutResult:
        """Finish every unfinished wait and download in the journal (``fanout.resume``)."""
        return fanout.resume(self, max_concurrency=max_concurrency, **options)
