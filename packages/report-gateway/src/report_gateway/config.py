"""Settings and credentials: where they come from, and how they stay out of sight.

Settings for a provider are layered, highest first: the dict given to ``Gateway(settings=)``,
the selected profile of the TOML file, then environment variables (names declared by each
provider plugin in its ``ProviderSpec.env_vars``). The file is ``config_file=``, else
``$REPORT_GATEWAY_CONFIG``, else ``config.toml`` in the system's user config folder
(``default_config_path``: ``$XDG_CONFIG_HOME/report-gateway/`` or ``~/.config/report-gateway/``
on Linux, ``~/Library/Application Support/report-gateway/`` on macOS,
``%APPDATA%\\report-gateway\\`` on Windows); the profile is ``profile=``, else
``$REPORT_GATEWAY_PROFILE``, else ``default``::

    [profiles.default.stripe]
    api_key = "sk_test_..."

    [profiles.sandbox.zuora]
    api_access_key_id = "..."
    api_secret_access_key = "..."
    data_center = "US Sandbox"

Gateway-wide options (``GATEWAY_OPTIONS``: the CA bundle, ``max_active_runs``,
``slot_timeout``, the plugin allow-list, the user agent, retries, the run journal) layer
the same way: the ``Gateway(...)`` keyword, the profile's ``gateway`` table, then their
environment variables::

    [profiles.default.gateway]
    ca_bundle = "/etc/ssl/corp-proxy.pem"
    max_active_runs = 3
    retry = { total = 3, budget_seconds = 60 }

Each option is declared once, as data (``report_gateway.options.Option``); one resolver
(``resolve_options``) layers, converts and reports a bad value with its option and layer.
One CA bundle applies to the shared transport of every provider (the ``ca_bundle`` option,
checked by ``check_ca_bundle``).

Every object here hides secret values in its ``repr``.
"""

from __future__ import annotations

import enum
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from . import __version__
from .errors import ConfigurationError
from .options import (
    Option,
    field_types,
    name_list,
    option,
    options_of,
    seconds,
    structure_value,
    text,
)

if TYPE_CHECKING:
    from reporting_runtime import RetryConfig

__all__ = [
    "CA_BUNDLE_ENV",
    "CONFIG_ENV",
    "GATEWAY_OPTIONS",
    "GATEWAY_TABLE",
    "JOURNAL_ENV",
    "LOAD_PLUGINS_ENV",
    "PROFILE_ENV",
    "Credentials",
    "GatewayOptions",
    "ProfileFile",
    "ProviderSettings",
    "SettingsLayer",
    "SettingsSource",
    "default_config_path",
    "is_secret_key",
    "layer_settings",
    "load_profile",
    "resolve_options",
]

CONFIG_ENV = "REPORT_GATEWAY_CONFIG"
PROFILE_ENV = "REPORT_GATEWAY_PROFILE"
CA_BUNDLE_ENV = "REPORT_GATEWAY_CA_BUNDLE"
#: The run journal's path ("" turns the journal off; unset: the user data folder's).
JOURNAL_ENV = "REPORT_GATEWAY_JOURNAL"
#: Comma-separated entry-point names to load (empty: none); unset loads every plugin.
LOAD_PLUGINS_ENV = "REPORT_GATEWAY_LOAD_PLUGINS"
DEFAULT_PROFILE = "default"
#: The table of a profile holding gateway-wide options (not a provider's).
GATEWAY_TABLE = "gateway"

_SECRET_WORDS = ("key", "secret", "password", "token", "credential")


def is_secret_key(name: str) -> bool:
    """Whether a setting's value must never be shown (decided by its name, conservatively)."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _shown(values: Mapping[str, Any], secret_keys: frozenset[str] = frozenset()) -> str:
    parts = [
        f"{k}={'<redacted>' if k in secret_keys or is_secret_key(k) else repr(v)}"
        for k, v in values.items()
    ]
    return "{" + ", ".join(parts) + "}"


class SettingsLayer(enum.IntEnum):
    """Where a setting came from, least explicit first: a higher layer wins."""

    ENVIRONMENT = 0
    PROFILE = 1
    EXPLICIT = 2


class ProviderSettings(Mapping[str, Any]):
    """One provider's resolved settings, with where each value came from.

    A read-only mapping of the values set in some layer (``settings["base_url"]``),
    converted as their options declare; ``origin(key)`` names the layer a value came from
    ("settings", "profile 'x' in FILE", "env VAR") so error messages can say where to fix
    it. ``typed`` is the provider's typed settings object (its ``settings_type``, defaults
    filled in), or None when it declares none. Secret values never appear in ``repr``
    (declared secret, or named like one).
    """

    __slots__ = ("_layers", "_origins", "_secret_keys", "_values", "provider", "typed")

    def __init__(
        self,
        provider: str,
        values: Mapping[str, Any] | None = None,
        origins: Mapping[str, str] | None = None,
        layers: Mapping[str, SettingsLayer] | None = None,
        *,
        secret_keys: Iterable[str] = (),
        typed: Any = None,
    ) -> None:
        self.provider = provider
        self._values = dict(values or {})
        self._origins = dict(origins or {})
        self._layers = dict(layers or {})
        self._secret_keys = frozenset(secret_keys)
        self.typed = typed

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
        return f"ProviderSettings({self.provider!r}, {_shown(self._values, self._secret_keys)})"

    def is_secret(self, key: str) -> bool:
        """Whether ``key``'s value must never be shown (declared secret, or named like one)."""
        return key in self._secret_keys or is_secret_key(key)


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
    #: Where each key's value came from (key -> origin), when known: a plugin refusing a
    #: combination of keys can then say which place to edit.
    origins: Mapping[str, str] = attrs.field(factory=dict, converter=_copy_secrets)

    def __getitem__(self, key: str) -> str:
        return self.secrets[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.secrets)

    def __len__(self) -> int:
        return len(self.secrets)

    def __repr__(self) -> str:
        return f"Credentials(keys={sorted(self.secrets)!r}, source={self.source!r})"


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The config file used when neither ``config_file=`` nor the env variable names one.

    The user config folder of the system, from platformdirs: ``$XDG_CONFIG_HOME`` or
    ``~/.config`` on Linux, ``~/Library/Application Support`` on macOS, ``%APPDATA%`` on
    Windows. ``XDG_CONFIG_HOME`` is read from ``environ`` (not only the process's) on the
    systems that follow XDG, so an explicit environment decides alone; a relative one is
    ignored, as the XDG spec says.
    """
    import platformdirs
    import platformdirs.api
    import platformdirs.unix

    env = os.environ if environ is None else environ
    # The class platformdirs picked for this system (typed as its base: it varies).
    dirs: platformdirs.api.PlatformDirsABC = platformdirs.PlatformDirs(
        "report-gateway", appauthor=False, roaming=True
    )
    if isinstance(dirs, platformdirs.unix.Unix):
        return xdg_home(env, "XDG_CONFIG_HOME", ".config") / "report-gateway" / "config.toml"
    return dirs.user_config_path / "config.toml"


def xdg_home(environ: Mapping[str, str], name: str, default: str) -> Path:
    """``$name`` (``XDG_CONFIG_HOME``, ``XDG_DATA_HOME``), or ``~/default`` when it is unset,
    empty or relative: the XDG spec says a relative path is invalid and to be ignored
    (platformdirs would take it, relative to whatever folder the process started in)."""
    value = environ.get(name) or ""
    if os.path.isabs(value):
        return Path(value)
    return Path(os.path.expanduser("~")) / default


@attrs.frozen
class ProfileFile:
    """The selected profile of the TOML file: provider name -> that provider's table, and
    its ``gateway`` table of gateway-wide options."""

    path: Path | None
    profile: str
    providers: Mapping[str, Mapping[str, Any]] = attrs.field(repr=False, factory=dict)
    gateway: Mapping[str, Any] = attrs.field(repr=False, factory=dict)

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
            f"like [profiles.{name}.stripe] (or [profiles.{name}.{GATEWAY_TABLE}])"
        )
    providers = {key: table for key, table in chosen.items() if key != GATEWAY_TABLE}
    return ProfileFile(path, name, providers, chosen.get(GATEWAY_TABLE, {}))


def check_ca_bundle(ca_bundle: str | os.PathLike[str], origin: str) -> str:
    """The bundle's path, once it is known to hold PEM certificates (``origin``: the layer
    it came from, named in the error; empty for an explicit argument).

    Checked before any request: otherwise urllib3 would only fail at the first handshake,
    with an SSL error that does not say the bundle was the problem (and a typo in the path
    would look like a broken proxy). Verification itself stays on; the bundle only
    replaces the trusted roots.
    """
    path = Path(ca_bundle).expanduser()
    where = ""
    if origin.startswith("env "):
        where = f" (from ${origin[4:]})"
    elif origin:
        where = f" (from {origin})"
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise ConfigurationError(f"CA bundle {path}{where} {what}")
    import ssl

    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError:
        raise ConfigurationError(
            f"CA bundle {path}{where} holds no PEM certificate (expected "
            "-----BEGIN CERTIFICATE----- blocks)"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read CA bundle {path}{where}: {exc.strerror or exc}"
        ) from None
    return str(path)


# -- the resolver ---------------------------------------------------------------------------


def resolve_options(
    owner: str,
    options: Sequence[Option],
    *,
    explicit: Mapping[str, Any] | None,
    profile: Mapping[str, Any],
    profile_origin: str,
    environ: Mapping[str, str] | None = None,
    settings_type: type | None = None,
) -> ProviderSettings:
    """Layer ``options`` explicit > profile file > environment, converting each value.

    Keys no option declares pass through as given (the caller warns about them). A value
    its converter refuses is a ConfigurationError naming ``owner``, the option, the layer
    and (unless secret) the value. With ``settings_type`` the result's ``typed`` is that
    class built from the converted values, defaults filling the rest; an option without
    ``convert`` is structured from its field's type.
    """
    env = os.environ if environ is None else environ
    declared = {opt.key: opt for opt in options}
    types = field_types(settings_type) if settings_type is not None else {}
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    layers: dict[str, SettingsLayer] = {}
    for opt in options:
        if opt.env is not None and opt.env in env and (env[opt.env] or opt.empty_env):
            values[opt.key] = env[opt.env]
            origins[opt.key] = f"env {opt.env}"
            layers[opt.key] = SettingsLayer.ENVIRONMENT
    for key, value in profile.items():
        values[key] = value
        origins[key] = profile_origin
        layers[key] = SettingsLayer.PROFILE
    for key, value in (explicit or {}).items():
        if value is None:
            continue
        values[key] = value
        origins[key] = "settings"
        layers[key] = SettingsLayer.EXPLICIT
    for key, value in values.items():
        known = declared.get(key)
        if known is None:
            continue
        convert = known.convert
        if convert is None and key in types:
            field_type = types[key]

            def convert(raw: Any, tp: Any = field_type) -> Any:
                return structure_value(raw, tp)

        if convert is not None:
            values[key] = _converted(owner, known, value, origins[key], convert)
    secret_keys = [opt.key for opt in options if opt.hidden]
    typed = None
    if settings_type is not None:
        given = {key: values[key] for key in types if key in values}
        try:
            typed = settings_type(**given)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{owner}: settings do not fit together: {exc}") from None
    return ProviderSettings(owner, values, origins, layers, secret_keys=secret_keys, typed=typed)


def _converted(
    owner: str, opt: Option, value: Any, origin: str, convert: Callable[[Any], Any]
) -> Any:
    try:
        return convert(value)
    except Exception as exc:  # converters and cattrs raise several kinds; all mean "bad value"
        reason = _reason(exc)
        shown = "" if opt.hidden else f", not {value!r}"
        raise ConfigurationError(
            f"{owner}: setting {opt.key!r} (from {origin}) {reason}{shown}"
        ) from None


def _reason(exc: Exception) -> str:
    message = str(exc)
    if isinstance(exc, (ValueError, TypeError)) and message.startswith("must "):
        return message
    import cattrs

    if isinstance(exc, cattrs.BaseValidationError):
        details = cattrs.transform_error(exc)
        return "is invalid: " + "; ".join(details[:3])
    return f"is invalid ({type(exc).__name__})"


def layer_settings(
    provider: str,
    *,
    explicit: Mapping[str, Any] | None,
    profile: ProfileFile,
    env_vars: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
) -> ProviderSettings:
    """Merge the three layers for one provider from an env-var table (no conversion).

    ``env_vars`` maps a setting key to the environment variable that can supply it. Kept
    for callers of the former API; ``resolve_options`` is the resolver.
    """
    return resolve_options(
        provider,
        [Option(key, env=var) for key, var in env_vars.items()],
        explicit=explicit,
        profile=profile.providers.get(provider, {}),
        profile_origin=profile.describe(),
        environ=environ,
    )


# -- gateway-wide options ------------------------------------------------------------------


def _max_active_runs(value: Any) -> int | dict[str, int]:
    """One cap for every provider, or a table of provider name -> cap."""
    if isinstance(value, Mapping):
        return {str(name): _cap(cap) for name, cap in value.items()}
    return _cap(value)


def _cap(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("must be a positive whole number, or a table of provider = number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(
            "must be a positive whole number, or a table of provider = number"
        ) from None
    if number < 1 or (number != value and not isinstance(value, str)):
        raise ValueError("must be a positive whole number, or a table of provider = number")
    return number


def _retry(value: Any) -> RetryConfig:
    """A ``RetryConfig``, or its fields as a table (``{total = 3, budget_seconds = 60}``)."""
    from reporting_runtime import RetryConfig

    if isinstance(value, RetryConfig):
        return value
    if not isinstance(value, Mapping):
        raise TypeError("must be a table of RetryConfig fields, like {total = 3}")
    known = {field.name for field in attrs.fields(RetryConfig)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"must hold RetryConfig fields only ({sorted(known)}); {unknown} are not")
    retry: RetryConfig = structure_value(dict(value), RetryConfig)
    return retry


def _path(value: Any) -> str:
    if isinstance(value, os.PathLike):
        return str(os.fspath(value))
    return text(value)


def _journal(value: Any) -> str:
    """A journal file's path, or "" for none (``false``, ``""``, ``off``, ``none``)."""
    if value is None or value is False:
        return ""
    path = _path(value).strip()
    if path.lower() in ("", "off", "none", "false", "0"):
        return ""
    return str(Path(path).expanduser())


@attrs.frozen
class GatewayOptions:
    """The gateway-wide options, resolved (``Gateway(...)`` > profile ``gateway`` table >
    environment); the fields are the ``GATEWAY_OPTIONS`` table."""

    ca_bundle: str | None = option(
        env=CA_BUNDLE_ENV,
        convert=_path,
        doc="PEM file of CA certificates trusted instead of the system store",
    )
    max_active_runs: int | Mapping[str, int] | None = option(
        convert=_max_active_runs,
        doc="runs this process keeps active per provider and key (int or provider table)",
    )
    slot_timeout: float = option(
        default=600.0, convert=seconds, doc="seconds a start waits for a run slot"
    )
    load_plugins: tuple[str, ...] | None = option(
        env=LOAD_PLUGINS_ENV,
        convert=name_list,
        empty_env=True,
        doc="entry-point names of the plugins to load (unset: all; empty: none)",
    )
    user_agent: str = option(
        default=f"report-gateway/{__version__}",
        convert=text,
        doc="User-Agent prefix of every request",
    )
    retry: RetryConfig | None = option(  # noqa: RUF009 (a field specifier, like attrs.field)
        convert=_retry, doc="retries of failed requests (RetryConfig fields)"
    )
    journal: str | None = option(
        env=JOURNAL_ENV,
        convert=_journal,
        empty_env=True,
        doc="SQLite run journal (unset: journal.sqlite3 in the user data folder; empty: none)",
    )
    #: Where each value came from (option key -> layer), for messages.
    origins: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    def origin(self, key: str) -> str:
        """The layer ``key`` came from ("settings" for a Gateway keyword), "" when unset."""
        return self.origins.get(key, "")


#: Every gateway-wide option: key, environment variable, default, converter, secrecy.
GATEWAY_OPTIONS: tuple[Option, ...] = tuple(
    opt for opt in options_of(GatewayOptions) if opt.key != "origins"
)


def resolve_gateway_options(
    explicit: Mapping[str, Any],
    profile: ProfileFile,
    environ: Mapping[str, str] | None = None,
) -> GatewayOptions:
    """The gateway-wide options from the ``Gateway`` keywords, the profile's ``gateway``
    table and the environment; an unknown key in the table is a ConfigurationError (a
    typo there would silently leave, say, the CA bundle unset)."""
    unknown = sorted(set(profile.gateway) - {opt.key for opt in GATEWAY_OPTIONS})
    if unknown:
        raise ConfigurationError(
            f"{profile.describe()}: unknown gateway options {unknown} "
            f"(known: {[opt.key for opt in GATEWAY_OPTIONS]})"
        )
    resolved = resolve_options(
        GATEWAY_TABLE,
        GATEWAY_OPTIONS,
        explicit=explicit,
        profile=profile.gateway,
        profile_origin=profile.describe(),
        environ=environ,
    )
    values = {opt.key: resolved.get(opt.key, opt.default) for opt in GATEWAY_OPTIONS}
    origins = {key: resolved.origin(key) or "" for key in resolved}
    return GatewayOptions(**values, origins=origins)


class SettingsDeclaration(Protocol):
    """What a provider declares about its settings (``ProviderSpec`` is one)."""

    @property
    def options(self) -> Sequence[Option]: ...
    @property
    def settings_keys(self) -> Sequence[str]: ...
    @property
    def settings_type(self) -> type | None: ...


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
        """The profile file, once read (None before the first lookup)."""
        return self._profile

    def load(self) -> ProfileFile:
        """The selected profile, read the first time it is needed."""
        with self._lock:
            if self._profile is None:
                self._profile = load_profile(self._config_file, self._profile_name, self.environ)
            return self._profile

    def gateway_options(self, **explicit: Any) -> GatewayOptions:
        """The gateway-wide options (``explicit``: the Gateway keywords; None: not given)."""
        given = {key: value for key, value in explicit.items() if value is not None}
        return resolve_gateway_options(given, self.load(), self.environ)

    def for_provider(self, provider: str, spec: SettingsDeclaration) -> ProviderSettings:
        """The provider's layered settings; keys outside ``spec.settings_keys`` (when it
        declares some) warn: typos."""
        profile = self.load()
        known, settings_type = spec.settings_keys, spec.settings_type
        resolved = resolve_options(
            provider,
            spec.options,
            explicit=self._explicit.get(provider),
            profile=profile.providers.get(provider, {}),
            profile_origin=profile.describe(),
            environ=self.environ,
            settings_type=settings_type,
        )
        unknown = sorted(set(resolved) - set(known)) if known else []
        if unknown:
            warnings.warn(
                f"{provider}: unknown settings {unknown} (known: {list(known)})", stacklevel=3
            )
        return resolved
