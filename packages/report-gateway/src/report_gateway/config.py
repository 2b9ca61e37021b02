"""Settings and credentials: where they come from, and how they stay out of sight.

Settings for a provider are layered, highest first: the dict given to ``Gateway(settings=)``,
the selected profile of the TOML file, then environment variables (names declared by each
provider plugin in its ``ProviderSpec.env_vars``). The file is ``config_file=``, else
``$REPORT_GATEWAY_CONFIG``, else ``$XDG_CONFIG_HOME/report-gateway/config.toml`` (default
``~/.config/...``); the profile is ``profile=``, else ``$REPORT_GATEWAY_PROFILE``, else
``default``::

    [profiles.default.stripe]
    api_key = "sk_test_..."

    [profiles.sandbox.zuora]
    api_access_key_id = "..."
    api_secret_access_key = "..."
    data_center = "US Sandbox"

A custom CA bundle (a TLS-intercepting corporate proxy, a private CA) is not a provider
setting: one bundle applies to the shared transport of every provider. It is
``Gateway(ca_bundle=)``, else ``$REPORT_GATEWAY_CA_BUNDLE`` (see ``resolve_ca_bundle``).

Every object here hides secret values in its ``repr``.
"""

from __future__ import annotations

import enum
import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from .errors import ConfigurationError

__all__ = [
    "CA_BUNDLE_ENV",
    "CONFIG_ENV",
    "PROFILE_ENV",
    "Credentials",
    "ProfileFile",
    "ProviderSettings",
    "SettingsLayer",
    "SettingsSource",
    "default_config_path",
    "is_secret_key",
    "layer_settings",
    "load_profile",
    "resolve_ca_bundle",
]

CONFIG_ENV = "REPORT_GATEWAY_CONFIG"
PROFILE_ENV = "REPORT_GATEWAY_PROFILE"
CA_BUNDLE_ENV = "REPORT_GATEWAY_CA_BUNDLE"
DEFAULT_PROFILE = "default"

_SECRET_WORDS = ("key", "secret", "password", "token", "credential")


def is_secret_key(name: str) -> bool:
    """Whether a setting's value must never be shown (decided by its name, conservatively)."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _shown(values: Mapping[str, Any]) -> str:
    parts = [f"{k}={'<redacted>' if is_secret_key(k) else repr(v)}" for k, v in values.items()]
    return "{" + ", ".join(parts) + "}"


class SettingsLayer(enum.IntEnum):
    """Where a setting came from, least explicit first: a higher layer wins."""

    ENVIRONMENT = 0
    PROFILE = 1
    EXPLICIT = 2


class ProviderSettings(Mapping[str, Any]):
    """One provider's resolved settings, with where each value came from.

    A read-only mapping (``settings["base_url"]``); ``origin(key)`` names the layer a value
    came from ("settings", "profile 'x' in FILE", "env VAR") so error messages can say where
    to fix it. Secret values never appear in ``repr``.
    """

    __slots__ = ("_layers", "_origins", "_values", "provider")

    def __init__(
        self,
        provider: str,
        values: Mapping[str, Any] | None = None,
        origins: Mapping[str, str] | None = None,
        layers: Mapping[str, SettingsLayer] | None = None,
    ) -> None:
        self.provider = provider
        self._values = dict(values or {})
        self._origins = dict(origins or {})
        self._layers = dict(layers or {})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def origin(self, key: str) -> str | None:
        """Where the value of ``key`` came from, or None when it is not set."""
        return self._origins.get(key)

    def layer(self, key: str) -> SettingsLayer | None:
        """Which layer set ``key`` (None when unset); compare two with ``<``.

        Values handed to the constructor without layers count as explicit; plugins compare
        two settings with ``outranks``.
        """
        if key not in self._values:
            return None
        return self._layers.get(key, SettingsLayer.EXPLICIT)

    def outranks(self, key: str, other: str) -> bool:
        """Whether ``key`` was set in a more explicit layer than ``other`` (both set).

        For settings that depend on each other: a value given explicitly (``base_url`` in
        code or with ``--base-url``) is not overridden by a related value from a less
        explicit layer (Stripe's ``files_base_url`` from a profile).
        """
        mine, theirs = self.layer(key), self.layer(other)
        return mine is not None and theirs is not None and mine > theirs

    def __repr__(self) -> str:
        return f"ProviderSettings({self.provider!r}, {_shown(self._values)})"


def _copy_secrets(values: Mapping[str, str]) -> dict[str, str]:
    return dict(values)


@attrs.frozen(repr=False)
class Credentials(Mapping[str, str]):
    """The secret values a provider needs (API key, key id and secret), and their source.

    Returned by the ``report_gateway_credentials`` hook and handed to
    ``report_gateway_auth``. A mapping so a plugin reads ``credentials["api_key"]``; its
    ``repr`` shows the key names and the source only.
    """

    secrets: Mapping[str, str] = attrs.field(repr=False, converter=_copy_secrets)
    source: str = "unknown"

    def __getitem__(self, key: str) -> str:
        return self.secrets[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.secrets)

    def __len__(self) -> int:
        return len(self.secrets)

    def __repr__(self) -> str:
        return f"Credentials(keys={sorted(self.secrets)!r}, source={self.source!r})"


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The config file used when neither ``config_file=`` nor the env variable names one."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "report-gateway" / "config.toml"


@attrs.frozen
class ProfileFile:
    """The selected profile of the TOML file: provider name -> that provider's table."""

    path: Path | None
    profile: str
    providers: Mapping[str, Mapping[str, Any]] = attrs.field(repr=False, factory=dict)

    def describe(self) -> str:
        """Where this layer lives, for 'looked in ...' messages."""
        return f"profile {self.profile!r} in {self.path}" if self.path else "no config file"


def load_profile(
    config_file: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ProfileFile:
    """Read the selected profile, failing loudly only when the user asked for something.

    A missing default file is normal (env-only setups); a missing file or profile that was
    named explicitly is a ConfigurationError, since silently falling back to other credentials
    would run reports against the wrong account.
    """
    env = os.environ if environ is None else environ
    explicit_file = config_file is not None or bool(env.get(CONFIG_ENV))
    if config_file is not None:
        path = Path(config_file)
    elif env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    else:
        path = default_config_path(env)
    explicit_profile = profile is not None or bool(env.get(PROFILE_ENV))
    name = profile or env.get(PROFILE_ENV) or DEFAULT_PROFILE

    path = path.expanduser()
    if not path.is_file():
        if explicit_file:
            raise ConfigurationError(f"config file {path} does not exist")
        if explicit_profile:
            raise ConfigurationError(f"profile {name!r} requested but {path} does not exist")
        return ProfileFile(None, name)

    import tomllib  # only when there is a file to read

    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        # The decode error message quotes only a position, never file content.
        raise ConfigurationError(f"cannot read config file {path}: {exc}") from None

    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigurationError(f"{path}: 'profiles' must be a table of profiles")
    chosen = profiles.get(name)
    if chosen is None:
        if explicit_profile:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigurationError(f"{path}: no profile {name!r} (profiles: {known})")
        return ProfileFile(path, name)
    if not isinstance(chosen, dict) or not all(isinstance(v, dict) for v in chosen.values()):
        raise ConfigurationError(
            f"{path}: profile {name!r} must hold one table per provider, "
            f"like [profiles.{name}.stripe]"
        )
    return ProfileFile(path, name, chosen)


def resolve_ca_bundle(
    ca_bundle: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """The CA bundle servers are verified against: ``ca_bundle``, else the environment.

    None means the system trust store. The file is checked here, before any request:
    otherwise urllib3 would only fail at the first handshake, with an SSL error that does
    not say the bundle was the problem (and a typo in the path would look like a broken
    proxy). Verification itself stays on; the bundle only replaces the trusted roots.
    """
    env = os.environ if environ is None else environ
    if ca_bundle is not None:
        path, origin = Path(ca_bundle), ""
    elif env.get(CA_BUNDLE_ENV):
        path, origin = Path(env[CA_BUNDLE_ENV]), f" (from ${CA_BUNDLE_ENV})"
    else:
        return None
    path = path.expanduser()
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise ConfigurationError(f"CA bundle {path}{origin} {what}")
    import ssl

    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError:
        raise ConfigurationError(
            f"CA bundle {path}{origin} holds no PEM certificate (expected "
            "-----BEGIN CERTIFICATE----- blocks)"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read CA bundle {path}{origin}: {exc.strerror or exc}"
        ) from None
    return str(path)


def layer_settings(
    provider: str,
    *,
    explicit: Mapping[str, Any] | None,
    profile: ProfileFile,
    env_vars: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
) -> ProviderSettings:
    """Merge the three layers for one provider: explicit dict > profile file > environment.

    ``env_vars`` maps a setting key to the environment variable that can supply it (declared
    by the provider plugin). Empty strings in the environment count as unset.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    layers: dict[str, SettingsLayer] = {}
    for key, var in env_vars.items():
        if env.get(var):
            values[key] = env[var]
            origins[key] = f"env {var}"
            layers[key] = SettingsLayer.ENVIRONMENT
    for key, value in profile.providers.get(provider, {}).items():
        values[key] = value
        origins[key] = profile.describe()
        layers[key] = SettingsLayer.PROFILE
    for key, value in (explicit or {}).items():
        if value is None:
            continue
        values[key] = value
        origins[key] = "settings"
        layers[key] = SettingsLayer.EXPLICIT
    return ProviderSettings(provider, values, origins, layers)


class SettingsSource:
    """The three layers a Gateway reads settings from; the profile file is read once."""

    def __init__(
        self,
        explicit: Mapping[str, Mapping[str, Any]] | None,
        *,
        config_file: str | os.PathLike[str] | None,
        profile: str | None,
        environ: Mapping[str, str] | None,
    ) -> None:
        self._explicit = {name: dict(values) for name, values in (explicit or {}).items()}
        self._config_file = config_file
        self._profile_name = profile
        self.environ = environ
        self._profile: ProfileFile | None = None
        self._lock = threading.Lock()

    @property
    def profile(self) -> ProfileFile | None:
        """The profile file, once read (None before the first ``for_provider``)."""
        return self._profile

    def for_provider(
        self, provider: str, env_vars: Mapping[str, str], known: tuple[str, ...] = ()
    ) -> ProviderSettings:
        """The provider's layered settings; keys outside ``known`` (when given) warn: typos."""
        with self._lock:
            if self._profile is None:
                self._profile = load_profile(self._config_file, self._profile_name, self.environ)
            profile = self._profile
        resolved = layer_settings(
            provider,
            explicit=self._explicit.get(provider),
            profile=profile,
            env_vars=env_vars,
            environ=self.environ,
        )
        unknown = sorted(set(resolved) - set(known)) if known else []
        if unknown:
            warnings.warn(
                f"{provider}: unknown settings {unknown} (known: {list(known)})", stacklevel=3
            )
        return resolved
