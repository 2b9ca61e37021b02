"""The one module a provider plugin imports from: the contract and what helps keep it.

A provider plugin answers ``report_gateway_providers()`` with ``ProviderSpec`` objects. The
gateway calls ``spec.factory(context)`` once, the first time the provider is used, and then
calls the returned driver from any thread. The gateway does the provider-neutral work
(settings layering, credentials lookup, plugin hooks, validation-before-create, one
idempotency key per start, waiting, downloading, rows, error wrapping); the driver only
translates between the provider's API and the neutral models. Subclass ``BaseDriver``: it
holds the defaults (NotSupported operations, scope fallback from the settings, search by
name, validation against the template, building a ``ReportRun``).

What differs per provider and is plain data goes on the ``ProviderSpec`` (status words,
scope headers, auth factory), not into hooks: the gateway's built-in hook answers read it,
and a third-party plugin can still override any of them by implementing the hook.

Everything a plugin needs is re-exported here (models, errors, ``Credentials``,
``ProviderSettings``, ``hookimpl``, the parameter helpers, ``credential_id``, ``Backoff`` for
any wait that grows between tries, ``ProviderLimit`` for a provider that refuses creates over
a limit of concurrent runs, the runtime's auth policies ``BearerAuth``, ``BasicAuth``,
``HeaderPairAuth`` and ``AuthPolicy``, its ``ApiError`` and ``Response``). A driver with no
generated client sends its requests with ``ProviderContext.request``. Keep heavy
imports (the generated client, urllib3, cattrs) inside the factory, not at the top of the
plugin module: entry points are loaded when any provider is first used, and
``report-gateway providers`` should not pay for clients it does not call.
"""

from __future__ import annotations

import abc
import inspect
import logging
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import attrs

from .admission import ProviderLimit, credential_id
from .config import GATEWAY_TABLE, Credentials, ProviderSettings, resolve_options
from .demo import DemoSpec
from .errors import (
    ConfigurationError,
    DownloadError,
    NotSupportedError,
    ParameterError,
    RunMayExistError,
    RunNotFoundError,
    ScopeError,
    UnknownReportError,
    UnknownStatusWarning,
)
from .hookspecs import hookimpl
from .models import (
    CONTENT_CSV,
    CONTENT_TSV_UTF16,
    CONTENT_ZIP,
    WAITING_FOR_SLOT,
    ParameterSpec,
    ReportRun,
    ReportTemplate,
    ResultFile,
    RunStatus,
    Scope,
    StartProgress,
)
from .options import Option, boolean, integer, name_list, option, options_of, seconds, text
from .parameters import (
    TIMESTAMP_FORMS,
    TimestampFormat,
    format_rfc3339,
    format_unix,
    iso,
    parse_timestamp,
    validate_parameters,
)
from .webhook_spec import SignatureError, WebhookEventError, WebhookOutcome, WebhookSpec

if TYPE_CHECKING:
    from reporting_runtime import (
        ApiClient,
        ApiError,
        AuthPolicy,
        BasicAuth,
        BearerAuth,
        HeaderPairAuth,
        Response,
        RetryConfig,
        Transport,
    )
    from reporting_runtime.backoff import Backoff

__all__ = [
    "CONTENT_CSV",
    "CONTENT_TSV_UTF16",
    "CONTENT_ZIP",
    "OPTIONAL_KEYWORDS",
    "TIMESTAMP_FORMS",
    "WAITING_FOR_SLOT",
    "ApiError",
    "AuthPolicy",
    "Backoff",
    "BaseDriver",
    "BasicAuth",
    "BearerAuth",
    "ConfigurationError",
    "Credentials",
    "DemoSpec",
    "DownloadError",
    "DriverCalls",
    "HeaderPairAuth",
    "NotSupportedError",
    "Option",
    "ParameterError",
    "ParameterSpec",
    "ProviderContext",
    "ProviderDriver",
    "ProviderLimit",
    "ProviderSettings",
    "ProviderSpec",
    "ReportRun",
    "ReportTemplate",
    "Response",
    "ResultFile",
    "ResultResponse",
    "RunMayExistError",
    "RunNotFoundError",
    "RunStatus",
    "Scope",
    "ScopeError",
    "SignatureError",
    "StartReporter",
    "TimestampFormat",
    "UnknownReportError",
    "UnknownStatusWarning",
    "WebhookEventError",
    "WebhookOutcome",
    "WebhookSpec",
    "accepted_keywords",
    "accepts_progress",
    "boolean",
    "credential_id",
    "format_rfc3339",
    "format_unix",
    "hookimpl",
    "integer",
    "iso",
    "match_templates",
    "name_list",
    "no_progress",
    "option",
    "options_of",
    "parse_timestamp",
    "seconds",
    "start_reporter",
    "text",
    "validate_parameters",
]


#: Runtime names re-exported here, so a plugin imports only this module.
_FROM_RUNTIME = frozenset(
    {"ApiError", "AuthPolicy", "Backoff", "BasicAuth", "BearerAuth", "HeaderPairAuth", "Response"}
)


def __getattr__(name: str) -> Any:
    # These live in the runtime; importing them on first use keeps a plugin module that
    # imports this one from loading the runtime (see the module docstring).
    if name in _FROM_RUNTIME:
        import reporting_runtime

        return getattr(reporting_runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


T = TypeVar("T")

_SCOPE_FIELDS = frozenset(field.name for field in attrs.fields(Scope))


class StartReporter(Protocol):
    """How a driver's ``start`` tells the caller why it is not done yet (``progress=``).

    Call it when the start waits (for a free slot under a concurrency limit, say): once when
    the wait begins, then now and then (about once a second at most). It reaches the
    ``on_progress`` given to ``Gateway.start`` as a ``StartProgress``, or nothing when the
    caller gave none; it never raises.
    """

    def __call__(
        self,
        *,
        waited_seconds: float,
        position: int | None = None,
        reason: str = "",
        state: str = WAITING_FOR_SLOT,
    ) -> None: ...


def no_progress(
    *,
    waited_seconds: float,
    position: int | None = None,
    reason: str = "",
    state: str = WAITING_FOR_SLOT,
) -> None:
    """The reporter a start gets when nobody listens."""


def start_reporter(
    provider: str, report_id: str, on_progress: Callable[[StartProgress], None] | None
) -> StartReporter:
    """The route from a driver's ``progress`` to a ``Gateway.start(on_progress=)``."""
    if on_progress is None:
        return no_progress

    def report(
        *,
        waited_seconds: float,
        position: int | None = None,
        reason: str = "",
        state: str = WAITING_FOR_SLOT,
    ) -> None:
        event = StartProgress(
            provider=provider,
            report_id=report_id,
            state=state,
            waited_seconds=waited_seconds,
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


#: Keywords the contract added to driver methods after drivers were written without them:
#: the gateway passes each only to a driver whose method declares it (or takes
#: ``**kwargs``), so an older driver keeps working, without that feature.
OPTIONAL_KEYWORDS: Mapping[str, tuple[str, ...]] = {
    "start": ("progress",),
    "get": ("deadline",),
    "open_result": ("if_range", "deadline", "stall_timeout"),
}


def accepted_keywords(function: Callable[..., Any], names: Iterable[str]) -> frozenset[str]:
    """Which of ``names`` ``function`` takes as keywords (all of them with ``**kwargs``)."""
    wanted = frozenset(names)
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return frozenset()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return wanted
    return wanted & frozenset(parameters)


@attrs.frozen
class DriverCalls:
    """The one place deciding which optional keywords (``OPTIONAL_KEYWORDS``) a driver's
    methods receive, found once per driver from their signatures."""

    accepted: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, driver: object) -> DriverCalls:
        accepted = {}
        for method, names in OPTIONAL_KEYWORDS.items():
            function = getattr(driver, method, None)
            accepted[method] = (
                accepted_keywords(function, names) if callable(function) else frozenset()
            )
        return cls(accepted)

    def keywords(self, method: str, **values: Any) -> dict[str, Any]:
        """``values`` the driver's ``method`` takes, None ones left out (the default)."""
        taken = self.accepted.get(method, frozenset())
        return {name: v for name, v in values.items() if name in taken and v is not None}


def accepts_progress(start: Callable[..., Any]) -> bool:
    """Whether a driver's ``start`` takes ``progress=`` (drivers written before it did not)."""
    return "progress" in accepted_keywords(start, ("progress",))


def _scope_fields(instance: Any, attribute: Any, value: Mapping[str, str]) -> None:
    unknown = sorted(set(value) - _SCOPE_FIELDS)
    if unknown:
        raise ValueError(f"scope_headers: {unknown} are not Scope fields ({sorted(_SCOPE_FIELDS)})")


def _keys(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _option_tuple(values: Iterable[Option]) -> tuple[Option, ...]:
    return tuple(values)


def _declared_options(spec: ProviderSpec) -> tuple[Option, ...]:
    return options_of(spec.settings_type) if spec.settings_type is not None else ()


def _legacy_options(spec: ProviderSpec) -> tuple[Option, ...]:
    keys = dict.fromkeys((*spec.settings_keys, *spec.env_vars, *spec.credential_keys))
    return tuple(
        Option(key, env=spec.env_vars.get(key), credential=key in spec.credential_keys)
        for key in keys
    )


@attrs.frozen(kw_only=True)
class ProviderSpec:
    """How a plugin announces a provider, without creating anything yet.

    - ``name``: the provider name users type (``stripe``, ``zuora``...), unique.
    - ``factory``: builds the driver from a ``ProviderContext``; called once, lazily.
    - ``settings_type``: an attrs class of the provider's settings, its fields declared
      with ``option(env=..., default=..., convert=..., credential=...)``; the driver reads
      it converted and typed with ``context.settings_as(Cls)``. Or ``options``: the same
      table as a list of ``Option`` (no typed object). See ``report_gateway.options``.
    - ``settings_keys``, ``env_vars``, ``credential_keys``: derived from the options (every
      key; key -> environment variable; the ``credential`` ones), read-only in spirit.
      ``settings_keys`` are every setting read (others get a warning: typos); the
      credential keys must all be present for the default credentials lookup.
      *Legacy*: a plugin written before options may still set these three instead of
      ``settings_type``/``options``; its option table is derived from them (untyped, no
      conversion) and a ``DeprecationWarning`` says to move to ``settings_type``.
    - ``first_poll_interval``/``max_poll_interval``: how fast its runs usually move, so
      waiting neither hammers the API nor sleeps through a quick run.
    - ``demo``: what ``report-gateway demo`` runs against the embedded sandbox (None: the
      provider takes no part).
    - ``statuses``: the provider's status words -> ``RunStatus``, matched exactly, or after
      ``normalize_status`` (``str.upper`` for a provider that is loose about case); other
      words fall back to the neutral ones (``succeeded``...), then warn.
    - ``scope_headers``: ``Scope`` field -> the header carrying it (``{"account":
      "Stripe-Account"}``); any other field set is a ScopeError before a request. Those
      fields are also the ones ``BaseDriver.resolve_scope`` fills from the settings.
    - ``check_scope``: more rules on a scope (raise ``ScopeError``), e.g. two fields that
      exclude each other.
    - ``auth``: builds the ``reporting_runtime.AuthPolicy`` from the credentials (import
      the runtime inside it, not at the top of the plugin module).
    - ``webhook``: a ``WebhookSpec`` (signature header, secret setting, ``verify``, ``read``)
      when the provider sends signed events: ``report_gateway.webhooks.WebhookApp`` then
      serves ``POST /webhooks/<name>`` for it.
    """

    name: str
    description: str = ""
    factory: Callable[[ProviderContext], ProviderDriver] = attrs.field(repr=False)
    settings_type: type | None = attrs.field(default=None, repr=False)
    options: tuple[Option, ...] = attrs.field(
        default=attrs.Factory(_declared_options, takes_self=True),
        converter=_option_tuple,
        repr=False,
    )
    settings_keys: tuple[str, ...] = attrs.field(
        default=attrs.Factory(lambda spec: tuple(o.key for o in spec.options), takes_self=True),
        converter=_keys,
    )
    env_vars: Mapping[str, str] = attrs.field(
        default=attrs.Factory(
            lambda spec: {o.key: o.env for o in spec.options if o.env}, takes_self=True
        )
    )
    credential_keys: tuple[str, ...] = attrs.field(
        default=attrs.Factory(
            lambda spec: tuple(o.key for o in spec.options if o.credential), takes_self=True
        ),
        converter=_keys,
    )
    first_poll_interval: float = 0.5
    max_poll_interval: float = 30.0
    demo: DemoSpec | None = None
    statuses: Mapping[str, RunStatus] = attrs.field(factory=dict, repr=False)
    normalize_status: Callable[[str], str] | None = attrs.field(default=None, repr=False)
    scope_headers: Mapping[str, str] = attrs.field(factory=dict, validator=_scope_fields)
    check_scope: Callable[[Scope], None] | None = attrs.field(default=None, repr=False)
    auth: Callable[[Credentials], AuthPolicy] | None = attrs.field(default=None, repr=False)
    webhook: WebhookSpec | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.name == GATEWAY_TABLE:
            raise ValueError(f"{GATEWAY_TABLE!r} names the profile's gateway-wide table")
        if not self.options and (self.settings_keys or self.env_vars or self.credential_keys):
            # Declared the former way: the option table follows from the three attributes.
            warnings.warn(
                f"ProviderSpec({self.name!r}): settings_keys/env_vars/credential_keys are the "
                "legacy declaration; declare settings_type= (an attrs class of option() "
                "fields) or options= instead",
                DeprecationWarning,
                stacklevel=3,
            )
            object.__setattr__(self, "options", _legacy_options(self))

    def option_table(self) -> dict[str, Option]:
        """Setting key -> its declaration."""
        return {opt.key: opt for opt in self.options}

    def status_of(self, raw_status: str) -> RunStatus | None:
        """The provider's own meaning of a status word, or None when ``statuses`` lacks it."""
        key = raw_status if self.normalize_status is None else self.normalize_status(raw_status)
        return self.statuses.get(key)

    def headers_for(self, scope: Scope) -> dict[str, str] | None:
        """The headers aiming a request at ``scope`` (None: the spec declares no scoping).

        A field the provider cannot send would be silently dropped otherwise, and the report
        would describe the wrong account: it is a ScopeError instead.
        """
        if not self.scope_headers and self.check_scope is None:
            return None
        given = scope.fields()
        if not given:  # the common empty scope: nothing unsupported, no header to send
            if self.check_scope is not None:
                self.check_scope(scope)
            return {}
        unsupported = sorted(set(given) - set(self.scope_headers))
        if unsupported:
            accepted = " or ".join(f"Scope({field}=...)" for field in self.scope_headers)
            sent = ", ".join(self.scope_headers.values())
            raise ScopeError(
                f"{self.name}: scope field(s) {unsupported} not supported; "
                + (f"only {accepted} is accepted (sent as {sent})" if accepted else "none is")
            )
        if self.check_scope is not None:
            self.check_scope(scope)
        return {
            header: given[field] for field, header in self.scope_headers.items() if given.get(field)
        }

    def make_auth(self, credentials: Credentials) -> AuthPolicy | None:
        """The auth policy from ``auth`` (None when the provider signs nothing)."""
        return None if self.auth is None else self.auth(credentials)


@runtime_checkable
class ResultResponse(Protocol):
    """The streaming response ``open_result`` returns (``reporting_runtime.Response`` fits).

    ``status`` is 200 for the whole body or 206 for a ranged one; ``headers`` must be a
    case-insensitive mapping (``Accept-Ranges``, ``Content-Range`` are read).

    Optional: ``readinto(buffer: memoryview) -> int`` (0 at the end), as
    ``reporting_runtime.Response`` has. When present, downloads and ``rows`` read the body
    into one buffer reused for the whole transfer instead of a new object per chunk;
    responses without it are read with ``iter_bytes``, as before.
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
        self._client: ApiClient | None = None
        self._credential_id: tuple[Credentials, str] | None = None

    def __repr__(self) -> str:
        return f"ProviderContext({self.name!r}, settings={self.settings!r})"

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str | None] | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
    ) -> Response:
        """One HTTP exchange for a driver with no generated client: the gateway's way.

        Sent over the shared transport with the provider's ``auth``, the gateway's user
        agent and retry (a POST is not retried: no idempotency header is known), logged
        with secrets redacted. ``json`` is sent as a JSON body, ``params`` as the query;
        ``stream=True`` leaves the body unread (``iter_bytes``: what ``open_result`` can
        return). A non-2xx answer raises the runtime's ``ApiError`` (``NotFoundError``,
        ``RateLimitError``...), scrubbed of secrets, which the gateway turns into a
        ``ProviderError``. Braces in ``url`` are sent percent-encoded.
        """
        from reporting_runtime import ApiClient, Operation

        with self._lock:
            if self._client is None:
                self._client = ApiClient(
                    provider=self.name,
                    base_url="",
                    auth=self.auth,
                    transport=self.transport,
                    retry=self.retry,
                    user_agent=self.user_agent,
                )
            client = self._client
        operation = Operation(
            operation_id=f"{method.upper()} request",
            method=method.upper(),
            path=url.replace("{", "%7B").replace("}", "%7D"),
            body_encoding="json" if json is not None else None,
            streaming=stream,
        )
        return client.request(operation, query=params, headers=headers, body=json, stream=stream)

    @property
    def transport(self) -> Transport:
        """The gateway's shared connection pool (created on first use, then reused)."""
        return self._transport_factory()

    def setting(self, key: str, default: Any = None) -> Any:
        """One resolved setting by name (explicit > profile file > env), or ``default``: for
        code that reads a key generically (``BaseDriver.resolve_scope``) and for plugins
        with no ``settings_type``. A driver reads its own settings with ``settings_as``."""
        return self.settings.get(key, default)

    def settings_as(self, cls: type[T]) -> T:
        """The settings as the attrs class ``cls`` (the spec's ``settings_type``): the typed
        way for a driver to read them (``context.settings_as(MySettings).timeout``).

        A context built by hand (tests, embedding) with plain settings gets them structured
        here, with the same conversions and errors.
        """
        typed = self.settings.typed
        if isinstance(typed, cls):
            return typed
        resolved = resolve_options(
            self.name,
            options_of(cls),
            explicit=dict(self.settings),
            profile={},
            profile_origin="",
            environ={},
            settings_type=cls,
        )
        built: T = resolved.typed
        return built

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

    @property
    def credential_id(self) -> str:
        """A stable name for this provider's credentials that reveals nothing about them
        (to share per-key state across Gateways, as the run slots do).

        Hashed once per credentials object (every start and get asks for it); credentials
        replaced on the context are hashed afresh."""
        credentials = self.credentials
        cached = self._credential_id
        if cached is None or cached[0] is not credentials:
            cached = self._credential_id = (credentials, credential_id(credentials))
        return cached[1]


class ProviderDriver(Protocol):
    """What a provider plugin implements; one instance per provider per Gateway.

    Calls may come from several threads at once: keep per-call state local. Raise the
    gateway's errors where they say more than the API's (``UnknownReportError`` for a 404 on
    a report, ``ParameterError``, ``ScopeError``, ``RunMayExistError``); let
    ``reporting_runtime`` errors propagate otherwise (the gateway wraps them in
    ``ProviderError``). A provider that refuses creates over a limit of concurrent runs
    also has a ``provider_limit`` (a ``ProviderLimit``; see ``BaseDriver.provider_limit``).
    ``scope`` is always a ``Scope`` (empty when the user gave none): fall
    back to the scope in the settings (``account``, ``context``, ``entity_id``) yourself
    (``BaseDriver.resolve_scope`` does).
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
        progress: StartReporter = no_progress,
    ) -> ReportRun:
        """Create a run from validated parameters.

        ``idempotency_key`` is fixed for this start call (retries reuse it): send it where
        the provider supports it. Where it does not, on an ambiguous failure look for the
        run you may have created, or raise ``RunMayExistError``; never create blindly twice.
        ``progress`` tells the caller why the start waits (see ``StartReporter``); a driver
        whose ``start`` has no such parameter is called without it.
        """
        ...

    def get(self, run_id: str, *, scope: Scope) -> ReportRun:
        """A fresh snapshot of a run; polling calls this, so keep it to one request.

        A driver may also take ``deadline: float | None`` (``time.monotonic()`` seconds):
        when the caller's wait ends. Passed to the generated operation (``deadline=``), the
        request ends by it whatever the server does; a driver without the parameter is
        called without it (``OPTIONAL_KEYWORDS``).
        """
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
        it, and checks the validator of every resumed answer either way. Likewise
        ``deadline`` (see ``get``; the body must be read by then too) and ``stall_timeout``
        (the longest wait for any byte): pass them to the generated operation as
        ``deadline=`` and ``read_timeout=`` (or on a ``Request`` sent by hand).
        """
        ...


class BaseDriver(abc.ABC):
    """The base of a provider driver: subclass it, write what the provider does differently.

    Required: ``template``, ``start``, ``get``, ``open_result``. Defaults:

    - ``templates``, ``cancel``, ``runs``, ``last_completed`` raise ``NotSupportedError``
      with the reason ``unsupported`` gives (method name -> (what, why));
    - ``search`` matches names with ``match_templates`` over ``templates``;
    - ``validate`` checks the parameters against ``template`` with ``validate_parameters``
      (timestamps sent as the ``timestamp_format`` method makes them; each optional
      parameter left out that declares a ``default`` is filled in);
    - ``resolve_scope`` fills an empty scope from the settings; ``scope_headers`` gives a
      scope's headers through the hooks (pass them as the client's ``extra_headers=``);
    - ``make_run`` builds a ``ReportRun`` with the provider's name and mapped status;
    - ``run_from_event`` (optional; ``NotSupportedError`` here) maps a verified webhook event
      that carries a whole run (the provider's ``WebhookSpec.read`` calls it).

    One instance serves every thread of a Gateway: keep per-call state local.
    """

    #: Method name -> (what is not supported, why / what to do instead).
    unsupported: ClassVar[Mapping[str, tuple[str, str]]] = {}
    #: Whether ``start`` sent again with the same idempotency key answers with the same run
    #: instead of making another: the run journal then recovers a create whose answer was
    #: lost by sending it again (else by ``find_created(report_id, parameters, *, scope,
    #: started_after)``, when the driver has one, or not at all). May be set per instance.
    idempotent_create: bool = False

    def __init__(self, context: ProviderContext) -> None:
        self.context = context
        self.provider = context.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.provider!r})"

    @property
    def provider_limit(self) -> ProviderLimit | None:
        """How the provider refuses a create over its limit of concurrent runs (None: it has
        no such limit). The gateway's admission (``report_gateway.admission``) then queues
        the start and calls ``start`` again; the driver keeps no queue of its own."""
        return None

    def timestamp_format(self, moment: datetime) -> Any:
        """The wire form of a timestamp for the default ``validate`` (RFC 3339 here;
        ``format_unix`` for an API that takes unix seconds)."""
        return format_rfc3339(moment)

    def not_supported(self, method: str) -> NotSupportedError:
        """The error for an operation the provider lacks (``unsupported`` names the reason)."""
        what, why = self.unsupported.get(method, (method, ""))
        return NotSupportedError(self.provider, what, why or None)

    # -- scope -----------------------------------------------------------------------------

    def resolve_scope(self, scope: Scope) -> Scope:
        """``scope``, or when it sets none of the provider's scope fields (the spec's
        ``scope_headers``), those fields from the settings of the same names."""
        context = self.context
        fields = context.spec.scope_headers
        if not fields:
            return scope
        for field in fields:  # a loop, not any(genexpr): every driver call asks
            if getattr(scope, field):
                return scope
        configured = {f: str(v) for f in fields if (v := context.setting(f))}
        return attrs.evolve(scope, **configured) if configured else scope

    def scope_headers(self, scope: Scope) -> dict[str, str]:
        """Every header the hooks give for ``scope`` (a bad scope raises ScopeError here)."""
        return self.context.scope_headers(scope)

    # -- templates -------------------------------------------------------------------------

    def templates(self, *, scope: Scope) -> Sequence[ReportTemplate]:
        raise self.not_supported("templates")

    @abc.abstractmethod
    def template(self, report_id: str, *, scope: Scope) -> ReportTemplate:
        """One report with its parameter schema; ``UnknownReportError`` if there is none."""

    def search(self, query: str, *, scope: Scope) -> Sequence[ReportTemplate]:
        return match_templates(self.templates(scope=scope), query)

    # -- runs ------------------------------------------------------------------------------

    def validate(
        self, report_id: str, parameters: Mapping[str, Any], *, scope: Scope
    ) -> dict[str, Any]:
        template = self.template(report_id, scope=scope)
        return validate_parameters(
            template, parameters, timestamp_format=self.timestamp_format, defaults=True
        )

    @abc.abstractmethod
    def start(
        self,
        report_id: str,
        parameters: Mapping[str, Any],
        *,
        scope: Scope,
        idempotency_key: str,
        progress: StartReporter = no_progress,
    ) -> ReportRun:
        """Create a run (see ``ProviderDriver.start``)."""

    @abc.abstractmethod
    def get(self, run_id: str, *, scope: Scope) -> ReportRun:
        """A fresh snapshot of a run, in one request. Add ``deadline: float | None = None``
        and pass it to the generated operation: ``Gateway.wait`` then holds its timeout
        whatever the server does (``OPTIONAL_KEYWORDS``)."""

    def cancel(self, run: ReportRun) -> ReportRun:
        raise self.not_supported("cancel")

    def runs(self, *, limit: int | None, scope: Scope) -> Iterator[ReportRun]:
        raise self.not_supported("runs")

    def last_completed(self, report_id: str, *, scope: Scope) -> ReportRun:
        raise self.not_supported("last_completed")

    @abc.abstractmethod
    def open_result(self, run: ReportRun, *, offset: int = 0) -> ResultResponse:
        """The result's bytes from ``offset`` on (see ``ProviderDriver.open_result``: add
        the optional ``if_range``, ``deadline`` and ``stall_timeout`` keywords and pass
        them on, or downloads from this driver have no deadline)."""

    # -- mapping ---------------------------------------------------------------------------

    def run_from_event(self, event: Mapping[str, Any]) -> ReportRun:
        """The run a provider's webhook event carries (its body, signature already checked).

        For events holding a full snapshot of the run (Stripe v1's ``data.object``); an event
        that only names the run is answered with ``get`` instead, by the caller. Raise
        ``ValueError`` for an event that holds no run of this provider.
        """
        raise self.not_supported("run_from_event")

    def make_run(
        self,
        *,
        id: str,
        report_id: str,
        raw_status: str,
        scope: Scope,
        parameters: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
        finished_at: datetime | None = None,
        result: ResultFile | None = None,
        error: str | None = None,
        raw: Mapping[str, Any] | None = None,
    ) -> ReportRun:
        """A ``ReportRun`` of this provider, its status mapped through the hooks."""
        return ReportRun(
            provider=self.provider,
            id=id,
            report_id=report_id,
            status=self.context.map_status(raw_status),
            raw_status=raw_status,
            created_at=created_at,
            finished_at=finished_at,
            parameters=dict(parameters or {}),
            scope=scope,
            result=result,
            error=error,
            raw=raw,
        )


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
