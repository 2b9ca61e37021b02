"""Keep HTTP auto-instrumentation (OpenTelemetry's urllib3 instrumentor) off the requests
whose URL is itself a credential.

A pre-signed download URL carries its signature in the query; the urllib3 instrumentor
records ``url.full`` verbatim, so a trace exporter would ship a working download link to
wherever traces go. Such a request is sent with instrumentation suppressed for its
duration: always when the sender marks the URL as the credential
(``Request.url_is_credential``: a driver's pre-signed download), and otherwise when the
URL looks like one (user-info, a signature- or token-named query key): the marked rule is
the one to rely on, since a pre-signed URL's keys can be named anything. The runtime
imports no OpenTelemetry: when nothing has imported ``opentelemetry.context`` there is no
instrumentation to suppress.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from reporting_runtime.redaction import redact_url

__all__ = ["carries_credential", "quiet_if_secret"]

_SUPPRESS_KEYS = ("_SUPPRESS_INSTRUMENTATION_KEY", "_SUPPRESS_HTTP_INSTRUMENTATION_KEY")


def carries_credential(url: str) -> bool:
    """Whether the URL holds a secret (user-info, a signature or token in the query)."""
    return redact_url(url) != url.split("#", 1)[0]


def quiet_if_secret(url: str, *, credential: bool = False) -> AbstractContextManager[None]:
    """Suppress OpenTelemetry instrumentation while sending to ``url`` if it is a secret
    (``credential``: the sender says it is, whatever it looks like).

    Every request passes here: with no OpenTelemetry loaded, or a URL that is no
    credential, it costs one shared do-nothing context manager, not a generator's."""
    context = sys.modules.get("opentelemetry.context")
    if context is None or not (credential or carries_credential(url)):
        return _NOTHING
    return _quiet(context)


_NOTHING: AbstractContextManager[None] = nullcontext()


@contextmanager
def _quiet(context: Any) -> Iterator[None]:
    values = context.get_current()
    for name in _SUPPRESS_KEYS:
        key = getattr(context, name, None)
        if key is not None:
            values = context.set_value(key, True, values)
    token = context.attach(values)
    try:
        yield
    finally:
        context.detach(token)
