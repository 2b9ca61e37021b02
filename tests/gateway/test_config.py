"""Settings layering, profile selection, credentials lookup and their error messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from report_gateway import ConfigurationError, CredentialsError, Gateway, ProviderSpec, hookimpl
from report_gateway.config import Credentials, ProviderSettings, SettingsLayer, load_profile
from report_gateway.provider import Option

MakeGateway = Callable[..., Gateway]

SECRET = "sk_test_SECRET_value_4242"


class StripeLike:
    """A provider declaring real-looking env vars, to check lookups and messages."""

    @hookimpl
    def report_gateway_providers(self) -> list[ProviderSpec]:
        return [
            ProviderSpec(
                name="stripe-ish",
                factory=lambda context: context,  # type: ignore[arg-type,return-value]
                options=[
                    Option("api_key", env="STRIPE_API_KEY", credential=True),
                    Option("base_url"),
                    Option("account", env="STRIPE_ACCOUNT"),
                ],
            ),
            ProviderSpec(
                name="zuora-ish",
                factory=lambda context: context,  # type: ignore[arg-type,return-value]
                options=[
                    Option("api_access_key_id", env="ZUORA_API_ACCESS_KEY_ID", credential=True),
                    Option(
                        "api_secret_access_key", env="ZUORA_API_SECRET_ACCESS_KEY", credential=True
                    ),
                    Option("data_center", env="ZUORA_DATA_CENTER"),
                ],
            ),
        ]


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


CONFIG = """
[profiles.default.stripe-ish]
api_key = "sk_test_from_file_default"
base_url = "http://127.0.0.1:12111"

[profiles.sandbox.stripe-ish]
api_key = "sk_test_from_file_sandbox"
"""


def gateway(environ: dict[str, str], settings: dict | None = None, **kw: object) -> Gateway:  # type: ignore[type-arg]
    return Gateway(settings, plugins=[StripeLike()], load_entrypoints=False, environ=environ, **kw)  # type: ignore[arg-type]


def test_precedence_explicit_then_profile_then_env(environ: dict[str, str], tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", CONFIG)
    environ.update(STRIPE_API_KEY="sk_test_from_env", STRIPE_ACCOUNT="acct_env")
    settings = gateway(environ, config_file=config).settings("stripe-ish")
    assert settings["api_key"] == "sk_test_from_file_default"
    assert settings["account"] == "acct_env"
    assert settings.origin("account") == "env STRIPE_ACCOUNT"
    assert "profile 'default'" in (settings.origin("api_key") or "")

    explicit = gateway(
        environ, {"stripe-ish": {"api_key": "sk_test_explicit"}}, config_file=config
    ).settings("stripe-ish")
    assert explicit["api_key"] == "sk_test_explicit"
    assert explicit.origin("api_key") == "settings"
    assert explicit["base_url"] == "http://127.0.0.1:12111"
    # Plugins weighing related settings compare layers: explicit > profile file > env.
    assert explicit.layer("api_key") is SettingsLayer.EXPLICIT
    assert explicit.layer("base_url") is SettingsLayer.PROFILE
    assert explicit.layer("account") is SettingsLayer.ENVIRONMENT
    assert explicit.layer("nothing") is None
    assert SettingsLayer.ENVIRONMENT < SettingsLayer.PROFILE < SettingsLayer.EXPLICIT

    env_only = gateway(environ).settings("stripe-ish")
    assert env_only["api_key"] == "sk_test_from_env"


def test_profile_selected_by_argument_or_env(environ: dict[str, str], tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", CONFIG)
    by_arg = gateway(environ, config_file=config, profile="sandbox").settings("stripe-ish")
    assert by_arg["api_key"] == "sk_test_from_file_sandbox"
    environ.update(REPORT_GATEWAY_CONFIG=str(config), REPORT_GATEWAY_PROFILE="sandbox")
    by_env = gateway(environ).settings("stripe-ish")
    assert by_env["api_key"] == "sk_test_from_file_sandbox"
    assert "base_url" not in by_env


def test_default_config_location_is_read(environ: dict[str, str]) -> None:
    write_config(Path(environ["XDG_CONFIG_HOME"]) / "report-gateway" / "config.toml", CONFIG)
    assert gateway(environ).settings("stripe-ish")["api_key"] == "sk_test_from_file_default"


def test_missing_explicit_file_or_profile_is_an_error(
    environ: dict[str, str], tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_profile(tmp_path / "nope.toml", environ=environ)
    config = write_config(tmp_path / "c.toml", CONFIG)
    with pytest.raises(
        ConfigurationError, match=r"no profile 'prod' \(profiles: default, sandbox\)"
    ):
        load_profile(config, "prod", environ=environ)
    # Without a file, the implicit default profile is simply empty.
    assert load_profile(environ=environ).providers == {}


def test_bad_toml_is_a_clear_error(tmp_path: Path, environ: dict[str, str]) -> None:
    config = write_config(tmp_path / "c.toml", f'[profiles.default.x]\napi_key = "{SECRET}\n')
    with pytest.raises(ConfigurationError, match="cannot read config file") as info:
        load_profile(config, environ=environ)
    assert SECRET not in str(info.value)


def test_missing_credentials_names_env_vars_and_file(environ: dict[str, str]) -> None:
    gw = gateway(environ)
    with pytest.raises(CredentialsError) as info:
        gw.driver("stripe-ish")
    message = str(info.value)
    assert "STRIPE_API_KEY" in message
    assert "settings['stripe-ish']['api_key']" in message
    assert "config.toml" in message
    with pytest.raises(CredentialsError) as info:
        gw.driver("zuora-ish")
    assert "ZUORA_API_ACCESS_KEY_ID" in str(info.value)
    assert "ZUORA_API_SECRET_ACCESS_KEY" in str(info.value)


def test_partial_credentials_name_only_what_is_missing(environ: dict[str, str]) -> None:
    environ["ZUORA_API_ACCESS_KEY_ID"] = "key-id"
    with pytest.raises(CredentialsError) as info:
        gateway(environ).driver("zuora-ish")
    assert "ZUORA_API_SECRET_ACCESS_KEY" in str(info.value)
    assert "ZUORA_API_ACCESS_KEY_ID" not in str(info.value)


def test_credentials_reach_the_driver(environ: dict[str, str]) -> None:
    environ["STRIPE_API_KEY"] = SECRET
    context = gateway(environ).driver("stripe-ish")
    credentials = context.credentials  # type: ignore[attr-defined]
    assert credentials["api_key"] == SECRET
    assert credentials.source == "env STRIPE_API_KEY"


def test_reprs_hide_secrets(environ: dict[str, str]) -> None:
    environ["STRIPE_API_KEY"] = SECRET
    gw = gateway(environ, {"stripe-ish": {"base_url": "http://127.0.0.1:1"}})
    context = gw.driver("stripe-ish")
    shown = [repr(gw), repr(context), repr(gw.settings("stripe-ish"))]
    shown.append(repr(context.credentials))  # type: ignore[attr-defined]
    assert all(SECRET not in text for text in shown)
    assert "http://127.0.0.1:1" in shown[2]
    assert repr(Credentials({"api_key": SECRET}, source="x")) == (
        "Credentials(keys=['api_key'], source='x')"
    )


def test_unknown_setting_warns(environ: dict[str, str]) -> None:
    with pytest.warns(UserWarning, match="unknown settings \\['apikey'\\]"):
        gateway(environ, {"stripe-ish": {"apikey": "x"}}).settings("stripe-ish")


def test_credentials_plugin_answers_first(
    make_gateway: MakeGateway,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    example_plugin: ModuleType,
) -> None:
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"example": {"token": "tok_from_file"}}))
    monkeypatch.setenv(example_plugin.CREDENTIALS_ENV, str(secrets))
    gw = make_gateway({"example": {"token": "tok_from_settings"}})
    context = gw.driver("example").context  # type: ignore[attr-defined]
    assert context.credentials["token"] == "tok_from_file"
    assert context.credentials.source == f"file {secrets}"


def test_mapping_answer_from_a_plugin_is_accepted(
    make_gateway: MakeGateway, example_plugin: ModuleType
) -> None:
    class Vault:
        @hookimpl(tryfirst=True)
        def report_gateway_credentials(self, provider: str) -> dict[str, str] | None:
            return {"token": "tok_vault"} if provider == "example" else None

    gw = make_gateway({"example": {}}, plugins=[example_plugin, Vault()])
    context = gw.driver("example").context  # type: ignore[attr-defined]
    assert context.credentials["token"] == "tok_vault"
    assert context.credentials.source == "plugin"


def test_provider_settings_is_a_read_only_mapping() -> None:
    settings = ProviderSettings("p", {"a": 1}, {"a": "settings"})
    assert dict(settings) == {"a": 1}
    assert settings.origin("b") is None
    with pytest.raises(TypeError):
        settings["a"] = 2  # type: ignore[index]
