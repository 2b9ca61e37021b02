"""The ``zuora`` driver: the gateway's neutral calls translated onto the generated client.

Zuora has no list of runs and no endpoint returning one report by id, and its zconnect hosts
take no idempotency key, so three things here are more than translation: ``start`` sends the
gateway's key as ``Idempotency-Key`` on the REST hosts (OAuth) and lets the runtime retry the
POST with it, while on the zconnect hosts (username/password) it never sends the POST twice
and, when its outcome is unknown, looks for the run it may have created; ``template`` learns
a report's view type from search results it has seen or from the report's last completed
run; ``runs`` says it is not supported.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from report_gateway.provider import (
    CONTENT_TSV_UTF16,
    Backoff,
    BaseDriver,
    ConfigurationError,
    ParameterError,
    ProviderContext,
    ReportRun,
    ReportTemplate,
    ResultFile,
    ResultResponse,
    RunMayExistError,
    RunNotFoundError,
    RunStatus,
    Scope,
    ScopeError,
    StartReporter,
    UnknownReportError,
    no_progress,
)
from reporting_runtime import (
    ApiError,
    BadRequestError,
    NotFoundError,
    Policy,
    Request,
    ResponseFormatError,
    ServerError,
    TransportError,
)
from zuora_reporting_client import OPERATIONS, Client, models

from .endpoints import resolve_endpoints
from .oauth import OAuthClientCredentials
from .parameters import (
    FILTERS,
    VIEW_TYPE,
    VIEW_TYPES,
    filter_groups,
    normalize_view_type,
    parameter_specs,
    report_view_type,
    validate_parameters,
)
from .plugin import DEFAULT_CREATE_LOOKUP_SECONDS, PROVIDER, ZuoraSettings

__all__ = ["DEFAULT_CREATE_LOOKUP_SECONDS", "SEARCH_PAGE", "ZuoraDriver"]

#: Zuora's search answers at most this many reports; ``searchStart`` pages past them.
SEARCH_PAGE = 50
_MAX_SEARCH_PAGES = 200
#: The lookup's pace: soon after the POST (a quick run completes in seconds), then slower.
LOOKUP_BACKOFF = Backoff(first=0.25, factor=2.0, maximum=5.0, jitter=0.0)
#: Allowance for the provider's clock running behind ours when matching a run's startedOn.
CLOCK_SKEW = timedelta(seconds=1)
#: How many run ids this driver remembers having started (never adopted by a lookup).
_KNOWN_RUNS = 10_000

_NEVER_RUN = "has not run this report"
#: The REST hosts' entity header (OAuth); it has no by-name form.
ENTITY_IDS_HEADER = "Zuora-Entity-Ids"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class RetryableRunReport(Policy):
    """Marks a Run a report that carries an ``Idempotency-Key`` as safe to repeat, so the
    runtime's retry resends it (with the same key) after a lost answer. Only the REST hosts
    honour the key: the driver adds this policy only there (the spec's client-wide
    ``x-idempotency-header`` cannot say "one operation, one endpoint family")."""

    def on_request(self, request: Request) -> Request:
        if request.operation == "run_report" and request.header(IDEMPOTENCY_HEADER):
            return request.evolve(idempotent=True)
        return request


logger = logging.getLogger("report_gateway_zuora")


class ZuoraDriver(BaseDriver):
    """One per Gateway; thread-safe (the only shared state is the report-type cache)."""

    unsupported = {
        "templates": (
            "templates",
            "Zuora's Reporting API has no list of reports and its search needs a query; "
            'use search("zuora", "part of the report name")',
        ),
        "runs": (
            "runs",
            'Zuora\'s Reporting API has no list of runs; use last_completed("zuora", report_id)',
        ),
    }

    def __init__(
        self,
        context: ProviderContext,
        client: Client,
        *,
        create_lookup_seconds: float = DEFAULT_CREATE_LOOKUP_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
        oauth: bool | None = None,
        pivoted: bool | None = None,
    ) -> None:
        super().__init__(context)
        self.client = client
        self.oauth = isinstance(client.auth, OAuthClientCredentials) if oauth is None else oauth
        # The run journal's lost-create resolution: under OAuth a create sent again with the
        # same Idempotency-Key gets the first run back; the password pair sends no key, so
        # a lost create is looked for instead (``find_created``).
        self.idempotent_create = self.oauth
        self.pivoted = pivoted
        self.create_lookup_seconds = create_lookup_seconds
        self._sleep = sleep
        self._now = clock or (lambda: datetime.now(UTC))
        self._view_types: dict[str, str] = {}
        self._templates: dict[str, ReportTemplate] = {}
        self._started: dict[str, None] = {}  # insertion-ordered set of run ids we created
        self._lock = threading.Lock()

    @classmethod
    def from_context(cls, context: ProviderContext) -> ZuoraDriver:
        """Build the client the settings describe (host, auth, the gateway's pool and retry).

        The auth policy decides the family: an OAuth policy means the REST hosts (it is
        bound here to the host's token endpoint), anything else the zconnect hosts.
        """
        settings = context.settings
        typed = context.settings_as(ZuoraSettings)
        if settings.get("entity_id") and settings.get("entity_name"):
            origins = dict.fromkeys(
                (settings.origin("entity_id") or "settings", settings.origin("entity_name") or "")
            )
            where = " and ".join(o for o in origins if o)
            raise ConfigurationError(
                f"zuora: entity_id and entity_name are both set (in {where}); keep one"
            )
        auth = context.auth
        oauth = isinstance(auth, OAuthClientCredentials)
        if oauth and settings.get("entity_name"):
            raise ConfigurationError(
                "zuora: entity_name has no OAuth header (the REST hosts take the entity as "
                f"Zuora-Entity-Ids, by id only; {settings.origin('entity_name')}): set "
                "entity_id instead"
            )
        endpoints = resolve_endpoints(settings, oauth=oauth)
        user_agent = f"{context.user_agent} zuora-reporting-client"
        if isinstance(auth, OAuthClientCredentials):
            assert endpoints.oauth_base_url is not None
            auth.bind(
                endpoints.oauth_base_url,
                transport=context.transport,
                retry=context.retry,
                user_agent=user_agent,
            )
        client = Client(
            endpoints.base_url,
            oauth_base_url=endpoints.oauth_base_url or endpoints.base_url,
            auth=auth,
            transport=context.transport,
            policies=[RetryableRunReport()] if oauth else (),
            retry=context.retry,
            user_agent=user_agent,
        )
        return cls(
            context,
            client,
            create_lookup_seconds=typed.create_lookup_seconds,
            oauth=oauth,
            pivoted=typed.pivoted,
        )

    def __repr__(self) -> str:
        return f"ZuoraDriver(base_url={self.client.base_url!r})"

    def scope_headers(self, scope: Scope) -> dict[str, str]:
        """The hooks' headers; on the REST hosts (OAuth) ``entityId`` travels as
        ``Zuora-Entity-Ids`` and ``entityName``, which has no OAuth form, is refused."""
        headers = super().scope_headers(scope)
        if not self.oauth:
            return headers
        out: dict[str, str] = {}
        for name, value in headers.items():
            lower = name.lower()
            if lower == "entityname":
                raise ScopeError(
                    "zuora: entity_name cannot be used with OAuth (client_id/client_secret): "
                    "the REST hosts take the entity only by id, as Zuora-Entity-Ids; use "
                    "entity_id instead"
                )
            out[ENTITY_IDS_HEADER if lower == "entityid" else name] = value
        return out

    # -- templates --------------------------------------------------------------------------

    def search(self, query: str, *, scope: Scope) -> Sequence[ReportTemplate]:
        if not query.strip():
            raise ParameterError(
                "query", "Zuora's report search needs part of a report name", provider=PROVIDER
            )
        headers = self.scope_headers(self.resolve_scope(scope))
        found: dict[str, ReportTemplate] = {}
        start: int | None = None
        for _ in range(_MAX_SEARCH_PAGES):
            answer = self.client.search_reports(
                query=query, search_start=start, extra_headers=headers
            )
            reports = answer.response.reports
            fresh = [r for r in reports if r.id not in found]
            for report in fresh:
                found[report.id] = self._remember(report)
            # A full page may have a next one; a server ignoring searchStart repeats itself.
            if len(reports) < SEARCH_PAGE or not fresh:
                break
            start = (start or 0) + len(reports)
        return list(found.values())

    def _remember(self, report: models.Report) -> ReportTemplate:
        view = report_view_type(report.definition)
        template = ReportTemplate(
            provider=PROVIDER,
            id=report.id,
            name=report.name,
            description=" ".join(
                part
                for part in (report.number, report.datasource and f"({report.datasource})")
                if part
            )
            or None,
            parameters=parameter_specs(view),
            raw=report.raw_payload,
        )
        with self._lock:
            self._templates[report.id] = template
            if view:
                self._view_types[report.id] = view
        return template

    def template(self, report_id: str, *, scope: Scope) -> ReportTemplate:
        """A report seen by ``search``, else what its last completed run reveals.

        Zuora has no "get report": a 404 on the report's latest run means no such report,
        and the run's ``reportType`` gives the view type when the user has run it before.
        """
        with self._lock:
            known = self._templates.get(report_id)
        if known is not None:
            return known
        headers = self.scope_headers(self.resolve_scope(scope))
        view: str | None = None
        raw: Mapping[str, Any] | None = None
        try:
            latest = self.client.get_last_completed_report_run(
                report_id, extra_headers=headers
            ).response
        except NotFoundError as exc:
            raise UnknownReportError(PROVIDER, report_id, exc.message) from exc
        except ApiError as exc:
            if _NEVER_RUN not in exc.message:
                raise
        else:
            view = normalize_view_type(latest.report_type)
            raw = latest.raw_payload
            if view:
                with self._lock:
                    self._view_types[report_id] = view
        return ReportTemplate(
            provider=PROVIDER,
            id=report_id,
            name=report_id,
            description="found by id (search by name for its details)",
            parameters=parameter_specs(view),
            raw=raw,
        )

    # -- runs -------------------------------------------------------------------------------

    def validate(
        self, report_id: str, parameters: Mapping[str, Any], *, scope: Scope
    ) -> dict[str, Any]:
        with self._lock:
            view = self._view_types.get(report_id)
        return validate_parameters(report_id, parameters, view_type=view)

    def start(
        self,
        report_id: str,
        parameters: Mapping[str, Any],
        *,
        scope: Scope,
        idempotency_key: str,
        progress: StartReporter = no_progress,
    ) -> ReportRun:
        """With OAuth (REST hosts), POST with ``idempotency_key`` as ``Idempotency-Key``: the
        runtime retries a lost answer with the same key and Zuora starts one run. With the
        username/password pair (zconnect hosts, no key), POST once: an answer lost on the way
        back is followed up by ``_recover``, never by a second POST."""
        where = self.resolve_scope(scope)
        headers = self.scope_headers(where)
        view = str(parameters[VIEW_TYPE])
        filters = parameters.get(FILTERS)
        body = filter_groups(filters) if filters is not None else None
        before = self._now()
        try:
            if self.oauth:
                answer = self._post_with_key(report_id, view, body, headers, idempotency_key)
            else:
                answer = self.client.run_report(
                    report_id, view_type=view, body=body, extra_headers=headers
                )
        except TransportError as exc:
            if self.oauth or not exc.request_sent:
                # Refused, DNS, connect timeout, TLS handshake (a ConnectError): the POST
                # never left, so no run can exist and looking for one would only stall.
                # OAuth: the key was sent on every try, so Zuora made at most one run.
                raise
            return self._recover(report_id, dict(parameters), where, before, exc)
        except NotFoundError as exc:
            raise UnknownReportError(PROVIDER, report_id, exc.message) from exc
        except BadRequestError as exc:
            if VIEW_TYPE.lower() in exc.message.lower():
                # "... which is a Summary report": the one allowed value, said once (listing
                # both view types next to it would contradict it).
                kind = re.search(r"\b(Summary|Detail) report\b", exc.message)
                raise ParameterError(
                    VIEW_TYPE,
                    f"the report is a {kind[1]} report, so viewType must be {kind[1]}"
                    if kind
                    else f"Zuora refused it: {exc.message}",
                    allowed=None if kind else VIEW_TYPES,
                    provider=PROVIDER,
                    report_id=report_id,
                ) from exc
            raise
        except (ServerError, ResponseFormatError) as exc:
            if self.oauth:
                raise
            return self._recover(report_id, dict(parameters), where, before, exc)
        run_id = answer.response.report_run_id
        with self._lock:
            self._view_types.setdefault(report_id, view)
        self._remember_started(run_id)
        return self.make_run(
            id=run_id,
            report_id=report_id,
            raw_status="STARTED",
            created_at=before,
            parameters=parameters,
            scope=where,
            raw=answer.raw_payload,
        )

    def _post_with_key(
        self,
        report_id: str,
        view: str,
        body: list[Any] | None,
        headers: Mapping[str, str],
        idempotency_key: str,
    ) -> models.RunReportResponse:
        """Run a report with ``Idempotency-Key`` (REST hosts), sent again with the same key
        when the answer is lost after the request left (the runtime's retry covers refused
        connections and retryable statuses, not an answer cut off mid-body): Zuora replays
        the first run's answer instead of starting another."""
        deadline = time.monotonic() + self.create_lookup_seconds
        retries = LOOKUP_BACKOFF.sleeps(deadline, sleep=self._sleep)
        while True:
            try:
                return self.client.run_report(
                    report_id,
                    view_type=view,
                    body=body,
                    idempotency_key=idempotency_key,
                    extra_headers=headers,
                )
            except (TransportError, ResponseFormatError) as exc:
                if isinstance(exc, TransportError) and not exc.request_sent:
                    raise
                if next(retries, None) is None:
                    raise
                logger.warning(
                    "zuora: run POST for %s lost its answer (%s); sending it again with the "
                    "same Idempotency-Key",
                    report_id,
                    type(exc).__name__,
                )

    def _remember_started(self, run_id: str) -> None:
        with self._lock:
            self._started[run_id] = None
            while len(self._started) > _KNOWN_RUNS:
                del self._started[next(iter(self._started))]

    def _recover(
        self,
        report_id: str,
        parameters: dict[str, Any],
        scope: Scope,
        before: datetime,
        cause: Exception,
        exclude: frozenset[str] = frozenset(),
    ) -> ReportRun:
        """Find the run an ambiguous POST may have created, or say it may exist.

        The only documented way to see a run without its id is "last completed run" (runs
        of this user, once COMPLETED), so a run is recognised by report, view type, a
        ``startedOn`` not before the POST (less ``CLOCK_SKEW``) and an id this driver did not
        already get from an earlier start nor is in ``exclude`` (runs the journal gives to
        other jobs); it is polled for ``create_lookup_seconds``. A run
        still going after that is invisible: ``RunMayExistError`` says how to find it later.
        """
        headers = self.scope_headers(scope)
        view = parameters.get(VIEW_TYPE)
        deadline = time.monotonic() + self.create_lookup_seconds
        retries = LOOKUP_BACKOFF.sleeps(deadline, sleep=self._sleep)
        seen: str | None = None
        logger.warning(
            "zuora: run POST for %s failed ambiguously (%s); looking for the run it may "
            "have created",
            report_id,
            type(cause).__name__,
        )
        while True:
            try:
                latest = self.client.get_last_completed_report_run(
                    report_id, extra_headers=headers
                ).response
            except ApiError as exc:
                seen = exc.message if _NEVER_RUN in exc.message else str(exc)
            except (TransportError, ResponseFormatError) as exc:
                seen = str(exc)
            else:
                started = latest.started_on
                with self._lock:
                    ours_before = latest.id in self._started or latest.id in exclude
                matches = (
                    not ours_before
                    and (latest.report_id in (None, report_id))
                    and started is not None
                    and started >= before - CLOCK_SKEW
                    and (view is None or latest.report_type in (None, view))
                )
                if matches:
                    logger.warning(
                        "zuora: found run %s of %s started after the ambiguous POST; using it",
                        latest.id,
                        report_id,
                    )
                    self._remember_started(latest.id)
                    return self._run(latest, scope, parameters=parameters)
                seen = f"latest completed run {latest.id} (started {started}) is an earlier one"
            if next(retries, None) is None:
                break
        stamp = before.isoformat(timespec="seconds")
        raise RunMayExistError(
            PROVIDER,
            report_id,
            f"{type(cause).__name__}: {cause}; no completed run started after {stamp} was "
            f"found within {self.create_lookup_seconds:g}s (last check: {seen})",
            started_after=before,
            hint=(
                "Zuora keeps no list of runs; once it completes, `report-gateway last zuora "
                f"{report_id}` shows it with a startedOn after {stamp}: check that before "
                "starting another"
            ),
        ) from cause

    def find_created(
        self,
        report_id: str,
        parameters: Mapping[str, Any],
        *,
        scope: Scope,
        started_after: datetime,
        exclude: frozenset[str] = frozenset(),
    ) -> ReportRun:
        """The run a create sent at ``started_after`` made, when its answer was lost with the
        process that sent it (the run journal asks): ``_recover``'s lookup, or
        ``RunMayExistError``. ``exclude``: run ids the journal records for other jobs,
        never adopted."""
        cause = RuntimeError("the process that sent the create ended before its answer")
        where = self.resolve_scope(scope)
        return self._recover(report_id, dict(parameters), where, started_after, cause, exclude)

    def get(self, run_id: str, *, scope: Scope, deadline: float | None = None) -> ReportRun:
        where = self.resolve_scope(scope)
        try:
            answer = self.client.get_report_run(
                run_id, extra_headers=self.scope_headers(where), deadline=deadline
            )
        except NotFoundError as exc:
            raise RunNotFoundError(f"zuora: no report run {run_id} ({exc.message})") from exc
        return self._run(answer.response, where)

    def cancel(self, run: ReportRun) -> ReportRun:
        """DELETE the run, then read it back; a run that already ended is returned as is."""
        where = self.resolve_scope(run.scope)
        try:
            self.client.cancel_report_run(run.id, extra_headers=self.scope_headers(where))
        except NotFoundError as exc:
            raise RunNotFoundError(f"zuora: no report run {run.id} ({exc.message})") from exc
        except ApiError:
            fresh = self.get(run.id, scope=where)
            if fresh.status.is_terminal:
                return fresh
            raise
        return self.get(run.id, scope=where)

    def last_completed(self, report_id: str, *, scope: Scope) -> ReportRun:
        where = self.resolve_scope(scope)
        try:
            answer = self.client.get_last_completed_report_run(
                report_id, extra_headers=self.scope_headers(where)
            )
        except NotFoundError as exc:
            raise UnknownReportError(PROVIDER, report_id, exc.message) from exc
        except ApiError as exc:
            if _NEVER_RUN in exc.message:
                raise RunNotFoundError(
                    f"zuora: no completed run of {report_id} by this user in the last 60 days "
                    f"({exc.message})"
                ) from exc
            raise
        return self._run(answer.response, where)

    # -- results ----------------------------------------------------------------------------

    def open_result(
        self,
        run: ReportRun,
        *,
        offset: int = 0,
        if_range: str | None = None,
        deadline: float | None = None,
        stall_timeout: float | None = None,
    ) -> ResultResponse:
        """The export, streamed (UTF-16 tab-separated; the gateway decodes it); a resumed
        download asks for the rest with a Range header (and If-Range: the first answer's
        validator, so a changed export comes back whole)."""
        headers = dict(self.scope_headers(self.resolve_scope(run.scope)))
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
            if if_range:
                headers["If-Range"] = if_range
        return self.client.export_report_run(
            run.id,
            pivoted=self.pivoted,
            extra_headers=headers,
            deadline=deadline,
            read_timeout=stall_timeout,
        )

    # -- mapping ----------------------------------------------------------------------------

    def _run(
        self,
        run: models.ReportRun,
        scope: Scope,
        *,
        parameters: Mapping[str, Any] | None = None,
    ) -> ReportRun:
        raw_status = str(run.status.value)
        status = self.context.map_status(raw_status)
        view = normalize_view_type(run.report_type)
        result = None
        if status is RunStatus.SUCCEEDED:
            result = ResultFile(
                url=self.client.url_for(OPERATIONS["export_report_run"], {"reportRunId": run.id}),
                size=None,  # Zuora announces no size; the export has no Content-Length either
                content_type=CONTENT_TSV_UTF16,
                needs_auth=True,
                raw=run.raw_payload,
            )
        error = None
        if status is RunStatus.FAILED:
            error = _failure_reason(raw_status, run.raw_payload)
        params: dict[str, Any] = dict(parameters or {})
        if view and VIEW_TYPE not in params:
            params[VIEW_TYPE] = view
        return self.make_run(
            id=run.id,
            report_id=run.report_id or "",
            raw_status=raw_status,
            created_at=run.started_on,
            finished_at=run.updated_on if status.is_terminal else None,
            parameters=params,
            scope=scope,
            result=result,
            error=error,
            raw=run.raw_payload,
        )


_MESSAGE_KEYS = ("errorMessage", "message", "error", "errorCode", "reason")


def _failure_reason(raw_status: str, payload: Mapping[str, Any] | None) -> str:
    """Zuora's run object carries no reason field; keep any message it does carry."""
    words = {
        "INVALID": "Zuora marked the run INVALID (the report definition or filters are not "
        "valid for this run)",
        "ERROR": "Zuora reported an ERROR while running the report",
    }
    reason = words.get(raw_status.upper(), f"Zuora ended the run with status {raw_status}")
    for key in _MESSAGE_KEYS:
        value = (payload or {}).get(key)
        if isinstance(value, str) and value.strip():
            reason += f": {value.strip()}"
            break
    return reason
