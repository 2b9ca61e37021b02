"""Finding a provider's credentials through the hooks, and saying where we looked when none
answered (settings key, profile file entry, environment variable, credential plugins)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pluggy

from .config import Credentials, ProfileFile, ProviderSettings, default_config_path
from .errors import CredentialsError
from .provider import ProviderSpec

__all__ = ["resolve_credentials"]


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
