"""The one connection pool a Gateway shares between its providers, created on first use."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .config import GatewayOptions, check_ca_bundle
from .errors import ConfigurationError

if TYPE_CHECKING:
    from reporting_runtime import Transport

__all__ = ["SharedTransport"]


class SharedTransport:
    """A ``reporting_runtime.Transport`` given by the caller, or made when first needed.

    A made one trusts the ``ca_bundle`` option (``ca_bundle=``, the profile's ``gateway``
    table, ``$REPORT_GATEWAY_CA_BUNDLE``, else the system store), checked here so a bad
    bundle fails before any request; a given one brings its own trust, so both given
    explicitly is a ConfigurationError (a bundle from the profile or the environment is
    then ignored). Only a made one is closed.
    """

    def __init__(self, transport: Transport | None, options: GatewayOptions) -> None:
        bundle, origin = options.ca_bundle, options.origin("ca_bundle")
        if transport is not None and bundle is not None and origin == "settings":
            raise ConfigurationError(
                "give either transport= or ca_bundle=, not both: a Transport you build "
                "takes its CA bundle as Transport(ca_certs=...)"
            )
        self._ca_bundle = None
        if transport is None and bundle is not None:
            self._ca_bundle = check_ca_bundle(bundle, "" if origin == "settings" else origin)
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
