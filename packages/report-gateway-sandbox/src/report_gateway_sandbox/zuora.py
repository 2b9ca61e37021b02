"""Zuora Reporting API (zconnect paths under /api/rest/v1): search, run, status, data pages,
UTF-16 exports and cancel, with Zuora's envelope, error shapes and multi-entity headers.

Report data paging follows the docs' reading that row 0 is the header row: `offset=1` is
the first data row, and `total` counts the header row too (the export's line count), so
`for offset in range(1, total, pageSize)` reads every data row.
"""

from __future__ import annotations

import functools
import hmac
import json
import threading
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from report_gateway_sandbox.downloads import file_response
from report_gateway_sandbox.results import Column, TableFile, ValueContext, run_seed
from report_gateway_sandbox.state import SandboxState, zuora_time
from report_gateway_sandbox.wire import HttpError, Request, Response, Route, Router, json_response

PROVIDER = "zuora"
PREFIX = "/api/rest/v1"
JSON_TYPE = "application/json;charset=UTF-8"
USAGE_ERROR = "ZAN-USAGE-REST-ERROR"
MAX_SEARCH = 50
MAX_PAGE_SIZE = 10_000

ENTITIES: dict[str, str] = {
    "8ad09be48db5aba7018db604776d4854": "Global",
    "8ad09be48db5aba7018db604776d4855": "EuropeanBU",
    "8ad09be48db5aba7018db604776d4856": "AmericasBU",
}
HOME_ENTITY = "8ad09be48db5aba7018db604776d4854"
_CREATOR_ID = "2c92c0f956bc8fcb0156f8eee04b4d54"


@dataclass(frozen=True)
class ZuoraColumn:
    key: str  # report data key, e.g. "Invoice.Amount"
    label: str  # export header, e.g. "Invoice: Amount"
    kind: str
    prefix: str = ""


@dataclass(frozen=True)
class ZuoraReport:
    id: str
    name: str
    number: str
    report_type: str  # "Summary" or "Detail"
    datasource: str
    columns: tuple[ZuoraColumn, ...]

    def definition(self) -> str:
        return json.dumps(
            {
                "reportType": self.report_type,
                "dataSource": self.datasource,
                "columns": [c.key for c in self.columns],
            },
            separators=(",", ":"),
        )


REPORTS: tuple[ZuoraReport, ...] = (
    ZuoraReport(
        "ff8080816293d35b0162bcb3e7780a75",
        "Customer report",
        "REP0000007",
        "Summary",
        "Account",
        (
            ZuoraColumn("Account.Currency", "Account: Currency", "currency"),
            ZuoraColumn("Account.AccountNumber", "Account: Account Number", "index", "A"),
            ZuoraColumn("Sum of Account.Balance", "Sum of Account: Account Balance", "amount"),
        ),
    ),
    ZuoraReport(
        "ff8080816293d35b0162bcb3e7780a76",
        "Invoice detail",
        "REP0000008",
        "Detail",
        "Invoice",
        (
            ZuoraColumn("Invoice.InvoiceNumber", "Invoice: Invoice Number", "index", "INV"),
            ZuoraColumn("Invoice.InvoiceDate", "Invoice: Invoice Date", "date"),
            ZuoraColumn("Account.Name", "Account: Name", "name"),
            ZuoraColumn("Account.Currency", "Account: Currency", "currency"),
            ZuoraColumn("Invoice.Amount", "Invoice: Amount", "amount"),
            ZuoraColumn("Invoice.Balance", "Invoice: Balance", "amount"),
        ),
    ),
    ZuoraReport(
        "ff8080816293d35b0162bcb3e7780a77",
        "Payment detail",
        "REP0000009",
        "Detail",
        "Payment",
        (
            ZuoraColumn("Payment.PaymentNumber", "Payment: Payment Number", "index", "P-"),
            ZuoraColumn("Payment.EffectiveDate", "Payment: Effective Date", "date"),
            ZuoraColumn("Account.Name", "Account: Name", "name"),
            ZuoraColumn("Payment.Amount", "Payment: Amount", "amount"),
            ZuoraColumn("Account.Currency", "Account: Currency", "currency"),
        ),
    ),
    ZuoraReport(
        "ff8080816293d35b0162bcb3e7780a78",
        "Revenue summary by customer",
        "REP0000010",
        "Summary",
        "RevenueSchedule",
        (
            ZuoraColumn("Account.AccountNumber", "Account: Account Number", "index", "A"),
            ZuoraColumn("Account.Name", "Account: Name", "name"),
            ZuoraColumn(
                "Sum of RevenueSchedule.Amount", "Sum of Revenue Schedule: Amount", "amount"
            ),
        ),
    ),
)
_REPORTS_CREATED = 1_523_584_330  # 2018-04-13T01:52:10Z, as in Zuora's example


@dataclass
class ZuoraRun:
    id: str
    report: ZuoraReport
    entity: str
    user: str
    filters: Any
    created_at: float
    duration: float
    fails: bool
    rows: int
    target_bytes: int | None
    seed: int
    cancelled_at: float | None = None

    @functools.cached_property
    def table(self) -> TableFile:
        context = ValueContext(
            interval_start=1_704_067_200, interval_end=1_735_689_600, currency=None, display=True
        )
        return TableFile(
            [Column(c.label, c.kind, c.prefix) for c in self.report.columns],
            seed=self.seed,
            context=context,
            rows=self.rows,
            target_bytes=self.target_bytes,
            delimiter="\t",
            utf16=True,
            filename=f"{self.report.name.replace(' ', '_')}_{self.id}.csv",
            content_type="text/csv;charset=utf-16",
        )

    def status(self, now: float) -> tuple[str, float]:
        """The status and when it was entered (for updatedOn)."""
        if self.cancelled_at is not None:
            return "CANCELLED", self.cancelled_at
        elapsed = now - self.created_at
        d = self.duration
        if elapsed >= d:
            return ("ERROR" if self.fails else "COMPLETED"), self.created_at + d
        if elapsed >= 0.5 * d:
            return "PROCESSINGDATA", self.created_at + 0.5 * d
        if elapsed >= 0.2 * d:
            return "QUERYDATA", self.created_at + 0.2 * d
        return "STARTED", self.created_at


def enveloped_error(
    state: SandboxState, status: int, message: str, code: str = USAGE_ERROR
) -> HttpError:
    """The common failure shape: `response` is a JSON document inside a string."""
    inner = json.dumps({"errorId": state.new_hex(), "message": message, "errorCode": code})
    return HttpError.json(
        status,
        {"success": False, "response": inner, "links": None},
        content_type=JSON_TYPE,
        indent=None,
    )


def flat_error(status: int, message: str, code: str = USAGE_ERROR) -> HttpError:
    return HttpError.json(
        status, {"message": message, "errorCode": code}, content_type=JSON_TYPE, indent=None
    )


def xml_error(state: SandboxState, status: int, message: str, code: str) -> HttpError:
    """The zanResponse XML body Zuora sends on some 400/500 answers."""
    inner = json.dumps({"errorId": state.new_hex(), "message": message, "errorCode": code})
    body = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<zanResponse success="false"><response '
        'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">'
        f"{escape(inner)}</response></zanResponse>"
    ).encode()
    return HttpError(status, body, [("Content-Type", "application/xml;charset=UTF-8")])


def _ok(payload: Any) -> Response:
    return json_response(
        200, {"success": True, "response": payload}, content_type=JSON_TYPE, indent=None
    )


@dataclass(frozen=True)
class Login:
    """The caller the guard let in: handlers scope runs by user and entity."""

    user: str
    entity: str


class Zuora:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self.runs: dict[str, ZuoraRun] = {}
        self.reports = {r.id: r for r in REPORTS}

    def routes(self) -> list[Route]:
        p = PREFIX
        router = Router(PROVIDER, self._login)
        router.add("GET", f"{p}/reports/search", "search_reports", self.search)
        router.add("POST", f"{p}/reports/{{reportId}}/reportrun", "run_report", self.run_report)
        router.add(
            "GET",
            f"{p}/reports/{{reportId}}/reportruns/latest",
            "get_last_completed_report_run",
            self.latest,
        )
        router.add(
            "GET",
            f"{p}/reportruns/reportdata/{{reportRunId}}",
            "get_report_data",
            self.report_data,
        )
        router.add(
            "GET", f"{p}/reportruns/export/{{reportRunId}}", "export_report_run", self.export
        )
        router.add("GET", f"{p}/reportruns/{{reportRunId}}", "get_report_run", self.get_run)
        router.add("DELETE", f"{p}/reportruns/{{reportRunId}}", "cancel_report_run", self.cancel)
        return router.routes

    # -- the guard: auth and entity --------------------------------------------------------
    def _login(self, req: Request) -> Login:
        """Who is calling and in which entity; raises the error Zuora sends otherwise."""
        config = self.state.config
        user = req.header("apiAccessKeyId")
        secret = req.header("apiSecretAccessKey")
        if (
            user is None
            or secret is None
            or not hmac.compare_digest(user.encode(), config.zuora_access_key_id.encode())
            or not hmac.compare_digest(secret.encode(), config.zuora_secret_access_key.encode())
        ):
            raise flat_error(401, "Token could not be decrypted.", "loginFailed")
        entity_id = req.header("entityId")
        entity_name = req.header("entityName")
        if entity_id is not None and entity_name is not None:
            raise enveloped_error(
                self.state,
                400,
                "Only one of the entityId and entityName headers can be specified.",
            )
        if entity_id is not None:
            if entity_id not in ENTITIES:
                raise enveloped_error(
                    self.state, 400, f"Entity {entity_id} is not accessible by the user."
                )
            return Login(user, entity_id)
        if entity_name is not None:
            for eid, name in ENTITIES.items():
                if name == entity_name:
                    return Login(user, eid)
            raise enveloped_error(
                self.state, 400, f"Entity {entity_name} is not accessible by the user."
            )
        return Login(user, HOME_ENTITY)

    def _run_for(self, req: Request, entity: str) -> ZuoraRun:
        """The path's run; a run of another entity does not exist here (404)."""
        run = self.runs.get(req.params["reportRunId"])
        if run is None or run.entity != entity:
            raise enveloped_error(
                self.state, 404, f"Report run {req.params['reportRunId']} does not exist."
            )
        return run

    # -- reports ---------------------------------------------------------------------------
    def _report_json(self, r: ZuoraReport) -> dict[str, Any]:
        stamp = zuora_time(_REPORTS_CREATED, millis=False)
        return {
            "createdBy": _CREATOR_ID,
            "updatedBy": _CREATOR_ID,
            "createdOn": stamp,
            "updatedOn": stamp,
            "id": r.id,
            "deleted": False,
            "name": r.name,
            "number": r.number,
            "type": "Common",
            "datasource": r.datasource,
            "dsName": r.datasource,
            "namespace": "BASIC",
            "definition": r.definition(),
            "userId": _CREATOR_ID,
            "creator": "user@example.com",
            "updater": "user@example.com",
            "favorite": False,
            "shared": True,
            "zuora": False,
            "hidden": False,
        }

    def search(self, req: Request, login: Login) -> Response:
        query = req.query("query")
        if query is None or not query.strip():
            raise enveloped_error(self.state, 400, "The query parameter is required.")
        try:
            start = int(req.query("searchStart") or 0)
        except ValueError:
            raise enveloped_error(self.state, 400, "searchStart must be an integer.") from None
        needle = query.strip().lower()
        found = [r for r in REPORTS if needle in r.name.lower()][start : start + MAX_SEARCH]
        return _ok({"reports": [self._report_json(r) for r in found], "count": len(found)})

    # -- runs ------------------------------------------------------------------------------
    def run_report(self, req: Request, login: Login) -> Response:
        report = self.reports.get(req.params["reportId"])
        if report is None:
            raise enveloped_error(
                self.state, 404, f"Report {req.params['reportId']} does not exist."
            )
        view = req.query("viewType")
        if view is None:
            raise enveloped_error(self.state, 400, "The viewType parameter is required.")
        if view not in ("Summary", "Detail"):
            raise enveloped_error(
                self.state, 400, f"Invalid viewType {view}: must be Summary or Detail."
            )
        if view != report.report_type:
            raise enveloped_error(
                self.state,
                400,
                f"The viewType {view} does not match the report, which is a "
                f"{report.report_type} report.",
            )
        filters: Any = None
        if req.body.strip():
            try:
                filters = json.loads(req.body)
            except ValueError:
                raise enveloped_error(
                    self.state, 400, "The request body is not valid JSON."
                ) from None
            if not _valid_filters(filters):
                raise enveloped_error(
                    self.state,
                    400,
                    "The request body must be an array of filter groups with "
                    "logicalOperator and filterClauses.",
                )
        config = self.state.config
        run = ZuoraRun(
            id=self.state.new_hex(),
            report=report,
            entity=login.entity,
            user=login.user,
            filters=filters,
            created_at=self.state.now(),
            duration=config.run_seconds,
            fails=req.fault("fail_run") is not None,
            rows=config.result_rows,
            target_bytes=config.result_bytes,
            seed=run_seed(config.seed, PROVIDER, report.id, view, filters, login.entity),
        )
        with self._lock:
            self.runs[run.id] = run
        self.state.count_run(PROVIDER)
        return _ok({"reportRunId": run.id})

    def _run_json(self, run: ZuoraRun, *, epoch_millis: bool = False) -> dict[str, Any]:
        status, since = run.status(self.state.now())

        def stamp(ts: float) -> Any:
            return int(ts * 1000) if epoch_millis else zuora_time(ts)

        return {
            "reportType": run.report.report_type,
            "id": run.id,
            "reportId": run.report.id,
            "startedOn": stamp(run.created_at),
            "status": status,
            "reportDefinition": run.report.definition(),
            "updatedOn": stamp(since),
        }

    def get_run(self, req: Request, login: Login) -> Response:
        run = self._run_for(req, login.entity)
        return _ok(self._run_json(run))

    def latest(self, req: Request, login: Login) -> Response:
        """Last completed run of this user, in this entity, within 60 days. This answer uses
        epoch milliseconds for its timestamps, the other form Zuora's pages show."""
        user, entity = login.user, login.entity
        report = self.reports.get(req.params["reportId"])
        if report is None:
            raise enveloped_error(
                self.state, 404, f"Report {req.params['reportId']} does not exist."
            )
        now = self.state.now()
        best: ZuoraRun | None = None
        for run in list(self.runs.values()):
            if run.report.id != report.id or run.entity != entity or run.user != user:
                continue
            status, since = run.status(now)
            if status != "COMPLETED" or now - since > 60 * 86400:
                continue
            if best is None or since >= best.status(now)[1]:
                best = run
        if best is None:
            raise enveloped_error(
                self.state,
                200,
                "The current user has not run this report yet or the report run was more "
                "than 60 days ago.",
            )
        return _ok(self._run_json(best, epoch_millis=True))

    def report_data(self, req: Request, login: Login) -> Response:
        run = self._run_for(req, login.entity)
        try:
            offset = int(req.query("offset") or "")
            size = int(req.query("pageSize") or "")
        except ValueError:
            raise enveloped_error(
                self.state, 400, "The offset and pageSize parameters are required integers."
            ) from None
        if offset < 0 or not 1 <= size <= MAX_PAGE_SIZE:
            raise enveloped_error(
                self.state, 400, f"offset must be >= 0 and pageSize between 1 and {MAX_PAGE_SIZE}."
            )
        status, _ = run.status(self.state.now())
        if status != "COMPLETED":
            raise enveloped_error(
                self.state,
                400,
                f"Report run {run.id} is {status}; data is available once it is COMPLETED.",
            )
        table = run.table
        first = max(offset, 1) - 1
        last = min(table.rows, first + size)
        keys = [c.key for c in run.report.columns]
        page = [dict(zip(keys, table.row_values(i))) for i in range(first, last)]
        return _ok({"page": page, "size": len(page), "offset": offset, "total": table.rows + 1})

    def export(self, req: Request, login: Login) -> Response:
        run = self.runs.get(req.params["reportRunId"])
        if run is None or run.entity != login.entity:
            raise flat_error(404, f"Report run {req.params['reportRunId']} does not exist.")
        pivoted = req.query("pivoted")
        if pivoted is not None and pivoted not in ("true", "false"):
            raise flat_error(400, "pivoted must be true or false.")
        status, _ = run.status(self.state.now())
        if status != "COMPLETED":
            raise flat_error(
                400, f"Report run {run.id} is {status}; it can be exported once it is COMPLETED."
            )
        return file_response(req, run.table, content_type="text/csv;charset=utf-16")

    def cancel(self, req: Request, login: Login) -> Response:
        run = self._run_for(req, login.entity)
        now = self.state.now()
        with self._lock:
            status, _ = run.status(now)
            if status in ("COMPLETED", "ERROR", "INVALID"):
                raise enveloped_error(
                    self.state,
                    200,
                    f"The report run {run.id} is {status} and cannot be canceled.",
                )
            if run.cancelled_at is None:
                run.cancelled_at = now
        return _ok("The report run has been canceled")


def _valid_filters(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    for group in value:
        if not isinstance(group, dict) or not isinstance(group.get("filterClauses"), list):
            return False
        for clause in group["filterClauses"]:
            if not isinstance(clause, dict) or "field" not in clause or "operator" not in clause:
                return False
    return True
