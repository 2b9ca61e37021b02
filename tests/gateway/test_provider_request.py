"""``ProviderContext.request``: a driver with no generated client sends requests the
gateway's way (auth, user agent, shared transport) and its errors become ProviderError."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from report_gateway import Gateway, ProviderError, hookimpl
from report_gateway.provider import (
    ApiError,
    BaseDriver,
    BearerAuth,
    Option,
    ProviderContext,
    ProviderSpec,
    ReportRun,
    ReportTemplate,
    ResultResponse,
    Scope,
    StartReporter,
    no_progress,
)
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox


class PlainDriver(BaseDriver):
    """Stripe v1's report types read with plain requests, as a hand-written plugin would."""

    def template(self, report_id: str, *, scope: Scope) -> ReportTemplate:
        base = self.context.setting("base_url")
        data = self.context.request("GET", f"{base}/v1/reporting/report_types/{report_id}").json()
        return ReportTemplate(provider=self.provider, id=data["id"], name=data["name"])

    def start(
        self,
        report_id: str,
        parameters: Mapping[str, Any],
        *,
        scope: Scope,
        idempotency_key: str,
        progress: StartReporter = no_progress,
    ) -> ReportRun:
        raise NotImplementedError

    def get(self, run_id: str, *, scope: Scope) -> ReportRun:
        raise NotImplementedError

    def open_result(self, run: ReportRun, *, offset: int = 0) -> ResultResponse:
        raise NotImplementedError


class Plain:
    @hookimpl
    def report_gateway_providers(self) -> list[ProviderSpec]:
        return [
            ProviderSpec(
                name="plain",
                factory=PlainDriver,
                options=[Option("api_key", credential=True), Option("base_url")],
                auth=lambda credentials: BearerAuth(credentials["api_key"]),
            )
        ]


@pytest.fixture
def gw(sandbox: Sandbox, tmp_path: Path) -> Iterator[Gateway]:
    settings = {"plain": {"api_key": STRIPE_TEST_KEY, "base_url": sandbox.stripe_base_url}}
    environ = {"XDG_CONFIG_HOME": str(tmp_path)}
    with Gateway(settings, plugins=[Plain()], load_entrypoints=False, environ=environ) as g:
        yield g


def test_a_plain_request_carries_auth_and_the_user_agent(gw: Gateway, sandbox: Sandbox) -> None:
    template = gw.template("plain", "balance.summary.1")
    assert template.name
    sent = sandbox.stats()["request_log"][-1]["headers"]
    headers = {name.lower(): value for name, value in sent.items()}
    assert headers["authorization"] == f"Bearer {STRIPE_TEST_KEY}"
    assert headers["user-agent"].startswith("report-gateway")


def test_a_non_2xx_answer_is_an_api_error_the_gateway_wraps(gw: Gateway) -> None:
    with pytest.raises(ProviderError) as caught:
        gw.template("plain", "no.such.report")
    assert caught.value.status == 404
    assert isinstance(caught.value.cause, ApiError)
    context = gw.driver("plain").context  # type: ignore[attr-defined]
    assert isinstance(context, ProviderContext)
    with pytest.raises(ApiError):
        context.request("GET", f"{context.setting('base_url')}/v1/reporting/report_types/nope")
