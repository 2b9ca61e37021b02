"""Zuora Reporting API: search, run, status, data pages, UTF-16 exports and cancel, with
Zuora's envelope, error shapes and multi-entity headers, on both endpoint families:

- "zconnect" (the deprecated hosts, under /api/rest/v1): the `apiAccessKeyId` /
  `apiSecretAccessKey` pair and `entityId` / `entityName`; no OAuth ("OAuth only works with
  new endpoints"), so a bearer token there is refused;
- "rest" (the REST hosts, under /reporting/api/rest/v1): `Authorization: Bearer` with a
  token from `POST /oauth/token` (client credentials), `Zuora-Entity-Ids`, and an honoured
  `Idempotency-Key` on Run a report. The operation pages document only the bearer token, so
  the username/password pair is refused there.

Both families share one state: a run created on one is read on the other (same tenant, same
user: the sandbox's OAuth client belongs to the sandbox's user).

Report data paging follows the docs' reading that row 0 is the header row: `offset=1` is
the first data row, and `total` counts the header row too (the export's line count), so
`for offset in range(1, total, pageSize)` reads every data row.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from report_gateway_sandbox.downloads import file_response
from report_gateway_sandbox.idempotency import IdempotencyRule, IdempotentCreates
from report_gateway_sandbox.results import Column, TableFile, ValueContext, run_seed
from report_gateway_sandbox.state import SandboxState, zuora_time
from report_gateway_sandbox.wire import HttpError, Request, Response, Route, Router, json_response

PROVIDER = "zuora"
PREFIX = "/api/rest/v1"  # zconnect hosts
REST_PREFIX = "/reporting/api/rest/v1"  # REST hosts
TOKEN_PATH = "/oauth/token"  # noqa: S105  (a path) REST hosts, at the host root
ZCONNECT = "zconnect"
REST = "rest"
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
    family: str = ZCONNECT


@dataclass
class Grant:
    """What a bearer token stands for, until when."""

    user: str
    entities: tuple[str, ...]
    expires_at: float


class Zuora:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self.runs: dict[str, ZuoraRun] = {}
        self.reports = {r.id: r for r in REPORTS}
        self.tokens: dict[str, Grant] = {}
        # Zuora keeps status, headers and body per key and answers a key still in progress
        # with 409, a key reused with another request with 422 (its Idempotent requests
        # guide); only the REST family's Run a report documents the header.
        self.idempotency = IdempotentCreates(
            IdempotencyRule(
                echo_key=False,
                replayed_header=False,
                conflict=lambda req, message: reasons_error(self.state, 422, 90000020, message),
                in_progress=lambda req, message: reasons_error(self.state, 409, 90000050, message),
            )
        )

    def routes(self) -> list[Route]:
        zconnect = Router(PROVIDER, self._login, family=ZCONNECT)
        rest = Router(PROVIDER, self._bearer_login, family=REST)
        self._add_operations(zconnect, PREFIX)
        self._add_operations(rest, REST_PREFIX)
        # The token endpoint takes the client's credentials in its body, no auth header.
        rest.add_open("POST", TOKEN_PATH, "create_oauth_token", self.create_token)
        return zconnect.routes + rest.routes

    def _add_operations(self, router: Router[Login], p: str) -> None:
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

    # -- the guards: auth and entity -------------------------------------------------------
    def _login(self, req: Request) -> Login:
        """zconnect: who is calling and in which entity; raises the error Zuora sends
        otherwise. A bearer token is refused: these hosts take only the pair."""
        config = self.state.config
        user = req.header("apiAccessKeyId")
        secret = req.header("apiSecretAccessKey")
        if (
            _bearer(req) is not None
            or user is None
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

    def _bearer_login(self, req: Request) -> Login:
        """REST hosts: the bearer token's user, in the entity `Zuora-Entity-Ids` names (else
        the home entity, or the token's only one). Refusals come in Zuora's v1 shape."""
        token = _bearer(req)
        if token is None:
            raise reasons_error(
                self.state, 401, 90000011, "this resource is protected, please sign in first"
            )
        with self._lock:
            grant = self.tokens.get(token)
        if grant is None or grant.expires_at <= self.state.now():
            raise reasons_error(self.state, 401, 90000011, "Authentication error")
        raw = req.header("Zuora-Entity-Ids")
        if raw is None:
            home = HOME_ENTITY if HOME_ENTITY in grant.entities else grant.entities[0]
            return Login(grant.user, home, REST)
        entity = _entity_key(raw)
        if entity not in grant.entities:
            raise reasons_error(
                self.state, 400, 90000010, f"Entity {raw} is not accessible by the user."
            )
        return Login(grant.user, entity, REST)

    # -- OAuth -----------------------------------------------------------------------------
    def create_token(self, req: Request) -> Response:
        """Client credentials for a bearer token, as Zuora's Create an OAuth token: a form
        body, the answer `{access_token, token_type, expires_in, scope, jti}`. The page
        documents no error body; refusals come in Zuora's v1 error shape."""
        config = self.state.config
        content_type = (req.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise reasons_error(
                self.state,
                400,
                90000020,
                "The request body must be application/x-www-form-urlencoded.",
            )
        try:
            form = dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise reasons_error(
                self.state, 400, 90000020, "The request body is not UTF-8."
            ) from None
        for name in ("client_id", "client_secret", "grant_type"):
            if not form.get(name):
                raise reasons_error(self.state, 400, 90000022, f"{name} is required.")
        if form["grant_type"] != "client_credentials":
            raise reasons_error(
                self.state,
                400,
                90000020,
                f"Unsupported grant_type '{form['grant_type']}': must be client_credentials.",
            )
        if not (
            hmac.compare_digest(form["client_id"].encode(), config.zuora_client_id.encode())
            and hmac.compare_digest(
                form["client_secret"].encode(), config.zuora_client_secret.encode()
            )
        ):
            raise reasons_error(self.state, 401, 90000011, "Invalid client credentials.")
        entities: tuple[str, ...] = tuple(ENTITIES)
        raw = req.header("Zuora-Entity-Ids")
        if raw is not None:
            entity = _entity_key(raw)
            if entity not in ENTITIES:
                raise reasons_error(
                    self.state, 400, 90000010, f"Entity {raw} is not accessible by the client."
                )
            entities = (entity,)
        lifetime = max(0.0, config.zuora_token_seconds)
        token = secrets.token_hex(16)
        with self._lock:
            self.tokens[token] = Grant(
                config.zuora_access_key_id, entities, self.state.now() + lifetime
            )
        self.state.count_token(PROVIDER)
        scope = " ".join(
            [
                f"user.{_USER_ID}",
                *(f"entity.{_uuid_form(e)}" for e in entities),
                "service.reporting.read",
                "service.reporting.write",
                "tenant.19",
            ]
        )
        return json_response(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": int(lifetime),
                "scope": scope,
                "jti": secrets.token_hex(16),
            },
            [("Cache-Control", "no-store")],
            content_type=JSON_TYPE,
            indent=None,
        )

    def expire_tokens(self) -> int:
        """End every bearer token's life now (a test's way to an expiry without waiting);
        returns how many were alive."""
        now = self.state.now()
        with self._lock:
            alive = [g for g in self.tokens.values() if g.expires_at > now]
            for grant in alive:
                grant.expires_at = now
        return len(alive)

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
        if login.family != REST:
            # The zconnect pages document no Idempotency-Key: a key there is ignored.
            return self._run_report(req, login)
        query = req.environ.get("QUERY_STRING", "")
        return self.idempotency.create(
            req,
            f"{login.user}|{login.entity}",
            hashlib.sha256(f"{req.params['reportId']}?{query}\n".encode() + req.body).hexdigest(),
            lambda: self._run_report(req, login),
        )

    def _run_report(self, req: Request, login: Login) -> Response:
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
            problem = filter_problem(filters, strings=login.family == ZCONNECT)
            if problem is not None:
                raise enveloped_error(self.state, 400, problem)
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


def _bearer(req: Request) -> str | None:
    auth = req.header("Authorization")
    if auth is None:
        return None
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _entity_key(raw: str) -> str:
    """An entity id as the sandbox keys it: Zuora prints ids as 32 hex digits but asks for
    the 36-character UUID form in `Zuora-Entity-Ids`; both are accepted."""
    return raw.strip().replace("-", "").lower()


def _uuid_form(entity: str) -> str:
    e = entity
    return f"{e[:8]}-{e[8:12]}-{e[12:16]}-{e[16:20]}-{e[20:]}"


_USER_ID = "7c4d5433dc234c369a01b9719ecd059f"


def reasons_error(state: SandboxState, status: int, code: int, message: str) -> HttpError:
    """Zuora's v1 API error shape (its Error codes guide): refusals by the REST hosts'
    gateway (token, bearer, entity, idempotency) rather than by the Reporting service.
    Code 900000xx: no resource, category xx (10 access denied, 11 authentication, 20 invalid
    value, 22 missing field, 50 conflict)."""
    body = {
        "success": False,
        "processId": state.new_hex(16).upper(),
        "reasons": [{"code": code, "message": message}],
    }
    return HttpError.json(status, body, content_type=JSON_TYPE, indent=None)


#: Filter comparisons the sandbox knows, each under every spelling it accepts in an
#: operator's `value` or `name` (case-insensitive): the symbol, its short word, and the
#: reporting UI's phrase. Zuora's pages show `{"name": "contains", "value": "contains"}`,
#: `{"name": "is greater than", "value": ">"}` (docs.zuora.com) and the bare `"="`
#: (developer.zuora.com); the other phrases follow the same pattern.
COMPARISONS: dict[str, tuple[str, ...]] = {
    "=": ("=", "eq", "equals", "is equal to"),
    "!=": ("!=", "<>", "ne", "not equals", "does not equal", "is not equal to"),
    ">": (">", "gt", "is greater than"),
    ">=": (">=", "ge", "is greater than or equal to"),
    "<": ("<", "lt", "is less than"),
    "<=": ("<=", "le", "is less than or equal to"),
    "contains": ("contains",),
    "does not contain": ("does not contain", "not contains"),
    "starts with": ("starts with",),
    "ends with": ("ends with",),
    "in": ("in", "is in"),
    "not in": ("not in", "is not in"),
    "is null": ("is null", "is empty"),
    "is not null": ("is not null", "is not empty"),
    "between": ("between", "is between"),
}
_COMPARISON_OF = {spelling: key for key, spellings in COMPARISONS.items() for spelling in spellings}
#: Every spelling an operator's `name` or `value` may take.
FILTER_OPERATORS = frozenset(_COMPARISON_OF)
_LOGICAL = {"and": "OPERATOR_AND", "or": "OPERATOR_OR"}


def filter_problem(value: Any, *, strings: bool) -> str | None:
    """What is wrong with a Run a report body, or None. The shapes of both Zuora pages pass:
    docs.zuora.com's objects (`logicalOperator` `{"value": "OR", "label": "OPERATOR_OR",
    "name": "or"}`, a field `{"name": "Name", "id": "Product.Name", ...}`, an operator
    `{"name": "is greater than", "value": ">"}`) and developer.zuora.com's sample (`{"value":
    "AND"}`, a field `{"id": "Account.Status", "type": "Text"}`, the operator as a bare
    `"="`). A field is known by its `id` (both pages carry it). `strings` (the zconnect
    family, whose older clients send them) also lets `logicalOperator` and `field` be plain
    strings (`"AND"`, `"Account.Currency"`)."""
    if not isinstance(value, list):
        return "The request body must be an array of filter groups."
    for g, group in enumerate(value):
        where = f"filters[{g}]"
        if not isinstance(group, dict) or not isinstance(group.get("filterClauses"), list):
            return f"{where} must be an object with filterClauses, an array."
        if "logicalOperator" in group:
            problem = _logical_problem(group["logicalOperator"], strings)
            if problem is not None:
                return f"{where}.logicalOperator {problem}"
        for c, clause in enumerate(group["filterClauses"]):
            at = f"{where}.filterClauses[{c}]"
            if not isinstance(clause, dict) or "field" not in clause or "operator" not in clause:
                return f"{at} must be an object with field and operator."
            problem = _field_problem(clause["field"], strings)
            if problem is not None:
                return f"{at}.field {problem}"
            problem = _operator_problem(clause["operator"])
            if problem is not None:
                return f"{at}.operator {problem}"
    return None


def _names(value: dict[str, Any], keys: tuple[str, ...]) -> list[str] | None:
    """The object's identifying strings (at least one, all non-empty), or None."""
    found = [value[k] for k in keys if k in value]
    if not found or not all(isinstance(v, str) and v.strip() for v in found):
        return None
    return [str(v) for v in found]


def _logical_problem(value: Any, strings: bool) -> str | None:
    shape = 'an object such as {"value": "OR", "label": "OPERATOR_OR", "name": "or"}'
    if isinstance(value, str) and strings:
        return None if value.strip().lower() in _LOGICAL else f"{value!r} is not AND or OR."
    if not isinstance(value, dict):
        return f"must be {shape}."
    names = _names(value, ("value", "name"))
    if names is None:
        return f"must be {shape}."
    kinds = {n.strip().lower() for n in names}
    if len(kinds) != 1 or not kinds <= set(_LOGICAL):
        return f"{value!r} is not AND or OR."
    label = value.get("label")
    if label is not None and label != _LOGICAL[kinds.pop()]:
        return f"label {label!r} does not match its value."
    return None


_FIELD_SHAPE = 'an object with an id, such as {"id": "Account.Status", "type": "Text"}'


def _field_problem(value: Any, strings: bool) -> str | None:
    if isinstance(value, str) and strings:
        return None if value.strip() else "must not be empty."
    if not isinstance(value, dict):
        return f"must be {_FIELD_SHAPE}."
    field_id = value.get("id")
    if not isinstance(field_id, str) or not field_id.strip():
        return f"must be {_FIELD_SHAPE}."
    for key in ("name", "label", "type", "dataSourceName"):
        if key in value and not isinstance(value[key], str):
            return f"{key} must be a string."
    return None


def _operator_problem(value: Any) -> str | None:
    """An operator is a known comparison: a bare string (developer.zuora.com's `"="`), or an
    object whose `value` (required) and `name` (the UI's phrase, optional) both name it."""
    shape = (
        'a comparison such as "=" or an object such as {"name": "is greater than", "value": ">"}'
    )
    if isinstance(value, str):
        spellings = [value]
    elif isinstance(value, dict):
        present = [value[k] for k in ("value", "name") if k in value]
        if not all(isinstance(v, str) and v.strip() for v in present):
            return f"must be {shape}."
        spellings = [str(v) for v in present]
    else:
        return f"must be {shape}."
    unknown = [n for n in spellings if n.strip().lower() not in _COMPARISON_OF]
    if unknown:
        return f"{unknown[0]!r} is not a known operator."
    if isinstance(value, dict) and "value" not in value:
        return f"must have a value: {shape}."
    if len({_COMPARISON_OF[n.strip().lower()] for n in spellings}) != 1:
        return f"name {value['name']!r} does not match its value {value['value']!r}."
    return None
