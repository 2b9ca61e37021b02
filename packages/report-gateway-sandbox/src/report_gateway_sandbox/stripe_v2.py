"""Stripe Reports API v2: report templates with parameter schemas, report runs, and the
pre-signed, expiring download URLs of their results."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from report_gateway_sandbox.downloads import file_response
from report_gateway_sandbox.idempotency import IdempotencyRule, IdempotentCreates
from report_gateway_sandbox.results import (
    Column,
    ResultBody,
    TableFile,
    ZipFile,
    run_seed,
    table_context,
)
from report_gateway_sandbox.state import SandboxState, parse_rfc3339, rfc3339_nanos
from report_gateway_sandbox.stripe_auth import require_key, v2_error
from report_gateway_sandbox.webhooks import v2_thin_event
from report_gateway_sandbox.wire import HttpError, Request, Response, Route, Router, json_response

PROVIDER = "stripe-v2"
_DOWNLOAD_PREFIX = "/_files/v2/"


#: `Stripe-Version` as Stripe names its releases: a date and a release name (the preview and
#: private-preview channels included). Anything else is refused as Stripe does, not echoed.
STRIPE_RELEASES = frozenset({"acacia", "basil", "clover", "dahlia", "preview", "private"})
_VERSION = re.compile(r"(\d{4})-(\d{2})-(\d{2})\.([a-z]+)")
_FIRST_V2_VERSION = dt.date(2024, 9, 30)  # the first release with /v2 endpoints (acacia)


def known_stripe_version(value: str, today: dt.date | None = None) -> bool:
    """A real-looking version for /v2: a valid date, not before v2 existed and not in the
    future, and a known release name."""
    found = _VERSION.fullmatch(value)
    if found is None or found.group(4) not in STRIPE_RELEASES:
        return False
    try:
        date = dt.date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return False
    return _FIRST_V2_VERSION <= date <= (today or dt.datetime.now(dt.UTC).date())


@dataclass(frozen=True)
class V2Report:
    id: str
    name: str
    columns: tuple[Column, ...]
    extra_parameters: tuple[str, ...]
    aggregatable: bool
    # Parameters printed with the `*_details` Stripe's Retrieve a Report example sends for
    # fields that do not apply: `"enum_details": false` and nulls, not absent keys.
    published_nulls: bool = False


_BALANCE_COLUMNS = (
    Column("category", "category"),
    Column("description", "text"),
    Column("net_amount", "amount"),
    Column("currency", "currency"),
)
_ACTIVITY_COLUMNS = (
    Column("balance_transaction_id", "index", "txn_"),
    Column("created", "utc"),
    Column("currency", "currency"),
    Column("gross", "amount"),
    Column("fee", "amount"),
    Column("net", "amount"),
    Column("reporting_category", "category"),
    Column("description", "text"),
)
REPORTS: tuple[V2Report, ...] = (
    V2Report("report_balance_summary", "Balance summary", _BALANCE_COLUMNS, (), True),
    V2Report(
        "report_itemized_balance_change",
        "Itemized balance change from activity",
        _ACTIVITY_COLUMNS,
        ("columns",),
        False,
    ),
    V2Report(
        "report_connected_account_activity",
        "Connected account activity",
        (*_ACTIVITY_COLUMNS, Column("connected_account", "text")),
        ("columns", "connected_account"),
        False,
    ),
    # Shaped like Stripe's published Retrieve a Report example: `columns` carries
    # `"enum_details": false`, the other parameters null `*_details`.
    V2Report(
        "report_payouts_reconciliation",
        "Payout reconciliation",
        _ACTIVITY_COLUMNS,
        ("columns",),
        False,
        published_nulls=True,
    ),
)
_DETAILS = ("array_details", "enum_details", "timestamp_details")
_SCHEMA_TYPES = {"amount": "double", "count": "bigint", "utc": "timestamp", "unix": "bigint"}


@dataclass
class V2Run:
    id: str
    key: str
    context: str | None
    report: V2Report
    parameters: dict[str, Any]
    compress: bool
    created_at: float
    duration: float
    failure: tuple[str, str] | None
    rows: int
    target_bytes: int | None
    seed: int

    @functools.cached_property
    def table(self) -> TableFile:
        names = self.parameters.get("columns")
        by_name = {c.name: c for c in self.report.columns}
        columns = [by_name[n] for n in names] if names else list(self.report.columns)
        start = int(parse_rfc3339(self.parameters["interval_start"]))
        end = int(parse_rfc3339(self.parameters["interval_end"]))
        context = table_context({"interval_start": start, "interval_end": end}, start, end)
        return TableFile(
            columns,
            seed=self.seed,
            context=context,
            rows=self.rows,
            target_bytes=self.target_bytes,
            filename=f"{self.id}.csv",
        )

    @functools.cached_property
    def file(self) -> ResultBody:
        if not self.compress:
            return self.table
        return ZipFile(
            self.table,
            filename=f"{self.id}.zip",
            member=f"{self.id}.csv",
            when=dt.datetime.fromtimestamp(self.created_at + self.duration, dt.UTC),
        )


class StripeV2:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self.runs: dict[str, V2Run] = {}
        self.running: dict[str, list[V2Run]] = {}
        # v2 keys live per API key and Stripe-Context, and the body is compared as sent.
        self.idempotency = IdempotentCreates(
            IdempotencyRule(
                echo_key=False,
                conflict=lambda req, message: v2_error(
                    400, message, code="idempotency_error", type_="idempotency_error"
                ),
            )
        )
        self.reports = {r.id: r for r in REPORTS}
        self._secret = hashlib.sha256(f"sandbox-url-signing-{state.config.seed}".encode()).digest()

    def routes(self) -> list[Route]:
        router = Router(PROVIDER, self._key)
        router.add("GET", "/v2/reporting/reports/{id}", "retrieve_report", self.get_report)
        router.add("POST", "/v2/reporting/report_runs", "create_report_run", self.create_run)
        router.add("GET", "/v2/reporting/report_runs/{id}", "retrieve_report_run", self.get_run)
        # The storage host behind pre-signed URLs takes no key: the signature is the check.
        router.add_open(
            "GET",
            _DOWNLOAD_PREFIX + "{run}/{filename}",
            "download_presigned",
            self.download,
            in_spec=False,
        )
        return router.routes

    # -- the guard -------------------------------------------------------------------------
    def _key(self, req: Request) -> str:
        """The request's API key, once it and a Stripe-Version header are acceptable."""
        key = require_key(req, v2=True)
        version = req.header("Stripe-Version")
        if version is None:
            raise v2_error(
                400,
                "A Stripe-Version header is required for /v2 endpoints, for example "
                "'Stripe-Version: 2026-01-28.preview'.",
                code="invalid_stripe_version",
            )
        if not known_stripe_version(version):
            raise v2_error(
                400,
                f"Invalid Stripe API version: {version}. Use a version such as "
                "'2026-01-28.preview'.",
                code="invalid_stripe_version",
            )
        return key

    def _parameter_schema(self, report: V2Report) -> dict[str, Any]:
        first = rfc3339_nanos(self.state.config.data_available_start)[:-7] + "Z"
        last = rfc3339_nanos(self.state.data_available_end())[:-7] + "Z"
        bounds = {"min": first, "max": last}
        params: dict[str, Any] = {
            "interval_start": {
                "description": "Starting timestamp of data to be included.",
                "required": True,
                "type": "timestamp",
                "timestamp_details": bounds,
            },
            "interval_end": {
                "description": "Ending timestamp of data to be included.",
                "required": True,
                "type": "timestamp",
                "timestamp_details": bounds,
            },
        }
        if "columns" in report.extra_parameters:
            params["columns"] = {
                "description": "The set of output columns which can be requested.",
                "required": False,
                "type": "array",
                "array_details": {
                    "element_type": "enum",
                    "enum_details": {"allowed_values": [c.name for c in report.columns]},
                },
            }
        if "connected_account" in report.extra_parameters:
            params["connected_account"] = {
                "description": "Connected account ID by which to filter the report.",
                "required": False,
                "type": "string",
            }
        if report.aggregatable:
            params["organization_report_granularity"] = {
                "description": "How to combine the accounts of an organization.",
                "required": False,
                "type": "enum",
                "enum_details": {"allowed_values": ["concatenated_report", "aggregated_report"]},
            }
        if report.published_nulls:
            for spec in params.values():
                for details in _DETAILS:
                    spec.setdefault(details, None)
            if "columns" in params:
                params["columns"]["enum_details"] = False
        return params

    # -- reports ---------------------------------------------------------------------------
    def get_report(self, req: Request, key: str) -> Response:
        _refuse_unknown_query(req, ())
        report = self.reports.get(req.params["id"])
        if report is None:
            raise v2_error(404, f"No such report: '{req.params['id']}'", code="not_found")
        return json_response(
            200,
            {
                "id": report.id,
                "object": "v2.reporting.report",
                "livemode": False,
                "name": report.name,
                "parameters": self._parameter_schema(report),
            },
        )

    # -- runs ------------------------------------------------------------------------------
    def _status(self, run: V2Run, now: float) -> str:
        if now - run.created_at < run.duration:
            return "running"
        return "failed" if run.failure else "succeeded"

    def _sign(self, path: str, expires: int) -> str:
        return hmac.new(self._secret, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()

    def _run_json(self, base_url: str, run: V2Run, *, schema: bool = False) -> dict[str, Any]:
        now = self.state.now()
        status = self._status(run, now)
        result = None
        details: dict[str, Any] = {}
        if status == "failed" and run.failure:
            details = {"failed": {"error_code": run.failure[0], "error_message": run.failure[1]}}
        if status == "succeeded":
            body = run.file
            ttl = self.state.config.url_ttl_seconds
            expires = int(now + ttl)
            path = f"{_DOWNLOAD_PREFIX}{run.id}/{body.filename}"
            url = f"{base_url}{path}?expires={expires}&signature={self._sign(path, expires)}"
            file: dict[str, Any] = {
                "content_type": "zip" if run.compress else "csv",
                "download_url": {"expires_at": rfc3339_nanos(now + ttl), "url": url},
                "size": str(body.size),
            }
            if schema:
                file["schema"] = [
                    {"name": c.name, "type": _SCHEMA_TYPES.get(c.kind, "varchar")}
                    for c in run.table.columns
                ]
            result = {"file": file, "type": "file"}
        return {
            "created": rfc3339_nanos(run.created_at),
            "id": run.id,
            "livemode": False,
            "object": "v2.reporting.report_run",
            "report": run.report.id,
            "report_name": run.report.name,
            "report_parameters": run.parameters,
            "result": result,
            "result_options": {"compress_file": run.compress},
            "status": status,
            "status_details": details,
        }

    def create_run(self, req: Request, key: str) -> Response:
        _refuse_unknown_query(req, ())
        return self.idempotency.create(
            req,
            key + "|" + (req.header("Stripe-Context") or ""),
            hashlib.sha256(req.body).hexdigest(),
            lambda: self._create(req, key),
        )

    def _create(self, req: Request, key: str) -> Response:
        try:
            body = json.loads(req.body or b"null")
        except ValueError:
            raise _invalid("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.")
        unknown = set(body) - {"report", "report_parameters", "result_options"}
        if unknown:
            raise _invalid(f"Unknown field(s): {', '.join(sorted(unknown))}.")
        report_id = body.get("report")
        if not isinstance(report_id, str) or not report_id:
            raise _invalid("report: this field is required.")
        report = self.reports.get(report_id)
        if report is None:
            raise _invalid(f"report: no such report '{report_id}'.")
        raw = body.get("report_parameters")
        if not isinstance(raw, dict):
            raise _invalid("report_parameters: this field is required and must be a map.")
        options = body.get("result_options") or {}
        compress = options.get("compress_file", False) if isinstance(options, dict) else None
        if not isinstance(compress, bool) or (
            isinstance(options, dict) and set(options) - {"compress_file"}
        ):
            raise _invalid("result_options.compress_file: must be a boolean.")
        parameters = self._validate(report, raw)
        context = req.header("Stripe-Context")
        config = self.state.config
        now = self.state.now()
        with self._lock:
            active = [r for r in self.running.get(key, []) if now - r.created_at < r.duration]
            self.running[key] = active
            if len(active) >= config.v2_concurrency_limit:
                raise v2_error(
                    429,
                    "You have reached the maximum number of concurrently running reports "
                    f"({config.v2_concurrency_limit}). Wait for existing reports to complete "
                    "before retrying the request.",
                    code="report_run_rate_limit_exceeded",
                    type_="rate_limit",
                )
            run = V2Run(
                id=self.state.new_id("reprun_test_"),
                key=key,
                context=context,
                report=report,
                parameters=parameters,
                compress=compress,
                created_at=now,
                duration=config.run_seconds,
                failure=None,
                rows=config.result_rows,
                target_bytes=config.result_bytes,
                seed=run_seed(config.seed, PROVIDER, report.id, parameters, context),
            )
            if req.fault("fail_run") is not None:
                run.failure = (
                    "internal_error",
                    "An internal error occurred while generating the report.",
                )
            self.runs[run.id] = run
            active.append(run)
        too_big = config.result_bytes is not None and config.result_bytes > config.v2_max_file_bytes
        if not compress and too_big:
            run.failure = (
                "file_size_above_limit",
                "The file generated by this request exceeds the 5 GB limit.",
            )
        self.state.count_run(PROVIDER)
        self.state.when_finished(run.created_at + run.duration, lambda: self._event(run))
        return json_response(200, self._run_json(req.base_url, run))

    def _event(self, run: V2Run) -> dict[str, Any] | None:
        """The thin `v2.reporting.report_run.*` event for a finished run: its id only."""
        now = self.state.now()
        status = self._status(run, now)
        if status == "running":
            return None
        return v2_thin_event(
            f"v2.reporting.report_run.{status}",
            {
                "id": run.id,
                "type": "v2.reporting.report_run",
                "url": f"/v2/reporting/report_runs/{run.id}",
            },
            run.context,
            rfc3339_nanos(now),
        )

    def _validate(self, report: V2Report, raw: dict[str, Any]) -> dict[str, Any]:
        schema = self._parameter_schema(report)
        out: dict[str, Any] = {}
        for name, value in raw.items():
            spec = schema.get(name)
            if spec is None:
                raise _invalid(
                    f"report_parameters.{name}: unknown parameter for report {report.id}."
                )
            if isinstance(value, dict) and len(value) == 1:
                ((wrapper, inner),) = value.items()
                if wrapper.endswith("_value"):
                    value = inner
            kind = spec["type"]
            if kind == "timestamp":
                if not isinstance(value, str):
                    raise _invalid(f"report_parameters.{name}: must be an RFC 3339 timestamp.")
                try:
                    moment = parse_rfc3339(value)
                except ValueError:
                    raise _invalid(
                        f"report_parameters.{name}: must be an RFC 3339 timestamp."
                    ) from None
                details = spec["timestamp_details"]
                if not parse_rfc3339(details["min"]) <= moment <= parse_rfc3339(details["max"]):
                    raise _invalid(
                        f"report_parameters.{name}: must be between {details['min']} and "
                        f"{details['max']}."
                    )
            elif kind == "array":
                allowed = spec["array_details"]["enum_details"]["allowed_values"]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise _invalid(f"report_parameters.{name}: must be an array of strings.")
                bad = [v for v in value if v not in allowed]
                if bad or not value:
                    raise _invalid(
                        f"report_parameters.{name}: invalid value(s) {bad}; allowed values "
                        f"are {allowed}."
                    )
            elif kind == "enum":
                allowed = spec["enum_details"]["allowed_values"]
                if value not in allowed:
                    raise _invalid(f"report_parameters.{name}: {value!r} is not one of {allowed}.")
            elif not isinstance(value, str) or not value:
                raise _invalid(f"report_parameters.{name}: must be a non-empty string.")
            out[name] = value
        for name, spec in schema.items():
            if spec["required"] and name not in out:
                raise _invalid(f"report_parameters.{name}: this parameter is required.")
        if parse_rfc3339(out["interval_end"]) <= parse_rfc3339(out["interval_start"]):
            raise _invalid("report_parameters.interval_end: must be after interval_start.")
        return out

    def get_run(self, req: Request, key: str) -> Response:
        run = self.runs.get(req.params["id"])
        if run is None or run.context != req.header("Stripe-Context"):
            raise v2_error(404, f"No such report run: '{req.params['id']}'", code="not_found")
        include = _refuse_unknown_query(req, ("include",))
        return json_response(
            200, self._run_json(req.base_url, run, schema="result.file.schema" in include)
        )

    # -- pre-signed downloads (no key) ------------------------------------------------------
    def download(self, req: Request) -> Response:
        run = self.runs.get(req.params["run"])
        path = req.path
        expires_raw, signature = req.query("expires"), req.query("signature")
        if run is None or expires_raw is None or signature is None:
            raise _s3_error(403, "AccessDenied", "Access Denied")
        try:
            expires = int(expires_raw)
        except ValueError:
            raise _s3_error(403, "AccessDenied", "Access Denied") from None
        if not hmac.compare_digest(signature, self._sign(path, expires)):
            raise _s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if expires <= self.state.now() or req.fault("expired_url") is not None:
            raise _s3_error(403, "AccessDenied", "Request has expired")
        if self._status(run, self.state.now()) != "succeeded":
            raise _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        body = run.file
        return file_response(
            req, body, content_type="application/zip" if run.compress else "text/csv"
        )


_ARRAY_KEY = re.compile(r"(\w+)(?:\[(\d*)\])?")


def _refuse_unknown_query(req: Request, arrays: tuple[str, ...]) -> list[str]:
    """The values of the array parameters the operation takes, in any of the forms Stripe
    reads (`include[0]=`, `include[]=`, and for now the plain `include=`); any other query
    parameter is refused with `parameter_unknown`, as Stripe does."""
    values: list[str] = []
    for name, value in req.query_pairs:
        found = _ARRAY_KEY.fullmatch(name)
        if found is None or found.group(1) not in arrays:
            raise v2_error(400, f"Received unknown parameter: {name}", code="parameter_unknown")
        values.append(value)
    return values


def _invalid(message: str) -> HttpError:
    return v2_error(400, message, code="invalid_fields")


def _s3_error(status: int, code: str, message: str) -> HttpError:
    """Pre-signed URLs are served by a storage host, which answers in XML, not Stripe JSON."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return HttpError(status, body, [("Content-Type", "application/xml")])


def presigned_error(status: int, message: str) -> HttpError:
    code = "SlowDown" if status in (429, 503) else "InternalError"
    raise _s3_error(status, code, message)
