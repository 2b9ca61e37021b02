"""Stripe Reporting v1: report types, report runs, and the result files behind them."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from report_gateway_sandbox.downloads import file_response
from report_gateway_sandbox.idempotency import IdempotencyRule, IdempotentCreates
from report_gateway_sandbox.results import Column, TableFile, run_seed, table_context
from report_gateway_sandbox.state import SandboxState
from report_gateway_sandbox.stripe_auth import require_key, v1_error
from report_gateway_sandbox.webhooks import v1_event
from report_gateway_sandbox.wire import Request, Response, Route, Router, json_response

PROVIDER = "stripe"
#: The account a request acts for when it sends no Stripe-Account.
PLATFORM_ACCOUNT = "acct_sandbox_platform"


@dataclass(frozen=True)
class ReportType:
    id: str
    name: str
    version: int
    columns: tuple[Column, ...]
    default_columns: tuple[str, ...] | None
    updated: int = 1_704_067_200


def _cols(*spec: tuple[str, str] | tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in spec)


_ITEMIZED_BALANCE = _cols(
    ("balance_transaction_id", "index", "txn_"),
    ("created_utc", "utc"),
    ("available_on_utc", "utc"),
    ("currency", "currency"),
    ("gross", "amount"),
    ("fee", "amount"),
    ("net", "amount"),
    ("reporting_category", "category"),
    ("description", "text"),
)
_SUMMARY = _cols(
    ("reporting_category", "category"),
    ("currency", "currency"),
    ("count", "count"),
    ("gross", "amount"),
    ("fee", "amount"),
    ("net", "amount"),
)
_PAYOUTS = _cols(
    ("payout_id", "index", "po_"),
    ("effective_at_utc", "utc"),
    ("currency", "currency"),
    ("gross", "amount"),
    ("fee", "amount"),
    ("net", "amount"),
    ("reporting_category", "category"),
    ("payout_expected_arrival_date", "date"),
    ("payout_status", "status"),
    ("description", "text"),
)

REPORT_TYPES: tuple[ReportType, ...] = (
    ReportType(
        "balance.summary.1",
        "Balance summary",
        1,
        _cols(
            ("category", "category"),
            ("description", "text"),
            ("net_amount", "amount"),
            ("currency", "currency"),
        ),
        None,
    ),
    ReportType(
        "balance_change_from_activity.summary.1",
        "Balance change from activity summary",
        1,
        _SUMMARY,
        ("reporting_category", "currency", "count", "gross", "fee", "net"),
    ),
    ReportType(
        "balance_change_from_activity.itemized.3",
        "Itemized balance change from activity",
        3,
        _ITEMIZED_BALANCE,
        (
            "balance_transaction_id",
            "created_utc",
            "available_on_utc",
            "currency",
            "gross",
            "fee",
            "net",
            "reporting_category",
            "description",
        ),
    ),
    ReportType(
        "payouts.summary.1",
        "Payouts summary",
        1,
        _SUMMARY,
        ("reporting_category", "currency", "count", "gross", "fee", "net"),
    ),
    ReportType(
        "payouts.itemized.3",
        "Itemized payouts",
        3,
        _PAYOUTS,
        (
            "payout_id",
            "effective_at_utc",
            "currency",
            "gross",
            "fee",
            "net",
            "reporting_category",
            "payout_expected_arrival_date",
            "payout_status",
            "description",
        ),
    ),
    ReportType(
        "payout_reconciliation.summary.1",
        "Payout reconciliation summary",
        1,
        _SUMMARY,
        ("reporting_category", "currency", "count", "gross", "fee", "net"),
    ),
    ReportType(
        "ending_balance_reconciliation.summary.1",
        "Ending balance reconciliation summary",
        1,
        _SUMMARY,
        ("reporting_category", "currency", "count", "gross", "fee", "net"),
    ),
    ReportType(
        "connected_account_balance_change_from_activity.itemized.3",
        "Connected account itemized balance change from activity",
        3,
        (*_ITEMIZED_BALANCE, Column("connected_account", "text")),
        (
            "balance_transaction_id",
            "created_utc",
            "currency",
            "gross",
            "fee",
            "net",
            "reporting_category",
            "connected_account",
        ),
    ),
)
_PARAMETER_NAMES = frozenset(
    {
        "columns",
        "connected_account",
        "currency",
        "interval_end",
        "interval_start",
        "payout",
        "reporting_category",
        "timezone",
    }
)


@dataclass
class V1Run:
    id: str
    account: str
    report_type: ReportType
    parameters: dict[str, Any]
    created_at: float
    duration: float
    fails: bool
    file_id: str
    rows: int
    target_bytes: int | None
    seed: int

    @functools.cached_property
    def table(self) -> TableFile:
        names = self.parameters.get("columns") or self.report_type.default_columns
        by_name = {c.name: c for c in self.report_type.columns}
        columns = [by_name[n] for n in names] if names else list(self.report_type.columns)
        start = int(self.parameters.get("interval_start", 0))
        end = int(self.parameters.get("interval_end", start + 86400))
        return TableFile(
            columns,
            seed=self.seed,
            context=table_context(self.parameters, start, end),
            rows=self.rows,
            target_bytes=self.target_bytes,
            filename=f"{self.file_id}.csv",
        )


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's deep-object form encoding: `a[b][c]=v`, lists as `a[]=x` or `a[0]=x`."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        parts = [head]
        if rest:
            parts += rest.rstrip("]").split("][")
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt_is_list = not last and (parts[i + 1] == "" or parts[i + 1].isdigit())
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                if part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                else:
                    child: Any = [] if nxt_is_list else {}
                    node.append(child)
                    node = child
                continue
            if last:
                node[part] = value
            else:
                if part not in node or not isinstance(node[part], (dict, list)):
                    node[part] = [] if nxt_is_list else {}
                node = node[part]
    return root


def _fmt_day(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class StripeV1:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self.runs: dict[str, V1Run] = {}
        self.order: list[V1Run] = []
        self.files: dict[str, V1Run] = {}
        # v1 keys live per account, and the parameters are compared as decoded.
        self.idempotency = IdempotentCreates(
            IdempotencyRule(
                echo_key=True,
                conflict=lambda req, message: v1_error(
                    req, 400, message, type_="idempotency_error"
                ),
            )
        )
        self.types = {t.id: t for t in REPORT_TYPES}

    def routes(self) -> list[Route]:
        r = "/v1/reporting"
        router = Router(PROVIDER, self._account)
        router.add("GET", f"{r}/report_types", "list_report_types", self.list_types)
        router.add(
            "GET", f"{r}/report_types/{{report_type}}", "retrieve_report_type", self.get_type
        )
        router.add("POST", f"{r}/report_runs", "create_report_run", self.create_run)
        router.add("GET", f"{r}/report_runs", "list_report_runs", self.list_runs)
        router.add("GET", f"{r}/report_runs/{{report_run}}", "retrieve_report_run", self.get_run)
        router.add("GET", "/v1/files/{file}/contents", "download_file_contents", self.file_contents)
        return router.routes

    # -- the guard -------------------------------------------------------------------------
    def _account(self, req: Request) -> str:
        """The account a request acts for (a valid key, and Stripe-Account if sent)."""
        require_key(req, v2=False)
        account = req.header("Stripe-Account")
        if account is None:
            return PLATFORM_ACCOUNT
        if not account.startswith("acct_") or len(account) < 6:
            raise v1_error(
                req,
                403,
                f"The provided key does not have access to account '{account}' (or that "
                "account does not exist). Application access may have been revoked.",
                type_="invalid_request_error",
                code="account_invalid",
            )
        return account

    def _type_json(self, t: ReportType) -> dict[str, Any]:
        return {
            "id": t.id,
            "object": "reporting.report_type",
            "data_available_end": self.state.data_available_end(),
            "data_available_start": self.state.config.data_available_start,
            "default_columns": list(t.default_columns) if t.default_columns else None,
            "livemode": False,
            "name": t.name,
            "updated": t.updated,
            "version": t.version,
        }

    def _status(self, run: V1Run, now: float) -> str:
        if now - run.created_at < run.duration:
            return "pending"
        return "failed" if run.fails else "succeeded"

    def _run_json(self, base_url: str, run: V1Run) -> dict[str, Any]:
        now = self.state.now()
        status = self._status(run, now)
        finished = int(run.created_at + run.duration)
        result = None
        if status == "succeeded":
            base = base_url
            result = {
                "id": run.file_id,
                "object": "file",
                "created": finished,
                "expires_at": finished + 365 * 86400,
                "filename": f"{run.file_id}.csv",
                "links": {
                    "object": "list",
                    "data": [],
                    "has_more": False,
                    "url": f"/v1/file_links?file={run.file_id}",
                },
                "purpose": "finance_report_run",
                "size": run.table.size,
                "title": f"FinanceReportRun {run.id}",
                "type": "csv",
                "url": f"{base}/v1/files/{run.file_id}/contents",
            }
        return {
            "id": run.id,
            "object": "reporting.report_run",
            "created": int(run.created_at),
            "error": (
                "An internal error occurred while generating the report. Please try again."
                if status == "failed"
                else None
            ),
            "livemode": False,
            "parameters": run.parameters,
            "report_type": run.report_type.id,
            "result": result,
            "status": status,
            "succeeded_at": finished if status == "succeeded" else None,
        }

    # -- report types ----------------------------------------------------------------------
    def list_types(self, req: Request, account: str) -> Response:
        return json_response(
            200,
            {
                "object": "list",
                "data": [self._type_json(t) for t in REPORT_TYPES],
                "has_more": False,
                "url": "/v1/reporting/report_types",
            },
        )

    def get_type(self, req: Request, account: str) -> Response:
        t = self.types.get(req.params["report_type"])
        if t is None:
            raise v1_error(
                req,
                404,
                f"No such report type: '{req.params['report_type']}'",
                code="resource_missing",
                param="report_type",
            )
        return json_response(200, self._type_json(t))

    # -- report runs -----------------------------------------------------------------------
    def create_run(self, req: Request, account: str) -> Response:
        pairs = parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True)
        return self.idempotency.create(
            req,
            account,
            hashlib.sha256(repr(sorted(pairs)).encode()).hexdigest(),
            lambda: self._create(req, account, pairs),
        )

    def _create(self, req: Request, account: str, pairs: list[tuple[str, str]]) -> Response:
        form = parse_form(pairs)
        type_id = form.get("report_type")
        if not isinstance(type_id, str) or not type_id:
            raise v1_error(
                req,
                400,
                "Missing required param: report_type.",
                code="parameter_missing",
                param="report_type",
            )
        report_type = self.types.get(type_id)
        if report_type is None:
            raise v1_error(
                req,
                400,
                f"Invalid report_type: '{type_id}'. No such report type.",
                code="resource_missing",
                param="report_type",
            )
        for name in form:
            if name not in ("report_type", "parameters", "expand"):
                raise v1_error(
                    req,
                    400,
                    f"Received unknown parameter: {name}",
                    param=name,
                    code="parameter_unknown",
                )
        raw = form.get("parameters", {})
        if not isinstance(raw, dict):
            raise v1_error(req, 400, "Invalid object", code="parameter_invalid", param="parameters")
        parameters = self._parameters(req, report_type, raw)
        config = self.state.config
        run_id = self.state.new_id("frr_")
        file_id = self.state.new_id("file_")
        fails = req.fault("fail_run") is not None
        run = V1Run(
            id=run_id,
            account=account,
            report_type=report_type,
            parameters=parameters,
            created_at=self.state.now(),
            duration=config.run_seconds,
            fails=fails,
            file_id=file_id,
            rows=config.result_rows,
            target_bytes=config.result_bytes,
            seed=run_seed(config.seed, PROVIDER, type_id, parameters, account),
        )
        with self._lock:
            self.runs[run_id] = run
            self.files[file_id] = run
            self.order.append(run)
        self.state.count_run(PROVIDER)
        base_url = req.base_url
        self.state.when_finished(run.created_at + run.duration, lambda: self._event(base_url, run))
        return json_response(200, self._run_json(base_url, run))

    def _event(self, base_url: str, run: V1Run) -> dict[str, Any] | None:
        """The `reporting.report_run.*` event for a finished run (the run in `data.object`;
        `account` for a run made for a connected account)."""
        payload = self._run_json(base_url, run)
        if payload["status"] == "pending":
            return None
        event = v1_event(f"reporting.report_run.{payload['status']}", payload, self.state.now())
        if run.account != PLATFORM_ACCOUNT:
            event["account"] = run.account
        return event

    def _parameters(
        self, req: Request, report_type: ReportType, raw: Mapping[str, Any]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in raw.items():
            param = f"parameters[{name}]"
            if name not in _PARAMETER_NAMES:
                raise v1_error(
                    req,
                    400,
                    f"Received unknown parameter: {param}",
                    param=param,
                    code="parameter_unknown",
                )
            if name in ("interval_start", "interval_end"):
                try:
                    out[name] = int(value)
                except (TypeError, ValueError):
                    raise v1_error(
                        req,
                        400,
                        f"Invalid integer: {value}",
                        param=param,
                        code="parameter_invalid_integer",
                    ) from None
            elif name == "columns":
                values = value if isinstance(value, list) else [value]
                if report_type.default_columns is None:
                    raise v1_error(
                        req,
                        400,
                        f"The report type {report_type.id} does not support the columns parameter.",
                        param=param,
                        code="parameter_invalid",
                    )
                allowed = [c.name for c in report_type.columns]
                for column in values:
                    if column not in allowed:
                        raise v1_error(
                            req,
                            400,
                            f"Invalid column '{column}' for report type {report_type.id}. "
                            f"Valid columns are: {', '.join(allowed)}.",
                            param=param,
                            code="parameter_invalid",
                        )
                out[name] = [str(v) for v in values]
            else:
                out[name] = str(value)
        for name in ("interval_start", "interval_end"):
            if name not in out:
                raise v1_error(
                    req,
                    400,
                    f"Missing required param: parameters[{name}].",
                    param=f"parameters[{name}]",
                    code="parameter_missing",
                )
        start, end = out["interval_start"], out["interval_end"]
        if end <= start:
            raise v1_error(
                req,
                400,
                "parameters[interval_end] must be after parameters[interval_start].",
                param="parameters[interval_end]",
                code="parameter_invalid",
            )
        first = self.state.config.data_available_start
        last = self.state.data_available_end()
        if start < first:
            raise v1_error(
                req,
                400,
                f"Data for the report type {report_type.id} is only available starting at "
                f"{_fmt_day(first)} ({first}); you requested interval_start = "
                f"{_fmt_day(start)} ({start}).",
                param="parameters[interval_start]",
            )
        if end > last:
            raise v1_error(
                req,
                400,
                f"Data for the report type {report_type.id} is only available through "
                f"{_fmt_day(last)} ({last}); you requested interval_end = "
                f"{_fmt_day(end)} ({end}).",
                param="parameters[interval_end]",
            )
        return dict(sorted(out.items()))

    def get_run(self, req: Request, account: str) -> Response:
        run = self.runs.get(req.params["report_run"])
        if run is None or run.account != account:
            raise v1_error(
                req,
                404,
                f"No such report run: '{req.params['report_run']}'",
                code="resource_missing",
                param="id",
            )
        return json_response(200, self._run_json(req.base_url, run))

    def list_runs(self, req: Request, account: str) -> Response:
        query = parse_form(req.query_pairs)
        try:
            limit = int(query.get("limit", 10))
        except (TypeError, ValueError):
            raise v1_error(
                req, 400, "Invalid integer: limit", param="limit", code="parameter_invalid_integer"
            ) from None
        if not 1 <= limit <= 100:
            raise v1_error(
                req,
                400,
                "This value must be greater than or equal to 1 and less than or equal to 100.",
                param="limit",
                code="parameter_invalid_integer",
            )
        bounds = _created_bounds(req, query.get("created"))
        with self._lock:
            runs = [r for r in reversed(self.order) if r.account == account]
        runs = [r for r in runs if all(test(int(r.created_at)) for test in bounds)]
        after, before = query.get("starting_after"), query.get("ending_before")
        ids = [r.id for r in runs]
        if isinstance(after, str) and after:
            if after not in self.runs:
                raise v1_error(
                    req,
                    404,
                    f"No such report run: '{after}'",
                    param="starting_after",
                    code="resource_missing",
                )
            pos = ids.index(after) + 1 if after in ids else len(ids)
            page = runs[pos : pos + limit]
            more = pos + limit < len(runs)
        elif isinstance(before, str) and before:
            if before not in self.runs:
                raise v1_error(
                    req,
                    404,
                    f"No such report run: '{before}'",
                    param="ending_before",
                    code="resource_missing",
                )
            pos = ids.index(before) if before in ids else 0
            page = runs[max(0, pos - limit) : pos]
            more = pos - limit > 0
        else:
            page = runs[:limit]
            more = limit < len(runs)
        return json_response(
            200,
            {
                "object": "list",
                "data": [self._run_json(req.base_url, r) for r in page],
                "has_more": more,
                "url": "/v1/reporting/report_runs",
            },
        )

    # -- files -----------------------------------------------------------------------------
    def file_contents(self, req: Request, account: str) -> Response:
        run = self.files.get(req.params["file"])
        if (
            run is None
            or run.account != account
            or self._status(run, self.state.now()) != "succeeded"
        ):
            raise v1_error(
                req,
                404,
                f"No such file upload: '{req.params['file']}'",
                code="resource_missing",
                param="file",
            )
        return file_response(req, run.table, content_type="text/csv")


def _created_bounds(req: Request, created: Any) -> list[Any]:
    if created is None:
        return []
    tests: list[Any] = []
    try:
        if isinstance(created, str):
            value = int(created)
            tests.append(lambda c: c == value)
        elif isinstance(created, dict):
            ops = {
                "gt": lambda a, b: a > b,
                "gte": lambda a, b: a >= b,
                "lt": lambda a, b: a < b,
                "lte": lambda a, b: a <= b,
            }
            for op, raw in created.items():
                if op not in ops:
                    raise v1_error(
                        req,
                        400,
                        f"Received unknown parameter: created[{op}]",
                        param=f"created[{op}]",
                        code="parameter_unknown",
                    )
                bound = int(raw)
                fn = ops[op]
                tests.append(lambda c, fn=fn, bound=bound: fn(c, bound))
        else:
            raise ValueError
    except (TypeError, ValueError):
        raise v1_error(
            req,
            400,
            "Invalid timestamp: created",
            param="created",
            code="parameter_invalid_integer",
        ) from None
    return tests
