"""The contract between the gateway and a provider plugin: what a driver implements.

A provider plugin answers ``report_gateway_providers()`` with ``ProviderSpec`` objects. The
gateway calls ``spec.factory(context)`` once, the first time the provider is used, and then
calls the returned ``ProviderDriver`` from any thread. The gateway does the provider-neutral
work (settings layering, credentials lookup, plugin hooks, validation-before-create, one
idempotency key per start, waiting, downloading, rows, error wrapping); the driver only
translates between the provider's API and the neutral models.

Keep heavy imports (the generated client, urllib3, cattrs) inside the factory, not at the top
of the plugin module: entry points are loaded when any provider is first used, and
``report-gateway providers`` should not pay for clients it does not call.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from .config import Credentials, ProviderSettings
from .errors import ScopeError
from .models import WAITING_FOR_SLOT, ReportRun, ReportTemplate, RunStatus, Scope

if TYPE_CHECKING:
    from reporting_runtime import AuthPolicy, RetryConfig, Transport

__all__ = [
    "ProviderContext",
    "ProviderDriver",
    "ProviderSpec",
    "ResultResponse",
    "UnknownStatusWarning",
    "match_templates",
]


#: ``report(state, waited_seconds, position, reason)`` for the start running in this context.
StartReporter = Callable[[str, float, "int | None", str], None]

# Set by the gateway around ``driver.start`` only, so a driver reports progress without a
# new parameter on ``start`` (drivers written before it keep working) and a report made
# outside a start (or from another start's thread) goes nowhere.
_START_REPORTER: contextvars.ContextVar[StartReporter | None] = contextvars.ContextVar(
    "report_gateway_start_reporter", default=None
)


@contextlib.contextmanager
def start_progress_to(report: StartReporter | None) -> Iterator[None]:
    """Route ``ProviderContext.report_start_progress`` to ``report`` inside the block."""
    token = _START_REPORTER.set(report)
    try:
        yield
    finally:
        _START_REPORTER.reset(token)


class UnknownStatusWarning(UserWarning):
    """A provider reported a status no plugin maps; the run is treated as still running."""


@attrs.frozen(kw_only=True)
class ProviderSpec:
    """How a plugin announces a provider, without creating anything yet.

    - ``name``: the provider name users type (``stripe``, ``zuora``...), unique.
    - ``factory``: builds the driver from a ``ProviderContext``; called once, lazily.
    - ``settings_keys``: every setting the provider reads (others get a warning: typos).
    - ``env_vars``: setting key -> environment variable that may supply it.
    - ``credential_keys``: the settings that are secrets and must all be present for the
      default credentials lookup to succeed (empty: the provider needs none).
    - ``first_poll_interval``/``max_poll_interval``: how fast its runs usually move, so
      waiting neither hammers the API nor sleeps through a quick run.
    """

    name: str
    description: str = ""
    factory: Callable[[ProviderContext], ProviderDriver] = attrs.field(repr=False)
    settings_keys: tuple[str, ...] = ()
    env_vars: Mapping[str, str] = attrs.field(factory=dict)
    credential_keys: tuple[str, ...] = ()
    first_poll_interval: float = 0.5
    max_poll_interval: float = 30.0


@runtime_checkable
class ResultResponse(Protocol):
    """The streaming response ``open_result`` returns (``reporting_runtime.Response`` fits).

    ``status`` is 200 for the whole body or 206 for a ranged one; ``headers`` must be a
    case-insensitive mapping (``Accept-Ranges``, ``Content-Range`` are read).
    """

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content_length(self) -> int | None: ...

    def iter_bytes(self, chunk_size: int = ...) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class ProviderContext:
    """Everything the gateway resolved for one provider, handed to its driver factory.

    Scope headers and status mapping go through the hooks (so any plugin can refine them);
    the driver calls ``scope_headers`` and ``map_status`` rather than deciding alone.
    """

    def __init__(
        self,
        *,
        spec: ProviderSpec,
        settings: ProviderSettings,
        credentials: Credentials,
        auth: AuthPolicy | None,
        scope_headers: Callable[[Scope], Mapping[str, str] | None],
        map_status: Callable[[str], RunStatus | None],
        transport_factory: Callable[[], Transport],
        retry: RetryConfig | None = None,
        user_agent: str = "report-gateway",
        logger: logging.Logger | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.settings = settings
        self.credentials = credentials
        self.auth = auth
        self.retry = retry
        self.user_agent = user_agent
        self.logger = logger or logging.getLogger(f"report_gateway.{spec.name}")
        self._scope_headers = scope_headers
        self._map_status = map_status
        self._transport_factory = transport_factory
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ProviderContext({self.name!r}, settings={self.settings!r})"

    @property
    def transport(self) -> Transport:
        """The gateway's shared connection pool (created on first use, then reused)."""
        return self._transport_factory()

    def setting(self, key: str, default: Any = None) -> Any:
        """A resolved setting (explicit > profile file > env), or ``default``."""
        return self.settings.get(key, default)

    def scope_headers(self, scope: Scope) -> dict[str, str]:
        """Headers aiming a request at ``scope``, from the ``report_gateway_scope_headers`` hook.

        An empty scope needs no headers. A non-empty scope that no plugin understands is a
        ScopeError, raised before any request: ignoring it would report on the wrong account.
        """
        headers = self._scope_headers(scope)
        if headers is None:
            if scope.is_empty:
                return {}
            raise ScopeError(f"{self.name}: scope fields {sorted(scope.fields())} not supported")
        return dict(headers)

    def map_status(self, raw_status: str) -> RunStatus:
        """The neutral status for a provider word, via ``report_gateway_map_status``.

        An unknown word never crashes: it warns once (``UnknownStatusWarning``) and counts as
        RUNNING, so waiting goes on until a known terminal status or the deadline.
        """
        status = self._map_status(raw_status)
        if status is not None:
            return status
        with self._lock:
            first = raw_status not in self._warned
            self._warned.add(raw_status)
        if first:
            warnings.warn(
                f"{self.name}: unknown run status {raw_status!r}; treated as not finished",
                UnknownStatusWarning,
                stacklevel=2,
            )
        return RunStatus.RUNNING

    def report_start_progress(
        self,
        *,
        waited_seconds: float,
        position: int | None = None,
        reason: str = "",
        state: str = WAITING_FOR_SLOT,
    ) -> None:
        """Tell whoever called ``Gateway.start`` why the start in progress is not done yet.

        Call it from ``start`` (in its own thread: the route is a context variable; copy
        the context with ``contextvars.copy_context()`` for a worker thread) when the start
        waits, e.g. for a free slot under a concurrency limit; once when the wait begins,
        then now and then (about once a second at most). Outside a start, or when the
        caller gave no ``on_progress``, it does nothing, so a driver may always call it.
        """
        report = _START_REPORTER.get()
        if report is not None:
            report(state, waited_seconds, position, reason)


class ProviderDriver(Protocol):
    """What a provider plugin implements; one instance per provider per Gateway.

    Calls may come from several threads at once: keep per-call state local. Raise the
    gateway's errors where they say more than the API's (``UnknownReportError`` for a 404 on
    a report, ``ParameterError``, ``ScopeError``, ``RunMayExistError``); let
    ``reporting_runtime`` errors propagate otherwise (the gateway wraps them in
    ``ProviderError``). ``scope`` is always a ``Scope`` (empty when the user gave none): fall
    back to the scope in the settings (``account``, ``context``, ``entity_id``) yourself.
    """

    def templates(self, *, scope: Scope) -> Sequence[ReportTemplate]:
        """All reports the user can run, for listings and for ``search`` fallbacks."""
        ...

    def template(self, report_id: str, *, scope: Scope) -> ReportTemplate:
        """One report with its parameter schema; ``UnknownReportError`` if there is none."""
        ...

    def search(self, query: str, *, scope: Scope) -> Sequence[ReportTemplate]:
        """Reports whose name matches ``query`` (provider search, or ``match_templates``)."""
        ...

    def validate(
        self, report_id: str, parameters: Mapping[str, Any], *, scope: Scope
    ) -> dict[str, Any]:
        """Check parameters BEFORE a run exists; return them normalized for ``start``.

        Raise ``ParameterError`` naming the parameter and its allowed values: a rejected
        run costs the user a round trip and, for some providers, a rate-limit slot.
        """
        ...

    def start(
        self,
        report_id: str,
        parameters: Mapping[str, Any],
        *,
        scope: Scope,
        idempotency_key: str,
    ) -> ReportRun:
        """Create a run from validated parameters.

        ``idempotency_key`` is fixed for this start call (retries reuse it): send it where
        the provider supports it. Where it does not, on an ambiguous failure look for the
        run you may have created, or raise ``RunMayExistError``; never create blindly twice.
        """
        ...

    def get(self, run_id: str, *, scope: Scope) -> ReportRun:
        """A fresh snapshot of a run; polling calls this, so keep it to one request."""
        ...

    def cancel(self, run: ReportRun) -> ReportRun:
        """Ask the provider to stop the run; return its new snapshot.

        Raise ``NotSupportedError`` if the provider cannot cancel.
        """
        ...

    def runs(self, *, limit: int | None, scope: Scope) -> Iterator[ReportRun]:
        """Recent runs, newest first, following pages lazily until ``limit`` (None: all)."""
        ...

    def last_completed(self, report_id: str, *, scope: Scope) -> ReportRun:
        """The newest SUCCEEDED run of a report (reuse a result without running again).

        Raise ``RunNotFoundError`` when there is none.
        """
        ...

    def open_result(self, run: ReportRun, *, offset: int = 0) -> ResultResponse:
        """A streaming response with the result's bytes from ``offset`` on.

        The driver knows where the bytes live and whether the key goes with them (never to
        a pre-signed URL); when a pre-signed URL has expired (403/410 or past
        ``expires_at``), retrieve the run again and use the fresh URL. With ``offset > 0``
        send ``Range: bytes=OFFSET-``; answering 200 (whole body) is fine: the gateway then
        restarts. Raise for non-2xx answers. A driver may also accept a keyword
        ``if_range: str | None`` (the first answer's ETag or Last-Modified) and send it as
        ``If-Range`` with the Range header; the gateway passes it only to drivers that take
        it, and checks the validator of every resumed answer either way.
        """
        ...


def match_templates(templates: Iterable[ReportTemplate], query: str) -> list[ReportTemplate]:
    """Case-insensitive search on id, name and description, for providers with no search.

    Every word of the query must appear somewhere; matches on the name sort first.
    """
    words = query.lower().split()
    scored: list[tuple[int, str, ReportTemplate]] = []
    for template in templates:
        name = template.name.lower()
        haystack = " ".join((template.id, name, template.description or "")).lower()
        if all(word in haystack for word in words):
            on_name = all(word in name for word in words)
            scored.append((0 if on_name else 1, template.name, template))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [template for _, _, template in scored]
