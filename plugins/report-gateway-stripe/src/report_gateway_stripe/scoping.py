"""Aiming each request at the right account: the scope a call uses and its headers.

The scope comes from the call, else from the provider's settings (``account`` for v1,
``context`` for v2). Its headers come from the ``report_gateway_scope_headers`` hook (so a
plugin can refine them): the header the generated client knows goes in as its keyword
argument; anything else a hook adds rides along through ``ExtraHeadersPolicy`` for the
duration of one call.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Hashable, Iterator, Mapping

import attrs
from report_gateway.models import Scope
from report_gateway.provider import ProviderContext
from reporting_runtime import Policy, Request
from reporting_runtime.messages import with_header

from .plugin import SCOPE_FIELDS

__all__ = ["ExtraHeadersPolicy", "ScopedHeaders", "resolve_scope"]

_EXTRA: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "report_gateway_stripe_extra_headers", default=None
)


class ExtraHeadersPolicy(Policy):
    """Adds the headers set by ``ScopedHeaders.applied()`` in the current thread/context."""

    def on_request(self, request: Request) -> Request:
        extra = _EXTRA.get()
        if not extra:
            return request
        headers = request.headers
        for name, value in extra.items():
            headers = with_header(headers, name, value)
        return attrs.evolve(request, headers=headers)


@attrs.frozen
class ScopedHeaders:
    """A scope's headers split into the client's keyword argument and the rest."""

    value: str | None
    extra: Mapping[str, str] = attrs.field(factory=dict)

    def cache_key(self, report_id: str) -> Hashable:
        """A report's definition is kept per account/context and any header a hook adds."""
        return (report_id, self.value, tuple(sorted(self.extra.items())))

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Send ``extra`` with the requests made inside this block (same thread only)."""
        if not self.extra:
            yield
            return
        token = _EXTRA.set(dict(self.extra))
        try:
            yield
        finally:
            _EXTRA.reset(token)


def resolve_scope(
    context: ProviderContext, provider: str, scope: Scope
) -> tuple[Scope, ScopedHeaders]:
    """The scope a call uses and its headers, for ``stripe`` or ``stripe-v2``.

    The provider's one scope field (``SCOPE_FIELDS``) is taken from the settings when the
    call left it empty; the hooks then answer the headers (a bad scope raises ScopeError
    right here, before any request).
    """
    field, header = SCOPE_FIELDS[provider]
    if not getattr(scope, field):
        configured = context.setting(field)
        if configured:
            scope = attrs.evolve(scope, **{field: str(configured)})
    value: str | None = None
    extra: dict[str, str] = {}
    for name, text in context.scope_headers(scope).items():
        if name.lower() == header.lower():
            value = text
        else:
            extra[name] = text
    return scope, ScopedHeaders(value, extra)
