"""Each provider's driver, made once per Gateway and shared by its threads.

A driver is made from its context (settings, credentials, auth: ``credentials.
provider_context``), kept beside it: the credential id, the secrets held and the scope
check are read there. Every call into a driver goes through here too, so its runtime
errors become ``ProviderError`` with the held secrets scrubbed, in one place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .config import GatewayOptions, SettingsSource
from .credentials import provider_context
from .errors import provider_errors, same_run
from .models import ReportRun, Scope
from .plugins import PluginRegistry
from .provider import DriverCalls, ProviderContext, ProviderDriver, ProviderSpec, ResultResponse
from .transfer import result_opener

if TYPE_CHECKING:
    from reporting_runtime import Transport

__all__ = ["Drivers"]

T = TypeVar("T")


class Drivers:
    """The drivers made so far, by provider name (each under a lock, so only once)."""

    def __init__(
        self,
        registry: PluginRegistry,
        source: SettingsSource,
        options: GatewayOptions,
        transport: Callable[[], Transport],
        scrub: Callable[[str], str],
    ) -> None:
        self._registry, self._source, self._options = registry, source, options
        self._transport, self._scrub = transport, scrub
        self._drivers: dict[str, ProviderDriver] = {}
        self._contexts: dict[str, ProviderContext] = {}
        #: Which optional keywords (``progress=``, ``deadline=``...) each driver's methods take.
        self.calls: dict[str, DriverCalls] = {}
        self._lock = threading.RLock()

    def get(self, provider: str) -> ProviderDriver:
        driver = self._drivers.get(provider)
        if driver is not None:
            return driver
        spec = self._registry.spec(provider)
        with self._lock:
            driver = self._drivers.get(provider)
            if driver is None:
                with provider_errors(provider):
                    # Kept even when the factory fails: its secrets are held all the same.
                    context = self._contexts[provider] = self._context(spec)
                    driver = spec.factory(context)
                self.calls[provider] = DriverCalls.of(driver)
                self._drivers[provider] = driver
        return driver

    def _context(self, spec: ProviderSpec) -> ProviderContext:
        plugins = self._registry.implementing("report_gateway_credentials")
        return provider_context(
            self._registry.pm, spec, self._source, self._options, self._transport,
            credential_plugins=plugins,
        )  # fmt: skip

    def context(self, provider: str) -> ProviderContext:
        """The provider's context, its driver made first if need be."""
        self.get(provider)
        return self._contexts[provider]

    def contexts(self) -> list[ProviderContext]:
        """The contexts resolved so far (a provider not used yet has none)."""
        return list(self._contexts.values())

    def credential_id(self, provider: str) -> str:
        """The provider's credential id, or "" when no driver was made for it yet."""
        context = self._contexts.get(provider)
        return "" if context is None else context.credential_id

    def keywords(self, provider: str, method: str, **values: Any) -> dict[str, Any]:
        """``values`` the driver's ``method`` takes (``DriverCalls``), its driver made first."""
        self.get(provider)
        return self.calls[provider].keywords(method, **values)

    def where(self, provider: str, scope: Scope | None) -> Scope:
        """``scope`` (None: empty) checked against the fields the provider declares, before
        any driver call (ScopeError): no driver can then ignore a field and report on the
        wrong account. Every scoped call checks here; starts through ``journal.Starts``."""
        where = scope or Scope()
        if not where.is_empty:
            self.context(provider).scope_headers(where)
        return where

    def call(self, provider: str, action: Callable[[ProviderDriver], T]) -> T:
        driver = self.get(provider)
        with provider_errors(provider, scrub=self._scrub):
            return action(driver)

    def run(self, provider: str, run_id: str, scope: Scope, **extra: Any) -> ReportRun:
        """One snapshot of ``run_id``; an answer about another run is refused (``same_run``):
        a server that answers with someone else's run would have us download its file."""
        return self.call(provider, lambda d: same_run(d.get(run_id, scope=scope, **extra), run_id))

    def iterate(self, provider: str, items: Callable[[], Iterator[T]]) -> Iterator[T]:
        with provider_errors(provider, scrub=self._scrub):
            yield from items()

    def opener(
        self, run: ReportRun, timeout: float | None, stall: float | None
    ) -> Callable[..., ResultResponse]:
        """The run's ``open_result`` (``transfer.result_opener``), given the keywords its
        driver takes."""
        return result_opener(run, self.get, self.calls, self._scrub, timeout, stall)
