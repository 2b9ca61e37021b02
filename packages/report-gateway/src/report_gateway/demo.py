"""What a provider runs in ``report-gateway demo``: declared on its ``ProviderSpec.demo``.

The core CLI knows no provider: it starts the embedded sandbox, builds each demo's settings
from the sandbox's base URL, and runs every loaded provider that declares a ``DemoSpec``, so
a third-party plugin takes part by declaring one too (its settings may ignore the URL when
its provider needs no server).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .models import Scope

__all__ = ["BASE_URL", "DemoSpec"]

#: The placeholder in ``DemoSpec.settings`` values replaced by the sandbox's root URL.
BASE_URL = "{base_url}"


@attrs.frozen(kw_only=True)
class DemoSpec:
    """One report the demo runs end to end, described as data so no callback can reach out.

    - ``report``: the report id; with ``search=True`` a name to search for instead (Zuora's
      ids are per-tenant hex), the exact match preferred. Shown in the table, names the file.
    - ``parameters``: fixed run parameters. A required parameter left out is filled when the
      template fixes it (a default, or a single allowed value).
    - ``window``: the names of the start and end parameters to fill with the last seven whole
      days of data the template announces, as unix seconds or RFC 3339 (``window_as``).
    - ``settings``: the provider's settings against the sandbox; ``{base_url}`` in a string
      value becomes the sandbox's root URL (append the API prefix the provider serves under).
      Credentials here are the sandbox's published test ones, never a real key.
    - ``scope``: the scope the run starts in, when the provider needs one.
    """

    report: str
    search: bool = False
    parameters: Mapping[str, Any] = attrs.field(factory=dict)
    window: tuple[str, str] | None = None
    window_as: Literal["unix", "rfc3339"] = "rfc3339"
    settings: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    scope: Scope | None = None

    def settings_for(self, base_url: str) -> dict[str, Any]:
        """The settings with the placeholder replaced (a plain replace: other braces stay)."""
        return {
            key: value.replace(BASE_URL, base_url) if isinstance(value, str) else value
            for key, value in self.settings.items()
        }
