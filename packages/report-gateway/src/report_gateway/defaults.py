"""The gateway's own hook answers, registered like any plugin and asked last (``trylast``).

Each consults the provider's ``ProviderSpec`` (its credential keys, auth factory, scope
headers, status table), so a provider plugin declares data and implements no hook; a
plugin that wants different answers implements the hook and is asked first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .config import Credentials, ProviderSettings
from .hookspecs import hookimpl
from .models import RunStatus, Scope
from .provider import ProviderSpec

if TYPE_CHECKING:
    from reporting_runtime import AuthPolicy

__all__ = ["BuiltinHooks"]


_NO_SPEC = ProviderSpec(name="", factory=lambda context: None)  # type: ignore[arg-type,return-value]


class BuiltinHooks:
    """Answers from the provider's spec; ``find_spec`` finds it by name (None: unknown)."""

    def __init__(self, find_spec: Callable[[str], ProviderSpec | None]) -> None:
        self._find_spec = find_spec

    def _spec_of(self, provider: str) -> ProviderSpec:
        """The provider's spec; an unknown provider declares nothing (no keys, no table)."""
        return self._find_spec(provider) or _NO_SPEC

    @hookimpl(trylast=True)
    def report_gateway_credentials(
        self, provider: str, settings: ProviderSettings
    ) -> Credentials | None:
        """Credentials from the layered settings: explicit, then profile file, then env."""
        keys = self._spec_of(provider).credential_keys
        if not all(settings.get(key) for key in keys):
            return None
        origin = {key: settings.origin(key) or "settings" for key in keys}
        return Credentials(
            {key: str(settings[key]) for key in keys},
            source=", ".join(sorted(set(origin.values()))) or "none needed",
            origins=origin,
        )

    @hookimpl(trylast=True)
    def report_gateway_auth(self, provider: str, credentials: Credentials) -> AuthPolicy | None:
        """The spec's auth factory, if it has one."""
        return self._spec_of(provider).make_auth(credentials)

    @hookimpl(trylast=True)
    def report_gateway_scope_headers(self, provider: str, scope: Scope) -> Mapping[str, str] | None:
        """The spec's scope field -> header table (None when it declares none)."""
        return self._spec_of(provider).headers_for(scope)

    @hookimpl(trylast=True)
    def report_gateway_map_status(self, provider: str, raw_status: str) -> RunStatus | None:
        """The spec's status table, then the neutral words themselves (``CANCELLED`` too)."""
        status = self._spec_of(provider).status_of(raw_status)
        if status is not None:
            return status
        word = raw_status.strip().lower()
        if word == "cancelled":
            return RunStatus.CANCELED
        try:
            return RunStatus(word)
        except ValueError:
            return None
