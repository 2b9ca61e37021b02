"""Each provider's driver, made once per Gateway and shared by its threads.

A driver is made from its context (settings, credentials, auth: ``credentials.
provider_context``), which is kept beside it: the Gateway reads its credential id, the
secrets it holds and its scope check there. Which optional keywords each driver's methods
take (``DriverCalls``) is found once, when it is made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import provider_errors
from .provider import DriverCalls, ProviderContext, ProviderDriver, ProviderSpec

__all__ = ["Drivers"]


class Drivers:
    """The drivers made so far, keyed by provider name; ``make_context`` resolves a
    provider's context when its driver is first needed (under a lock, so only once)."""

    def __init__(
        self,
        spec_for: Callable[[str], ProviderSpec],
        make_context: Callable[[ProviderSpec], ProviderContext],
    ) -> None:
        self._spec_for, self._make_context = spec_for, make_context
        self._drivers: dict[str, ProviderDriver] = {}
        self._contexts: dict[str, ProviderContext] = {}
        #: Which optional keywords (``progress=``, ``deadline=``...) each driver's methods take.
        self.calls: dict[str, DriverCalls] = {}
        self._lock = threading.RLock()

    def get(self, provider: str) -> ProviderDriver:
        driver = self._drivers.get(provider)
        if driver is not None:
            return driver
        spec = self._spec_for(provider)
        with self._lock:
            driver = self._drivers.get(provider)
            if driver is None:
                with provider_errors(provider):
                    # Kept even when the factory fails: its secrets are held all the same.
                    context = self._contexts[provider] = self._make_context(spec)
                    driver = spec.factory(context)
                self.calls[provider] = DriverCalls.of(driver)
                self._drivers[provider] = driver
        return driver

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
