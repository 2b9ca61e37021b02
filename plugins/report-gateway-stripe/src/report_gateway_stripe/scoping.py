"""Aiming each request at the right account: the scope a call uses and its headers.

The scope comes from the call, else from the provider's settings (``account`` for v1,
``context`` for v2: ``BaseDriver.resolve_scope``). Its headers come from the
``report_gateway_scope_headers`` hook (so a plugin can refine them): the header the
generated client knows goes in as its keyword argument, anything else a hook adds as the
call's ``extra_headers=``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import attrs
from report_gateway.provider import BaseDriver, Scope

__all__ = ["ScopedHeaders", "StripeDriver"]


@attrs.frozen
class ScopedHeaders:
    """A scope's headers split into the client's keyword argument and the rest."""

    value: str | None
    extra: Mapping[str, str] = attrs.field(factory=dict)

    def cache_key(self, report_id: str) -> Hashable:
        """A report's definition is kept per account/context and any header a hook adds."""
        return (report_id, self.value, tuple(sorted(self.extra.items())))


class StripeDriver(BaseDriver):
    """What v1 and v2 share: one scope header, which the client takes as a keyword, and
    creates sent with an ``Idempotency-Key`` (the same key replays the first run)."""

    idempotent_create = True

    def scoped(self, scope: Scope) -> tuple[Scope, ScopedHeaders]:
        """The scope a call uses and its headers (a bad scope raises ScopeError here)."""
        where = self.resolve_scope(scope)
        (header,) = self.context.spec.scope_headers.values()
        value: str | None = None
        extra: dict[str, str] = {}
        for name, text in self.scope_headers(where).items():
            if name.lower() == header.lower():
                value = text
            else:
                extra[name] = text
        return where, ScopedHeaders(value, extra)
