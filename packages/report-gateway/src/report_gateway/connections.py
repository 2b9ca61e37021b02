"""The one connection pool a Gateway shares between its providers, created on first use."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .config import resolve_ca_bundle
from .errors import ConfigurationError

if TYPE_CHECKING:
    from reporting_runtime import Transport

__all__ = ["SharedTransport"]


class SharedTransport:
    """A ``reporting_runtime.Transport`` given by the caller, or made when first needed.

    A made one trusts ``ca_bundle`` (else ``$REPORT_GATEWAY_CA_BUNDLE``, else the system
    store), checked here so a bad bundle fails before any request; a given one brings its
    own trust, so both at once is a ConfigurationError. Only a made one is closed.
    """

    def __init__(
        self,
        transport: Transport | None,
        ca_bundle: str | os.PathLike[str] | None,
        environ: Mapping[str, str] | None,
    ) -> None:
        if transport is not None and ca_bundle is not None:
            raise ConfigurationError(
                "give either transport= or ca_bundle=, not both: a Transport you build "
                "takes its CA bundle as Transport(ca_certs=...)"
            )
        self._ca_bundle = None if transport is not None else resolve_ca_bundle(ca_bundle, environ)
        self._transport = transport
        self._owned = transport is None
        self._lock = threading.Lock()

    def get(self) -> Transport:
        transport = self._transport
        if transport is not None:
            return transport
        with self._lock:
            if self._transport is None:
                # Lazy: the runtime (urllib3) loads only when a provider actually sends.
                from reporting_runtime import Transport

                self._transport = Transport(ca_certs=self._ca_bundle)
            return self._transport

    def close(self) -> None:
        """Release the pool if it was made here (a given one belongs to the caller)."""
        with self._lock:
            transport, self._transport = self._transport, None
        if transport is not None and self._owned:
            for name in ("close", "clear"):
                method = getattr(transport, name, None)
                if callable(method):
                    method()
                    break
