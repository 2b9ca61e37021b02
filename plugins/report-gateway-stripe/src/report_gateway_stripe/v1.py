"""The ``stripe`` driver: Stripe Reporting v1 through ``stripe_reporting_client.v1``.

Report types become templates whose interval bounds are the type's data availability, so
an interval Stripe would refuse is refused here first. Result files live on the files host
(``files_base_url``; a non-default ``base_url`` when unset or set in a less explicit layer
than ``base_url``) and need the key: the generated
client sends it only there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from report_gateway.provider import (
    CONTENT_CSV,
    NotSupportedError,
    ParameterError,
    ParameterSpec,
    ProviderContext,
    ProviderSettings,
    ReportRun,
    ReportTemplate,
    ResultFile,
    ResultResponse,
    RunNotFoundError,
    RunStatus,
    Scope,
    StartReporter,
    UnknownReportError,
    format_unix,
    no_progress,
    parse_timestamp,
    validate_parameters,
)
from reporting_runtime import BadRequestError, NotFoundError
from reporting_runtime.converter import structure, unstructure
from stripe_reporting_client.v1 import USER_AGENT, Client, models

from .plugin import STRIPE, StripeV1Settings
from .scoping import StripeDriver
from .template_cache import TemplateCache

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_FILES_BASE_URL",
    "StripeV1Driver",
    "files_base_url_for",
    "template_of",
]

DEFAULT_BASE_URL = "https://api.stripe.com"
DEFAULT_FILES_BASE_URL = "https://files.stripe.com"
PAGE_SIZE = 100  # Stripe's maximum for list_report_runs

_FILE_PATH = re.compile(r"/v1/files/([^/]+)/contents/?$")

_DESCRIPTIONS = {
    "interval_start": "Start of the data interval (inclusive)",
    "interval_end": "End of the data interval (exclusive)",
    "columns": "Columns to include, in order",
    "currency": "Three-letter currency code to filter by (lowercase)",
    "timezone": "IANA time zone for the timestamps in the output",
    "connected_account": "Connected account id (acct_...) to filter by",
    "payout": "Payout id (po_...) to filter by; runs for one payout need no interval",
    "reporting_category": "Balance-transaction reporting category to filter by",
}


def template_of(report_type: models.ReportType) -> ReportTemplate:
    """A report type as a neutral template with the create-run parameters it accepts.

    ``columns`` is offered only when the type has ``default_columns`` (null means the type
    takes none); its names are not restricted to the defaults, since Stripe documents
    optional columns beyond them.
    """
    start, end = report_type.data_available_start, report_type.data_available_end

    def timestamp(name: str, after: str | None = None) -> ParameterSpec:
        return ParameterSpec(
            name=name,
            type="timestamp",
            required=True,
            description=_DESCRIPTIONS[name],
            minimum=start,
            maximum=end,
            after=after,
        )

    def text(name: str, default: str | None = None) -> ParameterSpec:
        return ParameterSpec(name=name, description=_DESCRIPTIONS[name], default=default)

    params: dict[str, ParameterSpec] = {
        "interval_start": timestamp("interval_start"),
        "interval_end": timestamp("interval_end", after="interval_start"),
    }
    if report_type.default_columns is not None:
        params["columns"] = ParameterSpec(
            name="columns",
            type="array",
            element_type="string",
            description=_DESCRIPTIONS["columns"],
            default=tuple(report_type.default_columns),
        )
    params["currency"] = text("currency")
    params["timezone"] = text("timezone", "Etc/UTC")
    params["connected_account"] = text("connected_account")
    params["payout"] = text("payout")
    params["reporting_category"] = text("reporting_category")
    return ReportTemplate(
        provider=STRIPE,
        id=report_type.id,
        name=report_type.name,
        description=f"version {report_type.version}",
        parameters=params,
        available_from=start,
        available_until=end,
        raw=report_type.raw_payload,
    )


def files_base_url_for(settings: Mapping[str, Any]) -> str:
    """Where result files are fetched: the setting, else the API host when it is not Stripe's.

    A proxy or sandbox named in ``base_url`` serves the files itself (and files.stripe.com
    is often unreachable from there); with Stripe's own API host the files host is Stripe's.
    A ``files_base_url`` from a less explicit layer than ``base_url`` (a profile's files host
    against ``base_url`` given in code or with ``--base-url``) is ignored: pointing the API
    somewhere explicitly would otherwise leave the key going to the profile's files host.
    """
    base_url = str(settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
    files_base_url = settings.get("files_base_url")
    outranked = isinstance(settings, ProviderSettings) and settings.outranks(
        "base_url", "files_base_url"
    )
    if files_base_url and not outranked:
        return str(files_base_url).rstrip("/")
    if base_url == DEFAULT_BASE_URL:
        return DEFAULT_FILES_BASE_URL
    return base_url


def _timezone_known(name: str) -> bool | None:
    """Whether ``name`` is an IANA zone; None when this system has no zone data to ask."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None if not zoneinfo.available_timezones() else False
    return True


class StripeV1Driver(StripeDriver):
    """``ProviderDriver`` for Stripe Reporting v1; one per Gateway, safe across threads."""

    unsupported = {
        "cancel": ("cancel", "Stripe report runs cannot be canceled; they finish on their own")
    }

    def __init__(self, context: ProviderContext, *, client: Client | None = None) -> None:
        super().__init__(context)
        settings = context.settings_as(StripeV1Settings)
        base_url = settings.base_url or DEFAULT_BASE_URL
        self.files_base_url = files_base_url_for(context.settings)
        self.client = client or Client(
            base_url,
            auth=context.auth,
            files_base_url=self.files_base_url,
            stripe_version=settings.stripe_version,
            transport=context.transport,
            retry=context.retry,
            user_agent=f"{context.user_agent} {USER_AGENT}",
        )
        self.templates_for_validation = TemplateCache()

    # -- templates -------------------------------------------------------------------------

    def templates(self, *, scope: Scope) -> Sequence[ReportTemplate]:
        _, headers = self.scoped(scope)
        listing = self.client.list_report_types(
            stripe_account=headers.value, extra_headers=headers.extra
        )
        templates = [template_of(report_type) for report_type in listing.data]
        for template in templates:
            self.templates_for_validation.put(headers.cache_key(template.id), template)
        return templates

    def template(self, report_id: str, *, scope: Scope) -> ReportTemplate:
        _, headers = self.scoped(scope)
        try:
            report_type = self.client.retrieve_report_type(
                report_id, stripe_account=headers.value, extra_headers=headers.extra
            )
        except NotFoundError as exc:
            raise UnknownReportError(
                STRIPE, report_id, "list them with `report-gateway templates stripe`"
            ) from exc
        template = template_of(report_type)
        self.templates_for_validation.put(headers.cache_key(report_id), template)
        return template

    # -- runs ------------------------------------------------------------------------------

    def validate(
        self, report_id: str, parameters: Mapping[str, Any], *, scope: Scope
    ) -> dict[str, Any]:
        _, headers = self.scoped(scope)

        def check(template: ReportTemplate) -> dict[str, Any]:
            clean = validate_parameters(
                template,
                parameters,
                timestamp_format=format_unix,
                optional_when={"interval_start": "payout", "interval_end": "payout"},
            )
            if "currency" in clean:
                clean["currency"] = self._currency(template, clean["currency"])
            return clean

        clean = self.templates_for_validation.checked(
            headers.cache_key(report_id), lambda: self.template(report_id, scope=scope), check
        )
        if "timezone" in clean and _timezone_known(clean["timezone"]) is False:
            raise ParameterError(
                "timezone",
                f"{clean['timezone']!r} is not an IANA time zone name",
                allowed="IANA names such as Etc/UTC, America/New_York",
                provider=STRIPE,
                report_id=report_id,
            )
        return clean

    def _currency(self, template: ReportTemplate, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{3}", value):
            raise ParameterError(
                "currency",
                f"{value!r} is not a three-letter currency code",
                allowed="ISO 4217 codes such as usd, eur",
                provider=STRIPE,
                report_id=template.id,
            )
        return value.lower()

    def start(
        self,
        report_id: str,
        parameters: Mapping[str, Any],
        *,
        scope: Scope,
        idempotency_key: str,
        progress: StartReporter = no_progress,
    ) -> ReportRun:
        where, headers = self.scoped(scope)
        values = dict(parameters)
        for name in ("interval_start", "interval_end"):
            if name in values:
                values[name] = parse_timestamp(values[name])
        body = models.CreateReportRunRequest(
            report_type=report_id,
            parameters=models.CreateReportRunParameters(**values) if values else None,
        )
        try:
            run = self.client.create_report_run(
                body=body,
                stripe_account=headers.value,
                idempotency_key=idempotency_key,
                extra_headers=headers.extra,
            )
        except BadRequestError as exc:
            refused = _parameter_error(exc, report_id)
            if refused is None:
                raise
            raise refused from exc
        return self._run(run, where)

    def get(self, run_id: str, *, scope: Scope, deadline: float | None = None) -> ReportRun:
        where, headers = self.scoped(scope)
        try:
            run = self.client.retrieve_report_run(
                run_id, stripe_account=headers.value, extra_headers=headers.extra, deadline=deadline
            )
        except NotFoundError as exc:
            raise RunNotFoundError(f"{STRIPE}: no report run {run_id!r} ({exc.message})") from exc
        return self._run(run, where)

    def runs(self, *, limit: int | None, scope: Scope) -> Iterator[ReportRun]:
        where, headers = self.scoped(scope)
        remaining = limit
        after: str | None = None
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            page = self.client.list_report_runs(
                limit=size,
                starting_after=after,
                stripe_account=headers.value,
                extra_headers=headers.extra,
            )
            for item in page.data[:size]:
                yield self._run(item, where)
            if remaining is not None:
                remaining -= min(len(page.data), size)
            if not page.has_more or not page.data:
                return
            after = page.data[-1].id

    def last_completed(self, report_id: str, *, scope: Scope) -> ReportRun:
        seen = 0
        for run in self.runs(limit=None, scope=scope):
            seen += 1
            if run.report_id == report_id and run.status is RunStatus.SUCCEEDED:
                return run
        self.template(report_id, scope=scope)  # an unknown report says so, not "no run"
        raise RunNotFoundError(
            f"{STRIPE}: no succeeded run of {report_id!r} among the {seen} runs listed"
        )

    # -- results ---------------------------------------------------------------------------

    def open_result(
        self,
        run: ReportRun,
        *,
        offset: int = 0,
        if_range: str | None = None,
        deadline: float | None = None,
        stall_timeout: float | None = None,
    ) -> ResultResponse:
        file_id = _file_id(run)
        _, headers = self.scoped(run.scope)
        extra = dict(headers.extra)
        if offset > 0:
            extra["Range"] = f"bytes={offset}-"
            if if_range:
                extra["If-Range"] = if_range
        return self.client.download_file_contents(
            file_id,
            stripe_account=headers.value,
            extra_headers=extra,
            deadline=deadline,
            read_timeout=stall_timeout,
        )

    # -- mapping ---------------------------------------------------------------------------

    def run_from_event(self, event: Mapping[str, Any]) -> ReportRun:
        """The run in a ``reporting.report_run.*`` event's ``data.object``, mapped as ``get``
        maps it; a Connect event's ``account`` becomes the run's scope."""
        data = event.get("data")
        payload = data.get("object") if isinstance(data, Mapping) else None
        if not isinstance(payload, Mapping) or payload.get("object") != "reporting.report_run":
            raise ValueError(f"event {event.get('id')!r} carries no reporting.report_run")
        account = event.get("account")
        scope = Scope(account=account) if isinstance(account, str) and account else Scope()
        return self._run(structure(dict(payload), models.ReportRun), self.resolve_scope(scope))

    def _run(self, run: models.ReportRun, scope: Scope) -> ReportRun:
        raw = run.raw_payload or {}
        parameters = raw.get("parameters")
        if not isinstance(parameters, Mapping):
            parameters = unstructure(run.parameters)
        return self.make_run(
            id=run.id,
            report_id=run.report_type,
            raw_status=str(run.status.value),
            created_at=run.created,
            finished_at=run.succeeded_at,
            parameters=parameters,
            scope=scope,
            result=self._result(run.result) if run.result is not None else None,
            error=run.error,
            raw=run.raw_payload,
        )

    def _result(self, file: models.File) -> ResultFile:
        url = file.url or f"{self.files_base_url}/v1/files/{file.id}/contents"
        return ResultFile(
            url=url,
            size=file.size,
            content_type=CONTENT_CSV,
            filename=file.filename or f"{file.id}.csv",
            expires_at=file.expires_at,
            needs_auth=True,
            raw=file.raw_payload,
        )


def _file_id(run: ReportRun) -> str:
    """The result's file id: from the file payload, else from its contents URL."""
    result = run.result
    if result is None:
        raise NotSupportedError(STRIPE, "open_result", f"run {run.id} has no result file")
    raw = result.raw or {}
    file_id = raw.get("id")
    if isinstance(file_id, str) and file_id:
        return file_id
    match = _FILE_PATH.search(urlsplit(result.url).path)
    if match is None:
        raise NotSupportedError(
            STRIPE, "open_result", f"run {run.id}: cannot tell the result's file id"
        )
    return match.group(1)


def _parameter_error(exc: BadRequestError, report_id: str) -> ParameterError | None:
    """Stripe's 400 about one run parameter, as a ParameterError; None for other 400s."""
    param = exc.param or ""
    match = re.fullmatch(r"parameters\[(\w+)\](?:\[\d*\])?", param)
    if match is None:
        return None
    request = f" (request id {exc.request_id})" if exc.request_id else ""
    return ParameterError(
        match.group(1),
        f"Stripe refused it: {exc.message}{request}",
        provider=STRIPE,
        report_id=report_id,
    )
