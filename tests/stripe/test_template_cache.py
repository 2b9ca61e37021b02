"""A template just fetched is not fetched again by the start that follows.

``template()`` (or v1's ``templates()``) then ``start()``, whose validation needs the same
definition, used to retrieve the report type or report twice; what was fetched is now kept
for validation for 15 minutes, per report and per scope, so the start costs one request less
and a scoped call never validates against another account's definition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from report_gateway import Gateway, Scope, UnknownReportError
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox, SandboxConfig
from report_gateway_stripe.template_cache import FRESH, TEMPLATE_TTL, TemplateCache

MakeGateway = Callable[..., Gateway]

WEEK = {"interval_start": "2025-01-01", "interval_end": "2025-01-08T00:00:00Z"}
V2_REPORT = "report_balance_summary"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(run_seconds=0.2, seed=7)) as sb:
        yield sb


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gw(make_gateway: MakeGateway, sandbox: Sandbox, clock: FakeClock) -> Gateway:
    gateway = make_gateway(
        {
            "stripe": {"api_key": STRIPE_TEST_KEY, "base_url": sandbox.stripe_base_url},
            "stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sandbox.stripe_base_url},
        }
    )
    for provider in ("stripe", "stripe-v2"):
        driver: Any = gateway.driver(provider)
        driver.templates_for_validation = TemplateCache(clock=clock)
    return gateway


def _count(sb: Sandbox, operation: str) -> int:
    return sum(1 for e in sb.stats()["request_log"] if e["operation"] == operation)


def test_v1_template_then_start_retrieves_the_type_once(
    gw: Gateway, sandbox: Sandbox, clock: FakeClock
) -> None:
    gw.template("stripe", "balance.summary.1")
    gw.start("stripe", "balance.summary.1", WEEK)
    gw.start("stripe", "balance.summary.1", WEEK)
    assert _count(sandbox, "retrieve_report_type") == 1
    clock.now += TEMPLATE_TTL + 1
    gw.start("stripe", "balance.summary.1", WEEK)
    assert _count(sandbox, "retrieve_report_type") == 2


def test_v1_listed_types_serve_the_next_start(gw: Gateway, sandbox: Sandbox) -> None:
    assert "balance.summary.1" in {t.id for t in gw.templates("stripe")}
    gw.start("stripe", "balance.summary.1", WEEK)
    assert _count(sandbox, "retrieve_report_type") == 0


def test_template_itself_always_asks_stripe(gw: Gateway, sandbox: Sandbox) -> None:
    gw.template("stripe", "balance.summary.1")
    gw.template("stripe", "balance.summary.1")
    gw.template("stripe-v2", V2_REPORT)
    gw.template("stripe-v2", V2_REPORT)
    assert _count(sandbox, "retrieve_report_type") == 2
    assert _count(sandbox, "retrieve_report") == 2


def test_v1_each_scope_has_its_own_definitions(gw: Gateway, sandbox: Sandbox) -> None:
    gw.template("stripe", "balance.summary.1")
    connected = Scope(account="acct_connected1")
    gw.validate("stripe", "balance.summary.1", WEEK, scope=connected)
    gw.validate("stripe", "balance.summary.1", WEEK, scope=connected)
    accounts = [
        e["headers"].get("Stripe-Account")
        for e in sandbox.stats()["request_log"]
        if e["operation"] == "retrieve_report_type"
    ]
    assert accounts == [None, "acct_connected1"]


def test_unknown_reports_are_asked_again(gw: Gateway, sandbox: Sandbox) -> None:
    for _ in range(2):
        with pytest.raises(UnknownReportError):
            gw.template("stripe", "balance.summary.9")
        with pytest.raises(UnknownReportError):
            gw.template("stripe-v2", "report_nonexistent")
    assert _count(sandbox, "retrieve_report_type") == 2
    assert _count(sandbox, "retrieve_report") == 2


def test_v2_template_then_start_retrieves_the_report_once(
    gw: Gateway, sandbox: Sandbox, clock: FakeClock
) -> None:
    gw.template("stripe-v2", V2_REPORT)
    gw.start("stripe-v2", V2_REPORT, WEEK)
    assert _count(sandbox, "retrieve_report") == 1
    clock.now += TEMPLATE_TTL + 1
    gw.validate("stripe-v2", V2_REPORT, WEEK)
    assert _count(sandbox, "retrieve_report") == 2


def test_a_refusal_by_a_kept_definition_is_checked_against_a_fresh_one(clock: FakeClock) -> None:
    """The kept copy's data window may have moved since: what it refuses is asked again."""
    from report_gateway import ParameterError

    cache = TemplateCache(clock=clock)
    stale, fresh = object(), object()
    fetched: list[object] = []

    def fetch() -> Any:
        fetched.append(fresh)
        return fresh

    def check(template: object) -> str:
        if template is stale:
            raise ParameterError("interval_end", "after data_available_end")
        return "clean"

    cache.put("key", stale)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):  # fetched a moment ago: the refusal stands
        cache.checked("key", fetch, check)
    assert fetched == []
    clock.now += FRESH + 1
    assert cache.checked("key", fetch, check) == "clean"
    assert fetched == [fresh]
    # The fresh copy is kept now: the next check asks nothing.
    assert cache.checked("key", fetch, check) == "clean"
    assert fetched == [fresh]


def test_a_refusal_by_a_fresh_definition_stands(clock: FakeClock) -> None:
    from report_gateway import ParameterError

    cache = TemplateCache(clock=clock)
    calls: list[int] = []

    def fetch() -> Any:
        calls.append(1)
        return object()

    def check(template: object) -> str:
        raise ParameterError("interval_end", "after data_available_end")

    with pytest.raises(ParameterError):
        cache.checked("key", fetch, check)
    assert calls == [1]  # fetched once: a fresh copy's refusal is not asked twice
    with pytest.raises(ParameterError):
        cache.checked("key", fetch, check)
    assert calls == [1]  # kept a moment ago: refused without asking again
    clock.now += FRESH + 1
    with pytest.raises(ParameterError):
        cache.checked("key", fetch, check)
    assert calls == [1, 1]  # kept a while, refused, asked again once, refused


def test_a_definition_is_kept_for_a_nightly_fan_out(
    gw: Gateway, sandbox: Sandbox, clock: FakeClock
) -> None:
    """Ten minutes of starts in one context fetch its definition once."""
    gw.start("stripe-v2", V2_REPORT, WEEK, scope=Scope(context="acct_ctx1"))
    clock.now += 600
    gw.start("stripe-v2", V2_REPORT, WEEK, scope=Scope(context="acct_ctx1"))
    assert _count(sandbox, "retrieve_report") == 1
