"""Finding a provider's credentials through the hooks, and saying where we looked when none
answered (settings key, profile file entry, environment variable, credential plugins); the
context a driver is made from; and the secrets a Gateway holds, so output can hide them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import pluggy

from .config import (
    Credentials,
    GatewayOptions,
    ProfileFile,
    ProviderSettings,
    SettingsSource,
    default_config_path,
)
from .errors import CredentialsError
from .provider import ProviderContext, ProviderSpec

if TYPE_CHECKING:
    from reporting_runtime import Transport

__all__ = ["held_secrets", "provider_context", "resolve_credentials"]


def resolve_credentials(
    pm: pluggy.PluginManager,
    spec: ProviderSpec,
    settings: ProviderSettings,
    *,
    profile: ProfileFile | None,
    environ: Mapping[str, str] | None,
    credential_plugins: Sequence[str] = (),
) -> Credentials:
    """The first answer of ``report_gateway_credentials``, or a CredentialsError naming
    every place tried (``credential_plugins``: the plugins that were asked too)."""
    answer = pm.hook.report_gateway_credentials(provider=spec.name, settings=settings)
    if isinstance(answer, Credentials):
        return answer
    if answer is not None:
        return Credentials({str(k): str(v) for k, v in dict(answer).items()}, source="plugin")
    tried: list[str] = []
    for key in spec.credential_keys:
        if settings.get(key):
            continue
        where = [f"settings[{spec.name!r}][{key!r}]"]
        if profile is not None and profile.path is not None:
            where.append(f"[profiles.{profile.profile}.{spec.name}] {key} in {profile.path}")
        elif profile is not None:
            where.append(f"config file (none at {default_config_path(environ)})")
        if key in spec.env_vars:
            where.append(f"env {spec.env_vars[key]}")
        tried.append(f"{key}: " + ", ".join(where))
    if credential_plugins:
        tried.append("credential plugins: " + ", ".join(credential_plugins))
    raise CredentialsError(spec.name, tried)


def provider_context(
    pm: pluggy.PluginManager,
    spec: ProviderSpec,
    source: SettingsSource,
    options: GatewayOptions,
    transport: Callable[[], Transport],
    *,
    credential_plugins: Sequence[str] = (),
) -> ProviderContext:
    """The context a provider's driver factory gets. Auth, scope headers and status words
    are the hooks' answers (so any plugin can refine them), resolved here once per driver."""
    settings = source.for_provider(spec.name, spec)
    credentials = resolve_credentials(
        pm,
        spec,
        settings,
        profile=source.profile,
        environ=source.environ,
        credential_plugins=credential_plugins,
    )
    hook = pm.hook
    return ProviderContext(
        spec=spec,
        settings=settings,
        credentials=credentials,
        auth=hook.report_gateway_auth(provider=spec.name, credentials=credentials),
        scope_headers=lambda scope: hook.report_gateway_scope_headers(
            provider=spec.name, scope=scope
        ),
        map_status=lambda raw: hook.report_gateway_map_status(provider=spec.name, raw_status=raw),
        transport_factory=transport,
        retry=options.retry,
        user_agent=options.user_agent,
    )


def held_secrets(contexts: Iterable[ProviderContext]) -> frozenset[str]:
    """The credentials resolved for ``contexts`` and what their auth policies hold (a token
    obtained since, ``AuthPolicy.secret_values``): what ``Gateway.scrub`` hides."""
    values: set[str] = set()
    for context in contexts:
        values.update(v for v in context.credentials.values() if isinstance(v, str))
        if context.auth is not None:
            values.update(context.auth.secret_values())
    return frozenset(v for v in values if v)
