"""The ``stripe-v2`` driver: Stripe Reports API v2 through ``stripe_reporting_client.v2``.

What v2 does differently, and how this driver meets it:

- No list endpoint for reports: ``templates()`` retrieves the ids named in the ``reports``
  setting, and refuses with NotSupportedError (saying how to fix it) when there are none.
- No list of runs, no cancel: ``runs``, ``last_completed`` and ``cancel`` are NotSupported.
- A concurrency limit answered with 429 ``report_run_rate_limit_exceeded``: the driver
  only says so (``provider_limit``, a ``ProviderLimit``); the gateway's admission
  (``report_gateway.admission``) queues the start first come, first served with every
  other start in the process using the same key, and has the head of the line send the
  create again (same idempotency key) every ``RATE_LIMIT_INTERVAL`` seconds or as soon as
  a run is seen ending, for up to ``rate_limit_wait`` seconds. Creates go through a client
  whose runtime retries leave 429 alone, so admission alone decides when a refused create
  is sent again.
- Results behind pre-signed URLs that expire after five minutes: ``open_result`` fetches
  them with a bare transport request that carries no key, and retrieves the run again
  for a fresh URL when the one it has expired (past ``expires_at``, or 403/410).
- ``result_options.compress_file`` (a ZIP result): the ``compress_file`` setting for every
  run, or per run the pseudo-parameter ``result_options={"compress_file": True}``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import attrs
from report_gateway.provider import (
    CONTENT_CSV,
    CONTENT_ZIP,
    Backoff,
    DownloadError,
    ParameterError,
    ParameterSpec,
    ProviderContext,
    ProviderLimit,
    ReportRun,
    ReportTemplate,
    ResultFile,
    ResultResponse,
    RunNotFoundError,
    Scope,
    StartReporter,
    UnknownReportError,
    format_rfc3339,
    match_templates,
    no_progress,
    validate_parameters,
)
from reporting_runtime import NotFoundError, RateLimitError, Request, Response, RetryConfig
from stripe_reporting_client.v2 import USER_AGENT, Client, models

from .plugin import DEFAULT_RATE_LIMIT_WAIT, STRIPE_V2, StripeV2Settings
from .scoping import StripeDriver
from .template_cache import TemplateCache

__all__ = [
    "DEFAULT_RATE_LIMIT_WAIT",
    "GRANULARITIES",
    "RATE_LIMIT_INTERVAL",
    "RESULT_OPTIONS",
    "StripeV2Driver",
    "template_of",
]

DEFAULT_BASE_URL = "https://api.stripe.com"
#: Seconds between the create retries of the start at the head of the line for a slot.
RATE_LIMIT_INTERVAL = 0.25
#: The per-run pseudo-parameter carrying the create body's ``result_options``.
RESULT_OPTIONS = "result_options"
#: Documented values of ``organization_report_granularity`` (multi-account reports).
GRANULARITIES = ("concatenated_report", "aggregated_report")
GRANULARITY = "organization_report_granularity"

#: How many times a download fetches a fresh URL after the one it had expired.
URL_REFRESHES = 2
#: A URL this close to ``expires_at`` is refreshed before use (clock skew, slow start).
EXPIRY_MARGIN = timedelta(seconds=5)


def _create_retry(config: RetryConfig | None) -> RetryConfig:
    """``config`` without 429: a refused create goes back to the admission line at once.

    Retry-After is not read here either (urllib3 would retry a 429 that carries one); the
    admission reads it from the RateLimitError instead (``_refusal``).
    """
    config = config or RetryConfig()
    statuses = tuple(status for status in config.retry_statuses if status != 429)
    return attrs.evolve(config, retry_statuses=statuses, respect_retry_after=False)


def _refusal(exc: Exception) -> float | None:
    """Seconds Stripe asked a refused create to wait (0: unsaid); None if not a 429.

    Any 429 counts, ``report_run_rate_limit_exceeded`` or a request-rate limit: the runtime
    does not retry creates on 429, so admission is what waits on both.
    """
    if not isinstance(exc, RateLimitError):
        return None
    return exc.retry_after or 0.0


def _parameter_spec(name: str, parameter: models.ReportParameter) -> ParameterSpec:
    kind = str(parameter.type.value)
    allowed: tuple[str, ...] | None = None
    element: str | None = None
    low: datetime | None = None
    high: datetime | None = None
    if kind == "enum":
        kind = "string"
        if parameter.enum_details is not None:
            allowed = tuple(parameter.enum_details.allowed_values)
    elif kind == "array":
        element = "string"
        details = parameter.array_details
        if details is not None and details.enum_details is not None:
            allowed = tuple(details.enum_details.allowed_values)
    elif kind == "timestamp" and parameter.timestamp_details is not None:
        bounds = sorted((parameter.timestamp_details.min, parameter.timestamp_details.max))
        low, high = bounds[0], bounds[1]
    if name == GRANULARITY and allowed is None and kind == "string":
        allowed = GRANULARITIES
    return ParameterSpec(
        name=name,
        type=kind,
        required=parameter.required,
        description=parameter.description,
        allowed_values=allowed,
        minimum=low,
        maximum=high,
        element_type=element,
        raw=parameter.raw_payload,
    )


def template_of(report: models.Report) -> ReportTemplate:
    """A v2 report as a neutral template.

    Enums become strings with ``allowed_values``; timestamp bounds are stored in order
    (Stripe's guide prints one report with ``min`` and ``max`` swapped); ``interval_end``
    must come after ``interval_start``.
    """
    params = {name: _parameter_spec(name, p) for name, p in report.parameters.items()}
    if "interval_start" in params and "interval_end" in params:
        params["interval_end"] = attrs.evolve(params["interval_end"], after="interval_start")
    return ReportTemplate(
        provider=STRIPE_V2,
        id=report.id,
        name=report.name,
        parameters=params,
        raw=report.raw_payload,
    )


#: Report ids to start from, since the v2 API cannot list them: those of Stripe's
#: "Supported reports" page that the sandbox models too.
KNOWN_REPORT_IDS = (
    "report_balance_summary",
    "report_itemized_balance_change",
    "report_connected_account_activity",
)


class StripeV2Driver(StripeDriver):
    """``ProviderDriver`` for Stripe Reports v2; one per Gateway, safe across threads.

    ``now`` is the URL expiry clock (replaceable in tests).
    ``client`` (tests) serves creates too, with whatever retries it was built with.
    """

    unsupported = {
        "templates": (
            "listing reports",
            "the v2 API has no list endpoint: name the report ids you use in the "
            "setting 'reports' (settings={'stripe-v2': {'reports': ['report_...']}}) or "
            "fetch one with template(report_id); known ids: "
            + ", ".join(KNOWN_REPORT_IDS)
            + " (Stripe lists the others under 'Supported reports')",
        ),
        "cancel": ("cancel", "Stripe v2 report runs cannot be canceled"),
        "runs": ("listing runs", "the v2 API has no list endpoint; keep the run ids"),
        "last_completed": ("last_completed", "the v2 API cannot list runs; keep the run ids"),
    }

    def __init__(self, context: ProviderContext, *, client: Client | None = None) -> None:
        super().__init__(context)
        #: Sent by the API clients and by the bare pre-signed download alike.
        self.user_agent = f"{context.user_agent} {USER_AGENT}"
        settings = context.settings_as(StripeV2Settings)
        base_url = settings.base_url or DEFAULT_BASE_URL
        options: dict[str, Any] = {}
        if settings.stripe_version:
            options["stripe_version"] = settings.stripe_version

        def build(retry: RetryConfig | None) -> Client:
            return Client(
                base_url,
                auth=context.auth,
                transport=context.transport,
                retry=retry,
                user_agent=self.user_agent,
                **options,
            )

        self.client = client or build(context.retry)
        self.create_client = client or build(_create_retry(context.retry))
        self.rate_limit_interval = RATE_LIMIT_INTERVAL
        self.compress_file = settings.compress_file
        self.rate_limit_wait = settings.rate_limit_wait
        self.report_ids = list(settings.reports)
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.templates_for_validation = TemplateCache()

    @property
    def provider_limit(self) -> ProviderLimit:
        """Stripe's limit on concurrent runs per key, as the gateway's admission needs it."""
        return ProviderLimit(
            refused=_refusal,
            wait=self.rate_limit_wait,
            retry=Backoff.constant(self.rate_limit_interval),
            reason="the key is at Stripe's limit of concurrent report runs",
        )

    # -- templates -------------------------------------------------------------------------

    def templates(self, *, scope: Scope) -> Sequence[ReportTemplate]:
        if not self.report_ids:
            raise self.not_supported("templates")
        found = []
        for report_id in self.report_ids:
            try:
                found.append(self._retrieve(report_id, scope, listed=True))
            except UnknownReportError as exc:
                # One stale or mistyped id must not hide the reports that do exist.
                warnings.warn(f"{exc}; left out of the listing", stacklevel=2)
        return found

    def template(self, report_id: str, *, scope: Scope) -> ReportTemplate:
        return self._retrieve(report_id, scope)

    def _retrieve(self, report_id: str, scope: Scope, *, listed: bool = False) -> ReportTemplate:
        _, headers = self.scoped(scope)
        try:
            report = self.client.retrieve_report(
                report_id, stripe_context=headers.value, extra_headers=headers.extra
            )
        except NotFoundError as exc:
            hint = "listed in the setting 'reports'" if listed else None
            raise UnknownReportError(STRIPE_V2, report_id, hint) from exc
        template = template_of(report)
        self.templates_for_validation.put(headers.cache_key(report_id), template)
        return template

    def search(self, query: str, *, scope: Scope) -> Sequence[ReportTemplate]:
        """Configured reports matching ``query``; a bare report id is looked up directly."""
        words = query.split()
        if len(words) == 1 and words[0] not in self.report_ids and words[0].startswith("report"):
            try:
                return [self.template(words[0], scope=scope)]
            except UnknownReportError:
                if not self.report_ids:
                    return []
        return match_templates(self.templates(scope=scope), query)

    # -- runs ------------------------------------------------------------------------------

    def validate(
        self, report_id: str, parameters: Mapping[str, Any], *, scope: Scope
    ) -> dict[str, Any]:
        where, headers = self.scoped(scope)
        values = dict(parameters)
        options = self._result_options(report_id, values.pop(RESULT_OPTIONS, None))
        clean = self.templates_for_validation.checked(
            headers.cache_key(report_id),
            lambda: self.template(report_id, scope=where),
            lambda template: validate_parameters(template, values, timestamp_format=format_rfc3339),
        )
        if GRANULARITY in clean and where.context:
            raise ParameterError(
                GRANULARITY,
                "applies to multi-account runs, which are made without Stripe-Context; "
                f"this run is scoped to {where.context!r}",
                allowed="omit it, or run without Scope(context=...)",
                provider=STRIPE_V2,
                report_id=report_id,
            )
        if options is not None:
            clean[RESULT_OPTIONS] = options
        return clean

    def _result_options(self, report_id: str, value: Any) -> dict[str, bool] | None:
        if value is None:
            return None
        if not isinstance(value, Mapping) or set(value) - {"compress_file"}:
            raise ParameterError(
                RESULT_OPTIONS,
                f"expected a mapping with the key compress_file, got {value!r}",
                allowed=["compress_file"],
                provider=STRIPE_V2,
                report_id=report_id,
            )
        flag = value.get("compress_file")
        if flag is None:
            return {}
        if not isinstance(flag, bool):
            raise ParameterError(
                f"{RESULT_OPTIONS}.compress_file",
                f"expected a boolean, got {flag!r}",
                allowed=[True, False],
                provider=STRIPE_V2,
                report_id=report_id,
            )
        return {"compress_file": flag}

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
        options = values.pop(RESULT_OPTIONS, None) or {}
        compress = options.get("compress_file", self.compress_file)
        body = models.CreateReportRunRequest(
            report=report_id,
            report_parameters=values,
            result_options=models.ResultOptions(compress_file=True) if compress else None,
        )
        run = self.create_client.create_report_run(
            body=body,
            stripe_context=headers.value,
            idempotency_key=idempotency_key,
            extra_headers=headers.extra,
        )
        return self._run(run, where)

    def get(self, run_id: str, *, scope: Scope, deadline: float | None = None) -> ReportRun:
        where, headers = self.scoped(scope)
        try:
            run = self.client.retrieve_report_run(
                run_id, stripe_context=headers.value, extra_headers=headers.extra, deadline=deadline
            )
        except NotFoundError as exc:
            raise RunNotFoundError(
                f"{STRIPE_V2}: no report run {run_id!r} ({exc.message}); a run made with a "
                "Stripe-Context is only found with the same context"
            ) from exc
        return self._run(run, where)

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
        """GET the pre-signed URL with no key; refresh it when it has expired."""
        current = run
        refreshes = 0
        while True:
            result = current.result
            if result is None or not result.url:
                raise DownloadError(f"{STRIPE_V2} run {run.id} has no result URL")
            stale = (
                result.expires_at is not None
                and result.expires_at - EXPIRY_MARGIN <= self.now()
                and refreshes == 0
            )
            if not stale:
                response = self._fetch(result.url, offset, if_range, deadline, stall_timeout)
                if response.status not in (403, 410):
                    return self._checked(response, run)
                response.close()
                if refreshes >= URL_REFRESHES:
                    raise DownloadError(
                        f"{STRIPE_V2} run {run.id}: the download URL was refused "
                        f"(HTTP {response.status}) even after {refreshes} fresh URLs"
                    )
            refreshes += 1
            self.context.logger.info("%s run %s: fetching a fresh download URL", STRIPE_V2, run.id)
            current = self.get(run.id, scope=run.scope, deadline=deadline)

    def _fetch(
        self,
        url: str,
        offset: int,
        if_range: str | None = None,
        deadline: float | None = None,
        stall_timeout: float | None = None,
    ) -> Response:
        headers = {"User-Agent": self.user_agent, "Accept": "*/*"}
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
            if if_range:
                headers["If-Range"] = if_range
        request = Request(
            method="GET",
            url=url,
            headers=headers,
            operation="download_presigned_url",
            provider=STRIPE_V2,
            deadline=deadline,
            read_timeout=stall_timeout,
            # Sent with no key: the URL is the credential, whatever its query looks like.
            url_is_credential=True,
        )
        # The bare transport, not the client's pipeline: no auth policy, no scope headers.
        return self.context.transport.send(request, stream=True)

    def _checked(self, response: Response, run: ReportRun) -> Response:
        if 200 <= response.status < 300:
            return response
        status = response.status
        response.close()
        host = urlsplit(response.request.url).hostname or "the storage host"
        raise DownloadError(
            f"{STRIPE_V2} run {run.id}: {host} answered HTTP {status} for the result file"
        )

    def result_columns(self, run: ReportRun) -> dict[str, str]:
        """The file's column types (``result.file.schema``, asked for with ``include``: a
        plain retrieve leaves it out), in the gateway's neutral vocabulary."""
        raw = run.result.raw if run.result is not None else None
        schema = raw.get("schema") if isinstance(raw, Mapping) else None
        if not isinstance(schema, list):
            _, headers = self.scoped(run.scope)
            fresh = self.client.retrieve_report_run(
                run.id,
                include=["result.file.schema"],
                stripe_context=headers.value,
                extra_headers=headers.extra,
            )
            file = ((fresh.raw_payload or {}).get("result") or {}).get("file") or {}
            schema = file.get("schema") if isinstance(file, Mapping) else None
        return {
            str(column["name"]): _COLUMN_TYPES.get(str(column.get("type")), "string")
            for column in schema or ()
            if isinstance(column, Mapping) and column.get("name")
        }

    # -- mapping ---------------------------------------------------------------------------

    def _run(self, run: models.ReportRun, scope: Scope) -> ReportRun:
        raw = run.raw_payload or {}
        parameters = raw.get("report_parameters")
        if not isinstance(parameters, Mapping):
            parameters = dict(run.report_parameters)
        return self.make_run(
            id=run.id,
            report_id=run.report,
            raw_status=str(run.status.value),
            created_at=run.created,
            parameters=parameters,
            scope=scope,
            result=_result(run),
            error=_failure(run),
            raw=run.raw_payload,
        )


#: ``result.file.schema`` column types -> the gateway's (``report_gateway.tabular``).
_COLUMN_TYPES = {
    "boolean": "boolean",
    "double": "number",
    "bigint": "integer",
    "varchar": "string",
    "timestamp": "timestamp",
}


def _result(run: models.ReportRun) -> ResultFile | None:
    if run.result is None or run.result.file is None:
        return None
    file = run.result.file
    zipped = str(file.content_type.value) == "zip"
    return ResultFile(
        url=file.download_url.url,
        size=int(file.size),
        content_type=CONTENT_ZIP if zipped else CONTENT_CSV,
        filename=f"{run.id}.{'zip' if zipped else 'csv'}",
        expires_at=file.download_url.expires_at,
        needs_auth=False,
        raw=file.raw_payload,
    )


def _failure(run: models.ReportRun) -> str | None:
    """``status_details.failed`` as one line: the message, then the code in brackets."""
    details = (run.status_details or {}).get("failed")
    if details is None:
        return None
    code = str(details.error_code.value) if details.error_code is not None else None
    message = details.error_message or "no message"
    return f"{message} [{code}]" if code else message
