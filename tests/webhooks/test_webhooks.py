"""The listener: what it refuses, what it accepts, and the waits it ends without a poll."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import report_gateway_stripe.plugin as stripe_plugin
import stripe
from report_gateway import ConfigurationError, Gateway, RunStatus, Scope, hookimpl
from report_gateway.provider import Option, ProviderSpec, WebhookOutcome, WebhookSpec
from report_gateway.webhooks import SignatureError, WebhookApp, parse_secrets
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox
from report_gateway_stripe.webhooks import sign, verify

from .conftest import OLD_SECRET, SECRET, WEEK, Waiter, run_gets, settings_for, signed

T = TypeVar("T")

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")


@pytest.fixture
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.DEBUG)
    yield
    assert "whsec_" not in caplog.text


def raw_run(sb: Sandbox, path: str) -> dict[str, Any]:
    """The run as the sandbox shows it once finished (these GETs happen before counting)."""
    headers = {"Authorization": f"Bearer {STRIPE_TEST_KEY}", "Stripe-Version": "2025-07-03.preview"}
    while True:
        request = urllib.request.Request(sb.url + path, headers=headers)
        with urllib.request.urlopen(request) as response:
            payload: dict[str, Any] = json.load(response)
        if payload["status"] not in ("pending", "running"):
            return payload
        time.sleep(0.05)


def v1_event(run: dict[str, Any], event_id: str = "evt_1Test", **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": f"reporting.report_run.{run['status']}",
        "data": {"object": run},
        **extra,
    }


def v2_event(run_id: str, kind: str = "succeeded", event_id: str = "evt_test_v2") -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "v2.core.event",
        "type": f"v2.reporting.report_run.{kind}",
        "related_object": {
            "id": run_id,
            "type": "v2.reporting.report_run",
            "url": f"/v2/reporting/report_runs/{run_id}",
        },
        "context": None,
    }


def until(read: Callable[[], T], seconds: float = 20.0) -> T:
    """``read()`` once it is truthy, or its last value after ``seconds``."""
    deadline = time.monotonic() + seconds
    value = read()
    while not value and time.monotonic() < deadline:
        threading.Event().wait(0.05)
        value = read()
    return value


# -- what is refused ---------------------------------------------------------------------


def test_forged_signature_is_refused_and_wakes_nothing(
    gw: Gateway, app: WebhookApp, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    run = gw.start("stripe", "balance.summary.1", WEEK)
    payload = raw_run(sandbox, f"/v1/reporting/report_runs/{run.id}")
    body = json.dumps(v1_event(payload, marker="PAYLOAD-MARKER")).encode()
    forged = f"t={int(time.time())},v1={'ab' * 32}"

    result = app.handle(body, forged)

    assert result.status == 400
    assert gw.events.latest("stripe", run.id) is None
    assert "no signature matches" in caplog.text
    assert "PAYLOAD-MARKER" not in caplog.text


@pytest.mark.parametrize(
    "header",
    [None, "", "v1=abc", "t=notanumber,v1=abc", f"t={int(time.time())}", "t=1,v0=abc"],
)
def test_malformed_signature_headers_are_refused(app: WebhookApp, header: str | None) -> None:
    body = json.dumps({"id": "evt_x", "type": "reporting.report_type.updated"}).encode()
    assert app.handle(body, header).status == 400


def test_wrong_secret_is_refused(gw: Gateway, app: WebhookApp, sandbox: Sandbox) -> None:
    run = gw.start("stripe", "balance.summary.1", WEEK)
    payload = raw_run(sandbox, f"/v1/reporting/report_runs/{run.id}")
    body, header = signed(v1_event(payload), secret="whsec_someone_else")

    assert app.handle(body, header).status == 400
    assert gw.events.latest("stripe", run.id) is None


def test_a_changed_body_under_a_valid_signature_is_refused(app: WebhookApp) -> None:
    body, header = signed({"id": "evt_a", "type": "reporting.report_type.updated"})
    tampered = body.replace(b"evt_a", b"evt_b")
    assert app.handle(tampered, header).status == 400


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_outside_the_tolerance_is_refused(
    gw: Gateway, app: WebhookApp, sandbox: Sandbox, offset: int
) -> None:
    run = gw.start("stripe", "balance.summary.1", WEEK)
    payload = raw_run(sandbox, f"/v1/reporting/report_runs/{run.id}")
    body, header = signed(v1_event(payload), at=time.time() + offset)

    result = app.handle(body, header)
    assert result.status == 400
    # An old delivery is "old" (a replay or a slow queue), a future one "in the future".
    when = "s old" if offset < 0 else "s in the future"
    assert re.search(rf"timestamp is 30[012] {when} \(tolerance 300 s\)", json.dumps(result.body))
    assert gw.events.latest("stripe", run.id) is None


def test_a_redelivered_event_id_is_answered_200_and_not_acted_on(
    gw: Gateway, sandbox: Sandbox
) -> None:
    """Stripe delivers at least once: a re-delivery after a lost 200 gets 2xx (a 4xx would
    be retried for days), but the run is not published or journaled twice."""
    seen: list[str] = []
    app = WebhookApp(gw, on_run=lambda run: seen.append(run.id))
    run = gw.start("stripe", "balance.summary.1", WEEK)
    payload = raw_run(sandbox, f"/v1/reporting/report_runs/{run.id}")
    event = v1_event(payload, event_id="evt_once")

    assert app.handle(*signed(event)).status == 200
    # The same event again, freshly signed (a valid signature does not make it new).
    again = app.handle(*signed(event))

    assert again.status == 200
    assert again.body == {"received": True, "duplicate": "evt_once"}
    assert seen == [run.id]


def test_the_same_delivery_again_within_the_tolerance_is_a_duplicate(
    gw: Gateway, sandbox: Sandbox
) -> None:
    seen: list[str] = []
    app = WebhookApp(gw, on_run=lambda run: seen.append(run.id))
    run = gw.start("stripe", "balance.summary.1", WEEK)
    body, header = signed(v1_event(raw_run(sandbox, f"/v1/reporting/report_runs/{run.id}")))
    assert app.handle(body, header).status == 200
    again = app.handle(body, header)
    assert (again.status, again.body.get("duplicate")) == (200, "evt_1Test")
    assert seen == [run.id]


def test_a_delivery_while_the_first_is_handled_waits_and_is_a_duplicate(
    gw: Gateway, sandbox: Sandbox
) -> None:
    """Stripe sends again when the first attempt is slow: the second waits for the first
    and answers 200 duplicate (never 400), the run handled once."""
    entered, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def slow(run: Any) -> None:
        seen.append(run.id)
        entered.set()
        assert release.wait(30)

    app = WebhookApp(gw, on_run=slow)
    run = gw.start("stripe", "balance.summary.1", WEEK)
    event = v1_event(raw_run(sandbox, f"/v1/reporting/report_runs/{run.id}"), "evt_slow")
    first: list[Any] = []
    worker = threading.Thread(target=lambda: first.append(app.handle(*signed(event))))
    worker.start()
    assert entered.wait(30)
    answers: list[Any] = []
    second = threading.Thread(target=lambda: answers.append(app.handle(*signed(event))))
    second.start()
    release.set()
    second.join(30)
    worker.join(30)
    assert [r.status for r in first + answers] == [200, 200]
    assert answers[0].body["duplicate"] == "evt_slow"
    assert seen == [run.id]


def test_rotation_two_secrets_either_verifies(gw: Gateway, sandbox: Sandbox) -> None:
    app = WebhookApp(gw, secrets=f"{SECRET}, {OLD_SECRET}")
    first = gw.start("stripe", "balance.summary.1", WEEK)
    second = gw.start("stripe", "balance.summary.1", {**WEEK, "interval_start": "2025-01-02"})
    one = raw_run(sandbox, f"/v1/reporting/report_runs/{first.id}")
    two = raw_run(sandbox, f"/v1/reporting/report_runs/{second.id}")

    assert app.handle(*signed(v1_event(one, "evt_new"), secret=SECRET)).status == 200
    assert app.handle(*signed(v1_event(two, "evt_old"), secret=OLD_SECRET)).status == 200
    assert gw.events.latest("stripe", first.id) is not None
    assert gw.events.latest("stripe", second.id) is not None


def test_a_header_with_several_v1_signatures_verifies_if_one_matches() -> None:
    body = b'{"id": "evt_x"}'
    now = int(time.time())
    good = sign(body, SECRET, now).split("v1=")[1]
    header = f"t={now},v1={'00' * 32},v0=ignored,v1={good}"
    assert verify(body, header, [SECRET]) == now
    with pytest.raises(SignatureError):
        verify(body, f"t={now},v1={'00' * 32}", [SECRET])


def test_our_signatures_and_stripes_library_agree() -> None:
    """Stripe's own SDK checks what ``sign`` makes, and ``verify`` takes what it makes."""
    body = json.dumps({"id": "evt_sdk", "object": "event"})
    now = int(time.time())
    assert stripe.WebhookSignature.verify_header(body, sign(body.encode(), SECRET, now), SECRET)
    theirs = stripe.WebhookSignature._compute_signature(f"{now}.{body}", SECRET)
    assert verify(body.encode(), f"t={now},v1={theirs}", [SECRET]) == now


# -- configuration -----------------------------------------------------------------------


def test_secrets_come_from_the_environment_comma_separated(
    sandbox: Sandbox, environ: dict[str, str]
) -> None:
    settings = settings_for(sandbox)
    del settings["stripe"]["webhook_secret"]
    env = {**environ, "STRIPE_WEBHOOK_SECRET": f"{OLD_SECRET},{SECRET}"}
    with Gateway(settings, plugins=[stripe_plugin], load_entrypoints=False, environ=env) as gw:
        app = WebhookApp(gw)
        body, header = signed({"id": "evt_env", "type": "reporting.report_type.updated"})
        assert app.handle(body, header).status == 200
        assert "whsec_" not in repr(app) + repr(gw.settings("stripe"))


def test_no_secret_is_a_configuration_error(sandbox: Sandbox, environ: dict[str, str]) -> None:
    settings = settings_for(sandbox)
    del settings["stripe"]["webhook_secret"]
    gw = Gateway(settings, plugins=[stripe_plugin], load_entrypoints=False, environ=environ)
    with gw, pytest.raises(ConfigurationError, match="STRIPE_WEBHOOK_SECRET"):
        WebhookApp(gw)


def test_parse_secrets() -> None:
    assert parse_secrets(" whsec_a ,, whsec_b ") == ("whsec_a", "whsec_b")
    assert parse_secrets(["whsec_a", " "]) == ("whsec_a",)
    assert parse_secrets(None) == ()


# -- what is accepted ----------------------------------------------------------------------


def test_other_event_types_are_acknowledged_and_ignored(gw: Gateway, app: WebhookApp) -> None:
    result = app.handle(*signed({"id": "evt_t", "type": "reporting.report_type.updated"}))
    assert result.status == 200
    assert result.body["ignored"] == "reporting.report_type.updated"
    assert result.run is None


def test_a_genuine_v1_event_ends_a_wait_with_zero_further_polls(
    gw: Gateway, app: WebhookApp, sandbox: Sandbox
) -> None:
    run = gw.start("stripe", "balance.summary.1", WEEK)
    waiter = Waiter(gw, run)
    payload = raw_run(sandbox, f"/v1/reporting/report_runs/{run.id}")
    polls = run_gets(sandbox, run.id)

    result = app.handle(*signed(v1_event(payload)))

    assert result.status == 200
    finished = waiter.join()
    assert finished.status is RunStatus.SUCCEEDED
    assert finished.id == run.id
    assert finished.result is not None
    assert finished.result.size == payload["result"]["size"]
    assert run_gets(sandbox, run.id) == polls
    # The snapshot from the event is a whole run: its result downloads as usual.
    assert len(list(gw.rows(finished))) == 10


def test_a_connected_account_event_keeps_the_waiting_runs_scope(
    gw: Gateway, app: WebhookApp, sandbox: Sandbox
) -> None:
    scope = Scope(account="acct_connected_1")
    run = gw.start("stripe", "balance.summary.1", WEEK, scope=scope)
    waiter = Waiter(gw, run)
    payload = raw_run_as(sandbox, run.id, "acct_connected_1")

    assert app.handle(*signed(v1_event(payload, account="acct_connected_1"))).status == 200
    assert waiter.join().scope == scope


def raw_run_as(sb: Sandbox, run_id: str, account: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {STRIPE_TEST_KEY}", "Stripe-Account": account}
    while True:
        request = urllib.request.Request(
            f"{sb.url}/v1/reporting/report_runs/{run_id}", headers=headers
        )
        with urllib.request.urlopen(request) as response:
            payload: dict[str, Any] = json.load(response)
        if payload["status"] != "pending":
            return payload
        time.sleep(0.05)


def test_a_failed_v1_event_ends_the_wait_with_the_failure(
    gw: Gateway, app: WebhookApp, sandbox: Sandbox
) -> None:
    from report_gateway import RunFailedError
    from report_gateway_sandbox import FaultRule

    sandbox.add_fault(FaultRule(kind="fail_run", path="/v1/reporting/report_runs", count=1))
    run = gw.start("stripe", "balance.summary.1", WEEK)
    waiter = Waiter(gw, run)
    payload = raw_run(sandbox, f"/v1/reporting/report_runs/{run.id}")
    polls = run_gets(sandbox, run.id)

    assert app.handle(*signed(v1_event(payload))).status == 200
    with pytest.raises(RunFailedError):
        waiter.join()
    assert run_gets(sandbox, run.id) == polls


def test_a_v1_event_without_a_run_is_refused(app: WebhookApp) -> None:
    event = {"id": "evt_bad", "type": "reporting.report_run.succeeded", "data": {"object": {}}}
    assert app.handle(*signed(event)).status == 400


def test_a_v2_thin_event_leads_to_exactly_one_retrieve(
    gw: Gateway, app: WebhookApp, sandbox: Sandbox
) -> None:
    run = gw.start("stripe-v2", "report_balance_summary", WEEK)
    waiter = Waiter(gw, run)
    raw_run(sandbox, f"/v2/reporting/report_runs/{run.id}")
    polls = run_gets(sandbox, run.id)

    result = app.handle(*signed(v2_event(run.id)))

    assert result.status == 200
    assert waiter.join().status is RunStatus.SUCCEEDED
    assert run_gets(sandbox, run.id) == polls + 1


def test_a_v2_created_event_is_acknowledged_without_a_retrieve(
    gw: Gateway, app: WebhookApp, sandbox: Sandbox
) -> None:
    run = gw.start("stripe-v2", "report_balance_summary", WEEK)
    polls = run_gets(sandbox, run.id)
    assert app.handle(*signed(v2_event(run.id, kind="created"))).status == 200
    assert run_gets(sandbox, run.id) == polls


def test_a_v2_thin_event_whose_retrieve_fails_answers_502_after_a_bounded_retrieve(
    make_sandbox, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retrieve the provider answers 500 to was retried for ~10 s while Stripe waited:
    now the retrieve carries a deadline of ``RETRIEVE_SECONDS`` (retries included), then
    502, and Stripe delivers again later."""
    from report_gateway.webhooks import RETRIEVE_SECONDS
    from report_gateway_sandbox import FaultRule

    sb = make_sandbox(
        run_seconds=0.3,
        faults=[FaultRule(kind="server_error", status=500, path="/v2/reporting/report_runs/*")],
    )
    with Gateway(
        settings_for(sb), plugins=[stripe_plugin], load_entrypoints=False, environ=environ
    ) as gw:
        app = WebhookApp(gw)
        driver = gw.driver("stripe-v2")
        real, given = driver.get, []

        def get(run_id: str, **kwargs: Any) -> Any:
            given.append(kwargs.get("deadline"))
            given.append(time.monotonic())
            return real(run_id, **kwargs)

        monkeypatch.setattr(driver, "get", get)
        result = app.handle(*signed(v2_event("reprun_test_slow", event_id="evt_slow_read")))
    assert result.status == 502
    assert RETRIEVE_SECONDS <= 5
    deadline, called = given
    assert deadline is not None
    assert deadline - called <= RETRIEVE_SECONDS
    assert run_gets(sb, "reprun_test_slow") >= 1


@pytest.mark.parametrize("bad", ["../../v1/reporting/report_runs/frr_1", "reprun_1?x=1", ""])
def test_a_v2_thin_event_naming_an_id_that_is_no_run_id_is_refused_unsent(
    app: WebhookApp, sandbox: Sandbox, bad: str
) -> None:
    before = len(sandbox.stats()["request_log"])
    result = app.handle(*signed(v2_event(bad, event_id="evt_bad_id")))
    assert result.status == 400
    assert len(sandbox.stats()["request_log"]) == before


def test_a_v2_event_whose_run_cannot_be_read_is_retried_by_stripe(app: WebhookApp) -> None:
    """A failed retrieve answers 5xx (Stripe retries) and the event id stays unused."""
    event = v2_event("reprun_test_unknown", event_id="evt_retry")
    assert app.handle(*signed(event)).status == 502
    assert app.handle(*signed(event)).status == 502  # not "already received"


# -- over HTTP, with the sandbox sending ---------------------------------------------------


def test_the_wsgi_app_answers_only_post_on_its_path(listener: str) -> None:
    base = listener.rsplit("/webhooks/stripe", 1)[0]
    for url, method, status in ((listener, "GET", 405), (base + "/other", "POST", 404)):
        request = urllib.request.Request(url, data=b"{}", method=method)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request)
        assert caught.value.code == status


@pytest.mark.parametrize(
    ("provider", "report"),
    [("stripe", "balance.summary.1"), ("stripe-v2", "report_balance_summary")],
)
def test_end_to_end_the_sandboxs_event_ends_the_wait(
    gw: Gateway, sandbox: Sandbox, listener: str, provider: str, report: str
) -> None:
    sandbox.configure(webhook_url=listener, webhook_secret=SECRET, run_seconds=0.5)
    run = gw.start(provider, report, WEEK)

    finished = Waiter(gw, run).join()

    assert finished.status is RunStatus.SUCCEEDED
    kind = ("v2." if provider == "stripe-v2" else "") + "reporting.report_run.succeeded"
    # The listener answers after it published; the sandbox counts when the answer is in.
    assert until(lambda: sandbox.stats()["webhooks"]["sent"]) == {kind: 1}
    # v1: the event carried the run, no poll at all; v2: the listener's one retrieve.
    assert run_gets(sandbox, run.id) == (1 if provider == "stripe-v2" else 0)


def test_end_to_end_a_sandbox_signing_with_another_secret_is_refused(
    gw: Gateway, sandbox: Sandbox, listener: str
) -> None:
    sandbox.configure(webhook_url=listener, webhook_secret="whsec_not_ours", run_seconds=0.2)
    run = gw.start("stripe", "balance.summary.1", WEEK)
    refused = until(lambda: sandbox.stats()["webhooks"]["refused"])
    assert refused == {"reporting.report_run.succeeded": 1}
    assert gw.events.latest("stripe", run.id) is None


# -- another provider's webhooks, through the same app -------------------------------------


class Acme:
    """A third-party provider declaring webhooks: a shared-secret header, runs to fetch."""

    fetched: list[str] = []

    @hookimpl
    def report_gateway_providers(self) -> list[ProviderSpec]:
        def check(payload: bytes, header: str | None, secrets: Any, **_: Any) -> None:
            if header not in secrets:
                raise SignatureError("wrong X-Acme-Token")

        def read(event: Any, driver: Any) -> WebhookOutcome:
            return WebhookOutcome(fetch=("acme", event["run"], None))

        class Down:
            def get(self, run_id: str, *, scope: Scope) -> Any:
                Acme.fetched.append(f"acme/{run_id}")
                raise RuntimeError("acme is down")  # answered 502: the provider retries

        return [
            ProviderSpec(
                name="acme",
                factory=lambda context: Down(),  # type: ignore[arg-type,return-value]
                options=[Option("webhook_secret", secret=True)],
                webhook=WebhookSpec(signature_header="X-Acme-Token", verify=check, read=read),
            )
        ]


def test_each_provider_declaring_webhooks_gets_its_own_path(
    sandbox: Sandbox, environ: dict[str, str]
) -> None:
    settings = {**settings_for(sandbox), "acme": {"webhook_secret": "acme-shared"}}
    with Gateway(
        settings, plugins=[stripe_plugin, Acme()], load_entrypoints=False, environ=environ
    ) as gw:
        fetched = Acme.fetched
        fetched.clear()
        app = WebhookApp(gw)
        assert app.paths == {"acme": "/webhooks/acme", "stripe": "/webhooks/stripe"}

        def post(path: str, headers: dict[str, str]) -> str:
            body = json.dumps({"id": "evt_acme", "run": "run_7"}).encode()
            environ_ = {
                "PATH_INFO": path,
                "REQUEST_METHOD": "POST",
                "CONTENT_LENGTH": str(len(body)),
                "wsgi.input": io.BytesIO(body),
                **headers,
            }
            statuses: list[str] = []
            app(environ_, lambda status, _headers: statuses.append(status))
            return statuses[0]

        assert post("/webhooks/acme", {"HTTP_X_ACME_TOKEN": "forged"}).startswith("400")
        assert fetched == []
        assert post("/webhooks/stripe", {"HTTP_X_ACME_TOKEN": "acme-shared"}).startswith("400")
        assert post("/webhooks/acme", {"HTTP_X_ACME_TOKEN": "acme-shared"}).startswith("502")
        assert fetched == ["acme/run_7"]
