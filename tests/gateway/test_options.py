"""Options declared once: gateway-wide options in the profile, typed provider settings,
conversion errors naming the option and its layer, secrecy taken from the declaration."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import attrs
import pytest
from report_gateway import ConfigurationError, Gateway, ProviderSpec, hookimpl
from report_gateway.cli.commands import Session, _secrets
from report_gateway.config import GATEWAY_OPTIONS, SettingsLayer
from report_gateway.provider import Option, option, seconds
from reporting_runtime import RetryConfig


@attrs.frozen
class ToySettings:
    token: str | None = option(env="TOY_TOKEN", credential=True)
    pin: str | None = option(env="TOY_PIN", secret=True)
    timeout: float = option(env="TOY_TIMEOUT", default=30.0, convert=seconds)
    fast: bool = option(env="TOY_FAST", default=False)
    reports: tuple[str, ...] = option(env="TOY_REPORTS", default=())
    label: str | None = option()


class Toys:
    @hookimpl
    def report_gateway_providers(self) -> list[ProviderSpec]:
        return [
            ProviderSpec(
                name="typed",
                factory=lambda context: context,  # type: ignore[arg-type,return-value]
                settings_type=ToySettings,
            ),
            ProviderSpec(
                name="listed",
                factory=lambda context: context,  # type: ignore[arg-type,return-value]
                options=[Option("key", env="LISTED_KEY", credential=True), Option("region")],
            ),
        ]


def gateway(environ: dict[str, str], settings: Any = None, **kw: Any) -> Gateway:
    return Gateway(settings, plugins=[Toys()], load_entrypoints=False, environ=environ, **kw)


def profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_profile_sets_gateway_wide_options(environ: dict[str, str], tmp_path: Path) -> None:
    config = profile(
        tmp_path,
        """
[profiles.default.gateway]
max_active_runs = { stripe-v2 = 2 }
slot_timeout = 45
user_agent = "nightly-jobs/1.0"
retry = { total = 2, budget_seconds = 30 }

[profiles.default.typed]
label = "from the file"
""",
    )
    options = gateway(environ, config_file=config).options
    assert options.max_active_runs == {"stripe-v2": 2}
    assert options.slot_timeout == 45.0
    assert options.user_agent == "nightly-jobs/1.0"
    assert options.retry == RetryConfig(total=2, budget_seconds=30.0)
    assert "profile 'default'" in options.origin("slot_timeout")
    # The gateway table is not a provider's table.
    assert gateway(environ, config_file=config).settings("typed")["label"] == "from the file"


def test_gateway_keywords_outrank_the_profile(environ: dict[str, str], tmp_path: Path) -> None:
    config = profile(
        tmp_path, "[profiles.default.gateway]\nslot_timeout = 45\nmax_active_runs = 3\n"
    )
    options = gateway(
        environ, config_file=config, slot_timeout=5, retry=RetryConfig(total=1)
    ).options
    assert options.slot_timeout == 5.0
    assert options.origin("slot_timeout") == "settings"
    assert options.max_active_runs == 3
    assert options.retry == RetryConfig(total=1)
    defaults = gateway(environ).options
    assert (defaults.slot_timeout, defaults.max_active_runs, defaults.retry) == (600.0, None, None)
    assert defaults.user_agent.startswith("report-gateway/")


def test_profile_allow_list_outranks_the_environment(
    environ: dict[str, str], tmp_path: Path
) -> None:
    environ["REPORT_GATEWAY_LOAD_PLUGINS"] = "example"
    config = profile(tmp_path, "[profiles.default.gateway]\nload_plugins = []\n")
    gw = Gateway(environ=environ, config_file=config)
    assert gw.options.load_plugins == ()
    assert gw.providers() == []
    # An empty variable still means "load none" (it is not unset).
    assert Gateway(environ={**environ, "REPORT_GATEWAY_LOAD_PLUGINS": ""}).providers() == []


def test_ca_bundle_from_the_profile_is_checked_naming_the_profile(
    environ: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "proxy-ca.pem"
    config = profile(tmp_path, f'[profiles.work.gateway]\nca_bundle = "{missing}"\n')
    with pytest.raises(ConfigurationError) as caught:
        gateway(environ, config_file=config, profile="work")
    message = str(caught.value)
    assert str(missing) in message
    assert "does not exist" in message
    assert "profile 'work'" in message


@pytest.mark.parametrize(
    ("table", "complaint"),
    [
        ("slot_timeout = 'soon'", "'slot_timeout' (from profile 'default' in"),
        ("max_active_runs = 0", "'max_active_runs'"),
        ("retry = { attempts = 3 }", "['attempts'] are not"),
        ("ca_bundel = '/etc/ca.pem'", "unknown gateway options ['ca_bundel']"),
    ],
)
def test_bad_gateway_option_is_a_configuration_error(
    environ: dict[str, str], tmp_path: Path, table: str, complaint: str
) -> None:
    config = profile(tmp_path, f"[profiles.default.gateway]\n{table}\n")
    with pytest.raises(ConfigurationError) as caught:
        gateway(environ, config_file=config)
    assert complaint in str(caught.value)


def test_the_gateway_table_declares_each_option_once() -> None:
    table = {opt.key: opt for opt in GATEWAY_OPTIONS}
    assert set(table) == {
        "ca_bundle",
        "max_active_runs",
        "slot_timeout",
        "load_plugins",
        "user_agent",
        "retry",
        "journal",
    }
    assert table["ca_bundle"].env == "REPORT_GATEWAY_CA_BUNDLE"
    assert table["journal"].env == "REPORT_GATEWAY_JOURNAL"
    assert table["load_plugins"].env == "REPORT_GATEWAY_LOAD_PLUGINS"
    assert table["slot_timeout"].default == 600.0


def test_typed_settings_are_converted_from_every_layer(
    environ: dict[str, str], tmp_path: Path
) -> None:
    environ.update(TOY_TIMEOUT="12.5", TOY_FAST="false", TOY_REPORTS="a, b,,c")
    typed = gateway(environ).settings("typed").typed
    assert typed == ToySettings(timeout=12.5, fast=False, reports=("a", "b", "c"))

    config = profile(tmp_path, "[profiles.default.typed]\nfast = true\nreports = ['x']\n")
    settings = gateway(environ, {"typed": {"timeout": 3}}, config_file=config).settings("typed")
    assert settings.typed == ToySettings(timeout=3.0, fast=True, reports=("x",))
    assert settings.layer("timeout") is SettingsLayer.EXPLICIT
    assert "profile 'default'" in (settings.origin("fast") or "")
    # The mapping holds the converted values of what was set, and no defaults.
    assert settings["timeout"] == 3.0
    assert "label" not in settings


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"TOY_TIMEOUT": "soon"}, "'timeout' (from env TOY_TIMEOUT) must be a number of seconds"),
        ({"TOY_FAST": "maybe"}, "'fast' (from env TOY_FAST) must be true or false, not 'maybe'"),
    ],
)
def test_bad_provider_setting_names_option_and_layer(
    environ: dict[str, str], env: dict[str, str], complaint: str
) -> None:
    environ.update(env)
    with pytest.raises(ConfigurationError) as caught:
        gateway(environ).settings("typed")
    assert f"typed: setting {complaint}" in str(caught.value)


@attrs.frozen
class CountedSettings:
    polls: int = option(env="TOY_POLLS", default=2)


class Counted:
    @hookimpl
    def report_gateway_providers(self) -> list[ProviderSpec]:
        return [
            ProviderSpec(
                name="typed",
                factory=lambda context: context,  # type: ignore[arg-type,return-value]
                settings_type=CountedSettings,
            )
        ]


def counted(environ: dict[str, str], settings: Any = None) -> Gateway:
    return Gateway(settings, plugins=[Counted()], load_entrypoints=False, environ=environ)


@pytest.mark.parametrize(
    ("settings", "env", "complaint"),
    [
        ({}, {"TOY_POLLS": "many"}, "'polls' (from env TOY_POLLS) must be an integer, not 'many'"),
        ({"polls": 5.7}, {}, "'polls' (from {layer}) must be an integer, not 5.7"),
        ({"polls": True}, {}, "'polls' (from {layer}) must be an integer, not True"),
    ],
)
def test_an_int_setting_takes_only_whole_numbers(
    environ: dict[str, str], settings: dict[str, Any], env: dict[str, str], complaint: str
) -> None:
    environ.update(env)
    with pytest.raises(ConfigurationError) as caught:
        counted(environ, {"typed": settings}).settings("typed")
    layer = counted(environ, {"typed": {"polls": 1}}).settings("typed").origin("polls")
    assert f"typed: setting {complaint.format(layer=layer)}" in str(caught.value)


def test_an_int_setting_reads_whole_numbers_from_every_layer(environ: dict[str, str]) -> None:
    environ["TOY_POLLS"] = " 7 "
    assert counted(environ).settings("typed").typed.polls == 7
    assert counted(environ, {"typed": {"polls": 3}}).settings("typed").typed.polls == 3


def test_a_bad_secret_is_reported_without_its_value(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        gateway(environ, {"typed": {"pin": ["s3cret-pin-value"]}}).settings("typed")
    assert "'pin'" in str(caught.value)
    assert "s3cret-pin-value" not in str(caught.value)


def test_spec_attributes_follow_from_the_declaration() -> None:
    typed, listed = Toys().report_gateway_providers()
    assert typed.settings_keys == ("token", "pin", "timeout", "fast", "reports", "label")
    assert dict(typed.env_vars) == {
        "token": "TOY_TOKEN",
        "pin": "TOY_PIN",
        "timeout": "TOY_TIMEOUT",
        "fast": "TOY_FAST",
        "reports": "TOY_REPORTS",
    }
    assert typed.credential_keys == ("token",)
    assert (listed.settings_keys, listed.credential_keys) == (("key", "region"), ("key",))
    # A spec written the former way gets its option table from the three attributes,
    # and a warning that this way is legacy.
    with pytest.warns(DeprecationWarning, match="legacy declaration; declare settings_type="):
        former = ProviderSpec(
            name="former",
            factory=lambda context: context,  # type: ignore[arg-type,return-value]
            settings_keys=("token", "polls"),
            env_vars={"token": "FORMER_TOKEN"},
            credential_keys=("token",),
        )
    assert former.options == (
        Option("token", env="FORMER_TOKEN", credential=True),
        Option("polls"),
    )


def test_credentials_and_typed_settings_reach_the_driver(environ: dict[str, str]) -> None:
    environ.update(TOY_TOKEN="tok_from_env", LISTED_KEY="key_from_env")
    context = gateway(environ, {"typed": {"fast": "yes"}}).driver("typed")
    assert context.credentials["token"] == "tok_from_env"  # type: ignore[attr-defined]
    assert context.settings_as(ToySettings).fast is True  # type: ignore[attr-defined]
    assert gateway(environ).driver("listed").credentials.source == "env LISTED_KEY"  # type: ignore[attr-defined]


def test_declared_secrets_are_hidden_whatever_their_name(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = gateway(environ, {"typed": {"pin": "4242-0000-pin"}}).settings("typed")
    assert "4242-0000-pin" not in repr(settings)
    assert settings.is_secret("pin")
    assert "4242-0000-pin" not in repr(settings.typed)

    # The command line redacts them by the declaration too (a word list would miss "pin").
    monkeypatch.setenv("TOY_PIN", "9999-1111-pin")
    args = argparse.Namespace(settings=["pin=4242-0000-pin"], provider="typed", json=False)
    session = Session(args, io.StringIO(), io.StringIO())
    session.gateway = gateway(environ)
    assert {"4242-0000-pin", "9999-1111-pin"} <= set(_secrets(args, session))
    assert "4242-0000-pin" not in _secrets(args)  # without the declarations: by name only


def test_gateway_is_not_a_provider_name() -> None:
    with pytest.raises(ValueError, match="gateway"):
        ProviderSpec(name="gateway", factory=lambda context: context)  # type: ignore[arg-type,return-value]
