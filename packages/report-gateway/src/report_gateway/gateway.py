"""The ``Gateway`` facade (stub: the interfaces land first, the implementation follows)."""

from __future__ import annotations

import pluggy

from .hookspecs import PROJECT

hookimpl = pluggy.HookimplMarker(PROJECT)


class Gateway:
    """One object to run any provider's reports; see ARCHITECTURE's public API."""


class PluginInfo:
    """One row of ``Gateway.plugins()``."""
