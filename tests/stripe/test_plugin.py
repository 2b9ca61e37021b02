"""The plugin's hooks and registration: what the gateway learns without calling Stripe."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import pytest
import report_gateway_stripe.plugin as plugin
from hypothesis import given
from hypothesis import strategies as st
from report_gateway import (
    ConfigurationError,
    CredentialsError,
    Gateway,
    NotSupportedError,
    RunStatus,
    Scope,
    ScopeError,
    hookimpl,
)
from report_gateway.config import Credentials
from reporting_runtime import BearerAuth

MakeGateway = Callable[..., Gateway]

#: What the plugin announces; its status words, scope headers and auth are data on them.
SPECS = {spec.name: spec for spec in plugin.report_gateway_providers()}


def test_entry_point_names_the_plugin_module() -> None:
    found = [ep for ep in entry_points(group="report_gateway") if ep.name == "stripe"]
    assert [ep.value for ep in found] == ["report_gateway_stripe.plugin"]
    assert found[0].load() is plugin


def test_both_providers_listed_with_their_settings(make_gateway: MakeGateway) -> None:
    gw = make_gateway()
    assert gw.providers() == ["stripe", "stripe-v2"]
    v1, v2 = gw.spec("stripe"), gw.spec("stripe-v2")
    assert set(v1.settings_keys) == {
        "api_key",
        "base_url",
        "files_base_url",
        "stripe_version",
        "account",
        "webhook_secret",
    }
    assert {"api_key", "base_url", "stripe_version", "context"} <= set(v2.settings_keys)
    assert v1.env_vars == {"api_key": "STRIPE_API_KEY", "webhook_secret": "STRIPE_WEBHOOK_SECRET"}
    assert v2.env_vars == {"api_key": "STRIPE_API_KEY"}


def test_importing_the_plugin_does_not_import_the_clients() -> None:
    code = (
        "import sys, report_gateway_stripe.plugin as p; p.report_gateway_providers(); "
        "print(sorted(m for m in sys.modules if m.startswith(('stripe_reporting_client', "
        "'urllib3', 'cattrs'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("provider", "word", "status"),
    [
        ("stripe", "pending", RunStatus.PENDING),
        ("stripe", "succeeded", RunStatus.SUCCEEDED),
        ("stripe", "failed", RunStatus.FAILED),
        ("stripe-v2", "running", RunStatus.RUNNING),
        ("stripe-v2", "succeeded", RunStatus.SUCCEEDED),
        ("stripe-v2", "failed", RunStatus.FAILED),
    ],
)
def test_status_words_map(provider: str, word: str, status: RunStatus) -> None:
    assert SPECS[provider].status_of(word) is status


def test_unknown_status_words_and_other_providers_are_left_alone() -> None:
    assert SPECS["stripe"].status_of("queued") is None
    assert SPECS["stripe-v2"].status_of("pending") is None
    assert SPECS["stripe"].status_of("running") is None  # v2's word, not v1's
    assert set(SPECS) == {"stripe", "stripe-v2"}


def test_auth_is_bearer_for_stripe_only() -> None:
    credentials = Credentials({"api_key": "sk_test_hook"}, source="test")
    auth = SPECS["stripe-v2"].make_auth(credentials)
    assert isinstance(auth, BearerAuth)
    assert auth.auth_headers() == {"Authorization": "Bearer sk_test_hook"}
    assert "sk_test_hook" not in repr(auth)
    assert isinstance(SPECS["stripe"].make_auth(credentials), BearerAuth)


def test_scope_headers_per_provider() -> None:
    assert SPECS["stripe"].headers_for(Scope(account="acct_1")) == {"Stripe-Account": "acct_1"}
    assert SPECS["stripe-v2"].headers_for(Scope(context="ctx_1")) == {"Stripe-Context": "ctx_1"}
    assert SPECS["stripe"].headers_for(Scope()) == {}


@pytest.mark.parametrize(
    ("provider", "scope"),
    [
        ("stripe", Scope(entity_id="e1")),
        ("stripe", Scope(context="ctx_1")),
        ("stripe-v2", Scope(account="acct_1")),
        ("stripe-v2", Scope(entity_name="Europe")),
    ],
)
def test_foreign_scope_fields_refused(provider: str, scope: Scope) -> None:
    with pytest.raises(ScopeError, match="not supported"):
        SPECS[provider].headers_for(scope)


@pytest.mark.parametrize("provider", ["stripe", "stripe-v2"])
def test_missing_key_names_the_env_variable(make_gateway: MakeGateway, provider: str) -> None:
    gw = make_gateway()
    with pytest.raises(CredentialsError, match="STRIPE_API_KEY") as caught:
        gw.template(provider, "anything")
    assert caught.value.provider == provider


def test_key_from_the_environment(make_gateway: MakeGateway, environ: dict[str, str]) -> None:
    environ["STRIPE_API_KEY"] = "sk_test_from_env"
    gw = make_gateway()
    driver = gw.driver("stripe")
    assert "sk_test_from_env" not in repr(gw.settings("stripe"))
    assert driver is gw.driver("stripe")


def test_bad_v2_settings_are_configuration_errors(make_gateway: MakeGateway) -> None:
    gw = make_gateway({"stripe-v2": {"api_key": "sk_test_x", "rate_limit_wait": "soon"}})
    with pytest.raises(ConfigurationError, match="rate_limit_wait"):
        gw.driver("stripe-v2")
    gw = make_gateway({"stripe-v2": {"api_key": "sk_test_x", "compress_file": "maybe"}})
    with pytest.raises(ConfigurationError, match="compress_file"):
        gw.driver("stripe-v2")


def test_v2_templates_need_the_reports_setting(make_gateway: MakeGateway) -> None:
    gw = make_gateway({"stripe-v2": {"api_key": "sk_test_x"}})
    with pytest.raises(NotSupportedError, match="'reports'"):
        gw.templates("stripe-v2")


@pytest.mark.parametrize("provider", ["stripe", "stripe-v2"])
def test_scope_error_before_any_request(make_gateway: MakeGateway, provider: str) -> None:
    # No cassette and no server: a request would fail with a network error, not ScopeError.
    gw = make_gateway({provider: {"api_key": "sk_test_x", "base_url": "http://127.0.0.1:9"}})
    with pytest.raises(ScopeError):
        gw.get(provider, "run_1", scope=Scope(entity_id="e1"))


class _TracingScope:
    """A third-party plugin that answers the scope hook first and adds its own header."""

    @hookimpl(tryfirst=True)
    def report_gateway_scope_headers(self, provider: str, scope: Scope) -> dict[str, str] | None:
        if provider != "stripe" or not scope.account:
            return None
        return {"Stripe-Account": scope.account.upper(), "X-Trace": "t-1"}


def test_a_plugin_can_refine_the_scope_headers(
    make_gateway: MakeGateway, docs_cassette: Callable[..., Any], transport: Any
) -> None:
    gw = make_gateway(
        {"stripe": {"api_key": "sk_test_REDACTED"}}, plugins=[plugin, _TracingScope()]
    )
    with docs_cassette("stripe", "stripe-api-reporting-report-type.yaml", pick=[1, 1]):
        gw.template("stripe", "balance.summary.1", scope=Scope(account="acct_abc"))
        gw.template("stripe", "balance.summary.1")
    scoped, plain = transport.sent
    assert scoped.header("Stripe-Account") == "ACCT_ABC"
    assert scoped.header("X-Trace") == "t-1"
    assert plain.header("Stripe-Account") is None
    assert plain.header("X-Trace") is None


#: The status words Stripe documents, per API; the hook may map nothing else.
DOCUMENTED_WORDS = {
    "stripe": {"pending", "succeeded", "failed"},
    "stripe-v2": {"running", "succeeded", "failed"},
}


@given(
    st.one_of(
        st.text(max_size=20),
        st.sampled_from(["Succeeded", "FAILED", " pending", "running ", "canceled", "queued"]),
    )
)
def test_unknown_words_are_never_guessed(word: str) -> None:
    for provider, words in DOCUMENTED_WORDS.items():
        if word not in words:
            assert SPECS[provider].status_of(word) is None
