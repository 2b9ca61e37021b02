"""OAuth on Zuora's REST hosts against the sandbox: which pair picks which endpoint family,
the token's life (fetched once, shared, renewed once after a 401), entities, the idempotent
create, filters in Zuora's documented shape, and secrets kept out of every text."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from report_gateway import (
    ConfigurationError,
    CredentialsError,
    Gateway,
    GatewayError,
    ReportRun,
    RunStatus,
    Scope,
    ScopeError,
)
from report_gateway_sandbox import (
    ZUORA_ACCESS_KEY_ID,
    ZUORA_CLIENT_ID,
    ZUORA_CLIENT_SECRET,
    ZUORA_ENTITIES,
    ZUORA_REST_PREFIX,
    ZUORA_SECRET_ACCESS_KEY,
    FaultRule,
    Sandbox,
)
from report_gateway_zuora.oauth import TOKENS, OAuthClientCredentials
from reporting_runtime.errors import DeadlineExceededError

CUSTOMER_REPORT = "ff8080816293d35b0162bcb3e7780a75"  # Summary
INVOICE_DETAIL = "ff8080816293d35b0162bcb3e7780a76"  # Detail
ENTITY_ID = {name: eid for eid, name in ZUORA_ENTITIES.items()}
RUN_PATH = f"{ZUORA_REST_PREFIX}/reports/*/reportrun"


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    """Each test starts with no cached token (the cache is process-wide on purpose)."""
    TOKENS.clear()
    yield
    TOKENS.clear()


@pytest.fixture
def oauth_settings(sandbox: Sandbox) -> dict[str, Any]:
    """The sandbox's OAuth client; base_url is the bare host (the prefix is added)."""
    return {
        "client_id": ZUORA_CLIENT_ID,
        "client_secret": ZUORA_CLIENT_SECRET,
        "base_url": sandbox.url,
    }


@pytest.fixture
def ogw(make_gateway: Callable[..., Gateway], oauth_settings: dict[str, Any]) -> Gateway:
    return make_gateway(oauth_settings)


def tokens_issued(sandbox: Sandbox) -> int:
    issued: int = sandbox.stats()["tokens_issued"]["zuora"]
    return issued


def wait(gw: Gateway, run: ReportRun) -> ReportRun:
    return gw.wait(run, timeout=30, poll_interval=0.05, max_interval=0.1)


def header(entry: dict[str, Any], name: str) -> str | None:
    found = {k.lower(): v for k, v in entry["headers"].items()}
    value = found.get(name.lower())
    return None if value is None else str(value)


def test_oauth_runs_end_to_end_on_the_rest_paths_with_one_token(
    ogw: Gateway, sandbox: Sandbox, counts: Any, tmp_path: Path
) -> None:
    (template,) = ogw.search("zuora", "Customer report")
    done = wait(ogw, ogw.start("zuora", template.id, {"viewType": "Summary"}))
    assert done.status is RunStatus.SUCCEEDED
    assert ogw.last_completed("zuora", template.id).id == done.id
    rows = list(ogw.rows(done))
    assert len(rows) == 40
    ogw.download(done, tmp_path / "out.csv")

    log = [e for e in sandbox.stats()["request_log"] if e["provider"] == "zuora"]
    api = [e for e in log if e["path"] != "/oauth/token"]
    assert len(api) >= 5
    assert all(e["path"].startswith(ZUORA_REST_PREFIX + "/") for e in api)
    assert all((header(e, "Authorization") or "").startswith("Bearer ") for e in api)
    assert all(header(e, "apiAccessKeyId") is None for e in log)
    (token_call,) = [e for e in log if e["path"] == "/oauth/token"]
    assert token_call["path"] == "/oauth/token"
    assert header(token_call, "Authorization") is None
    assert tokens_issued(sandbox) == 1
    assert counts.runs_created == 1


def test_the_token_is_shared_by_gateways_with_the_same_client(
    make_gateway: Callable[..., Gateway], oauth_settings: dict[str, Any], sandbox: Sandbox
) -> None:
    for _ in range(3):
        make_gateway(oauth_settings).search("zuora", "report")
    assert tokens_issued(sandbox) == 1


def test_one_refresh_after_the_token_expires(ogw: Gateway, sandbox: Sandbox) -> None:
    ogw.search("zuora", "Customer report")
    assert sandbox.app.expire_tokens() == 1
    run = ogw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"})
    assert ogw.get("zuora", run.id).id == run.id
    assert tokens_issued(sandbox) == 2
    refused = [
        e for e in sandbox.stats()["request_log"] if e["provider"] == "zuora" and e["status"] == 401
    ]
    assert len(refused) == 1  # the expired token once, then the fresh one


def test_a_token_refused_twice_is_an_authentication_error(ogw: Gateway, sandbox: Sandbox) -> None:
    sandbox.configure(zuora_token_seconds=0)  # every token is born expired
    with pytest.raises(GatewayError) as caught:
        ogw.search("zuora", "Customer report")
    assert caught.value.status == 401  # type: ignore[attr-defined]
    assert tokens_issued(sandbox) == 2  # the first, and exactly one renewal


def test_entity_id_is_sent_as_zuora_entity_ids(
    make_gateway: Callable[..., Gateway], oauth_settings: dict[str, Any], sandbox: Sandbox
) -> None:
    entity = ENTITY_ID["EuropeanBU"]
    gw = make_gateway({**oauth_settings, "entity_id": entity})
    run = gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"})
    assert gw.get("zuora", run.id).id == run.id
    api = [
        e
        for e in sandbox.stats()["request_log"]
        if e["provider"] == "zuora" and e["path"] != "/oauth/token"
    ]
    assert api
    assert all(header(e, "Zuora-Entity-Ids") == entity for e in api)
    assert all(header(e, "entityId") is None for e in api)


def test_entity_name_is_refused_under_oauth_before_any_request(
    make_gateway: Callable[..., Gateway], oauth_settings: dict[str, Any], sandbox: Sandbox
) -> None:
    gw = make_gateway({**oauth_settings, "entity_name": "EuropeanBU"})
    with pytest.raises(ConfigurationError, match="set entity_id instead"):
        gw.search("zuora", "report")
    ok = make_gateway(oauth_settings)
    with pytest.raises(ScopeError, match="use entity_id"):
        ok.start(
            "zuora",
            CUSTOMER_REPORT,
            {"viewType": "Summary"},
            scope=Scope(entity_name="EuropeanBU"),
        )
    assert sandbox.stats()["runs_created"]["zuora"] == 0
    assert sandbox.stats()["requests"].get("run_report", 0) == 0


def test_the_password_pair_still_runs_on_the_zconnect_paths(gw: Gateway, sandbox: Sandbox) -> None:
    done = wait(gw, gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"}))
    assert done.status is RunStatus.SUCCEEDED
    log = [e for e in sandbox.stats()["request_log"] if e["provider"] == "zuora"]
    assert all(e["path"].startswith("/api/rest/v1/") for e in log)
    assert all(header(e, "Authorization") is None for e in log)
    assert all(header(e, "Idempotency-Key") is None for e in log)
    assert tokens_issued(sandbox) == 0


@pytest.mark.parametrize(
    ("settings", "error", "names"),
    [
        (
            {
                "client_id": ZUORA_CLIENT_ID,
                "client_secret": ZUORA_CLIENT_SECRET,
                "api_access_key_id": ZUORA_ACCESS_KEY_ID,
                "api_secret_access_key": ZUORA_SECRET_ACCESS_KEY,
            },
            ConfigurationError,
            ("client_id", "api_access_key_id", "not both"),
        ),
        (
            {"client_id": ZUORA_CLIENT_ID, "api_secret_access_key": ZUORA_SECRET_ACCESS_KEY},
            ConfigurationError,
            ("client_id", "api_secret_access_key"),
        ),
        (
            {"client_id": ZUORA_CLIENT_ID},
            ConfigurationError,
            ("client_secret", "ZUORA_CLIENT_SECRET"),
        ),
        (
            {},
            CredentialsError,
            ("ZUORA_CLIENT_ID", "ZUORA_CLIENT_SECRET", "ZUORA_API_ACCESS_KEY_ID"),
        ),
    ],
)
def test_both_pairs_half_a_pair_or_none_is_a_configuration_error(
    make_gateway: Callable[..., Gateway],
    sandbox: Sandbox,
    settings: dict[str, Any],
    error: type[Exception],
    names: tuple[str, ...],
) -> None:
    gw = make_gateway({**settings, "base_url": sandbox.url})
    with pytest.raises(error) as caught:
        gw.search("zuora", "report")
    assert isinstance(caught.value, ConfigurationError)
    for name in names:
        assert name in str(caught.value)
    assert ZUORA_CLIENT_SECRET not in str(caught.value)
    assert sandbox.stats()["requests_by_provider"].get("zuora") is None


def test_a_lost_create_is_retried_with_the_same_key_and_makes_one_run(
    ogw: Gateway, sandbox: Sandbox, counts: Any
) -> None:
    sandbox.add_fault(FaultRule(kind="drop_connection", path=RUN_PATH, method="POST", count=1))
    run = ogw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"})
    assert wait(ogw, run).status is RunStatus.SUCCEEDED
    posts = counts.logged("run_report")
    assert len(posts) == 2
    keys = {header(e, "Idempotency-Key") for e in posts}
    assert len(keys) == 1
    assert None not in keys
    assert counts.runs_created == 1


def test_filter_shorthand_reaches_the_sandbox_in_zuoras_shape(
    ogw: Gateway, sandbox: Sandbox, transport: Any
) -> None:
    filters = [
        {
            "logicalOperator": "or",
            "filterClauses": [
                {"field": "Account.Currency", "value": "USD", "operator": "="},
                {"field": "Account.Name", "value": "Hockey", "operator": "contains"},
            ],
        }
    ]
    run = ogw.start("zuora", INVOICE_DETAIL, {"viewType": "Detail", "filters": filters})
    kept = sandbox.app.zuora.runs[run.id].filters
    assert kept == [
        {
            "logicalOperator": {"value": "OR", "label": "OPERATOR_OR", "name": "or"},
            "filterClauses": [
                {
                    "field": {"id": "Account.Currency", "name": "Currency"},
                    "value": "USD",
                    "operator": {"name": "=", "value": "="},
                },
                {
                    "field": {"id": "Account.Name", "name": "Name"},
                    "value": "Hockey",
                    "operator": {"name": "contains", "value": "contains"},
                },
            ],
        }
    ]


EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "examples" / "zuora"


def _documented(name: str) -> Any:
    return json.loads((EXAMPLES / f"{name}.json").read_text("utf-8"))["payload"]


def test_documented_filter_objects_reach_the_sandbox_unchanged(
    ogw: Gateway, sandbox: Sandbox
) -> None:
    """docs.zuora.com's Run a report sample (whole field descriptions, "is greater than"
    for ">"), through the plugin and accepted by the sandbox as sent."""
    documented = _documented("run-a-report__run_report--request-filters")
    run = ogw.start("zuora", INVOICE_DETAIL, {"viewType": "Detail", "filters": documented})
    assert sandbox.app.zuora.runs[run.id].filters == documented


@pytest.mark.parametrize("family", ["oauth", "password"])
def test_developer_zuora_sample_runs_on_both_families(
    make_gateway: Callable[..., Gateway],
    oauth_settings: dict[str, Any],
    sandbox_settings: dict[str, Any],
    sandbox: Sandbox,
    family: str,
) -> None:
    """developer.zuora.com's sample: a field with only id and type reaches the sandbox as
    given, its bare "=" as Zuora's operator object; and a UI phrase as shorthand."""
    gw = make_gateway(oauth_settings if family == "oauth" else sandbox_settings)
    sample = _documented("older-api-run-a-report__run_report--request-string-operator")
    sample[0]["filterClauses"].append(
        {"field": "Invoice.Amount", "value": "100", "operator": "is greater than"}
    )
    run = gw.start("zuora", INVOICE_DETAIL, {"viewType": "Detail", "filters": sample})
    kept = sandbox.app.zuora.runs[run.id].filters
    assert kept[0]["filterClauses"] == [
        {
            "field": {"id": "Account.Status", "type": "Text"},
            "value": "Active",
            "operator": {"name": "=", "value": "="},
        },
        {
            "field": {"id": "Invoice.Amount", "name": "Amount"},
            "value": "100",
            "operator": {"name": "is greater than", "value": ">"},
        },
    ]


def test_pivoted_setting_reaches_the_export(
    make_gateway: Callable[..., Gateway], oauth_settings: dict[str, Any], sandbox: Sandbox
) -> None:
    gw = make_gateway({**oauth_settings, "pivoted": "false"})
    done = wait(gw, gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"}))
    assert list(gw.rows(done))
    (export,) = [e for e in sandbox.stats()["request_log"] if e["operation"] == "export_report_run"]
    assert export["query"] == "pivoted=false"


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://rest.eu.zuora.com", "https://rest.eu.zuora.com/reporting/api/rest/v1"),
        (
            "https://rest.eu.zuora.com/reporting/api/rest/v1/",
            "https://rest.eu.zuora.com/reporting/api/rest/v1",
        ),
    ],
)
def test_oauth_base_url_gets_the_reporting_prefix(
    make_gateway: Callable[..., Gateway], base_url: str, expected: str
) -> None:
    gw = make_gateway({"client_id": "c", "client_secret": "s3cret-s3cret", "base_url": base_url})
    client = gw.driver("zuora").client  # type: ignore[attr-defined]
    assert client.base_url == expected
    assert client.servers["oauth"] == "https://rest.eu.zuora.com"


@pytest.mark.parametrize(
    ("data_center", "api", "family"),
    [
        ("EU Sandbox", "https://rest.sandbox.eu.zuora.com/reporting/api/rest/v1", "oauth"),
        ("EU Sandbox", "https://zconnect.sandbox.eu.zuora.com/api/rest/v1", "password"),
        (None, "https://rest.zuora.com/reporting/api/rest/v1", "oauth"),
        (None, "https://zconnect.zuora.com/api/rest/v1", "password"),
    ],
)
def test_the_pair_picks_the_data_centers_endpoint_family(
    make_gateway: Callable[..., Gateway], data_center: str | None, api: str, family: str
) -> None:
    pair = (
        {"client_id": "c", "client_secret": "s3cret-s3cret"}
        if family == "oauth"
        else {"api_access_key_id": "me", "api_secret_access_key": "pw"}
    )
    settings = {**pair, **({"data_center": data_center} if data_center else {})}
    client = make_gateway(settings).driver("zuora").client  # type: ignore[attr-defined]
    assert client.base_url == api
    assert isinstance(client.auth, OAuthClientCredentials) is (family == "oauth")


def test_oauth_refuses_a_zconnect_base_url(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(
        {
            "client_id": "c",
            "client_secret": "s3cret-s3cret",
            "base_url": "https://zconnect.zuora.com/api/rest/v1",
        }
    )
    with pytest.raises(ConfigurationError, match="zconnect endpoint"):
        gw.driver("zuora")


def test_no_token_or_client_secret_in_logs_errors_or_reprs(
    make_gateway: Callable[..., Gateway],
    oauth_settings: dict[str, Any],
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    gw = make_gateway(oauth_settings)
    run = gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"})
    sandbox.app.expire_tokens()
    wait(gw, run)
    driver: Any = gw.driver("zuora")
    auth = driver.client.auth
    token = auth.token()
    assert token in auth.secret_values()
    assert ZUORA_CLIENT_SECRET in auth.secret_values()
    assert token in gw.held_secrets()

    # The sandbox echoes nothing, so make it: a wrong secret refused by the token endpoint.
    TOKENS.clear()
    bad_secret = "wrong-client-secret-value"
    bad = make_gateway({**oauth_settings, "client_secret": bad_secret})
    with pytest.raises(GatewayError) as caught:
        bad.search("zuora", "report")

    texts = [
        caplog.text,
        repr(gw),
        repr(driver),
        repr(auth),
        repr(driver.client),
        str(caught.value),
        repr(caught.value),
        repr(gw.settings("zuora")),
    ]
    for text in texts:
        assert token not in text
        assert ZUORA_CLIENT_SECRET not in text
        assert bad_secret not in text


class SilentTokenEndpoint:
    """A raw socket where the token endpoint should be: it accepts connections and reads the
    request, then answers nothing (``trickle``: a header byte every 0.2 s, never finishing),
    until the test is over."""

    def __init__(self, *, trickle: bool) -> None:
        self.trickle = trickle
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        held: list[socket.socket] = []
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                for conn in held:
                    self._drip(conn)
                continue
            self.connections += 1
            held.append(conn)
        for conn in held:
            conn.close()
        self._sock.close()

    def _drip(self, conn: socket.socket) -> None:
        if self.trickle:
            with contextlib.suppress(OSError):
                conn.sendall(b"H")

    def __enter__(self) -> SilentTokenEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def _ends_within(seconds: float, call: Callable[[], Any]) -> tuple[bool, BaseException | None]:
    """Run ``call`` on a daemon thread: whether it ended in time, and what it raised (a call
    that ignores its deadline is left behind rather than holding the test)."""
    raised: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            raised.append(None)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return (not thread.is_alive(), raised[0] if raised else None)


@pytest.mark.parametrize("trickle", [False, True], ids=["never-answers", "trickles"])
def test_a_token_endpoint_that_never_answers_cannot_hold_a_wait_past_its_timeout(
    make_gateway: Callable[..., Gateway], trickle: bool
) -> None:
    """The token is fetched inside the poll: the wait's deadline bounds that fetch too."""
    with SilentTokenEndpoint(trickle=trickle) as endpoint:
        gw = make_gateway(
            {
                "client_id": ZUORA_CLIENT_ID,
                "client_secret": "s3cret-s3cret",
                "base_url": endpoint.url,
            }
        )
        run = ReportRun(
            provider="zuora",
            id="2c92c0f96b1e6c2b016b2a29e8a96f5e",
            report_id=CUSTOMER_REPORT,
            status=RunStatus.RUNNING,
            raw_status="STARTED",
        )
        ended, raised = _ends_within(2.0 + 1.0, lambda: gw.wait(run, timeout=2.0))
        assert endpoint.connections >= 1  # the wait did reach the token endpoint
    assert ended, "the wait outlived its timeout while the token endpoint stayed silent"
    assert isinstance(raised, GatewayError)
    assert "s3cret-s3cret" not in str(raised)


def test_a_token_fetch_without_a_deadline_still_ends(transport: Any) -> None:
    """No caller deadline (a bare client call): the fetch's own bound ends a trickle, which
    would reset every read timeout."""
    policy = OAuthClientCredentials(ZUORA_CLIENT_ID, "s3cret-s3cret", token_timeout=1.0)
    with SilentTokenEndpoint(trickle=True) as endpoint:
        policy.bind(endpoint.url, transport=transport)
        ended, raised = _ends_within(1.0 + 1.0, policy.token)
    assert ended
    assert isinstance(raised, DeadlineExceededError)
    assert "s3cret-s3cret" not in str(raised)
