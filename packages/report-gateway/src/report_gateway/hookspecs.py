"""Every hook the gateway calls, in one place: the whole plugin surface.

Plugins implement any of these with ``@hookimpl`` (from this module; ``report_gateway.hookimpl``
is the same object) and register through the
``report_gateway`` entry-point group (or ``Gateway(plugins=[...])``). Hooks marked
*firstresult* stop at the first implementation returning something other than None; later
registered plugins are asked first, and the gateway's built-in defaults are ``trylast``, so
any plugin can override them. Pluggy lets an implementation accept fewer arguments than the
spec names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from reporting_runtime import AuthPolicy

    from .config import Credentials, ProviderSettings
    from .models import ReportRun, RunStatus, Scope
    from .provider import ProviderSpec

PROJECT = "report_gateway"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Marks a plugin's hook implementation; importing it loads pluggy only, not the gateway.
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl", "hookspec"]


@hookspec
def report_gateway_providers() -> Sequence[ProviderSpec] | None:
    """Announce the providers this plugin adds.

    Called once per Gateway, the first time providers are needed (listing them, or using
    one). Return a sequence of ``report_gateway.provider.ProviderSpec`` (or None); no driver
    is created until the provider is used. Two plugins announcing the same name is a
    ConfigurationError.
    """


@hookspec(firstresult=True)
def report_gateway_credentials(
    provider: str, settings: ProviderSettings
) -> Credentials | Mapping[str, str] | None:
    """Find the credentials for ``provider`` (a vault, a keyring, a file...).

    Called once, when the provider's driver is created. ``settings`` are the provider's
    layered settings (explicit > profile file > env). Return ``Credentials`` (or a plain
    mapping of credential name -> secret) or None to let the next source answer; the built-in
    source (trylast) takes the ``credential_keys`` from the settings. When nothing answers,
    the gateway raises ``CredentialsError`` naming the settings and env vars it tried.
    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def report_gateway_auth(provider: str, credentials: Credentials) -> AuthPolicy | None:
    """Build the ``reporting_runtime.AuthPolicy`` that signs the provider's API requests.

    Called once, when the provider's driver is created, after the credentials are found;
    the result reaches the driver as ``ProviderContext.auth``. The built-in answer (trylast)
    calls the provider's ``ProviderSpec.auth``; implement this hook only to override it (and
    return None for providers you leave alone). Stops at first non-None result.
    """


@hookspec(firstresult=True)
def report_gateway_scope_headers(provider: str, scope: Scope) -> Mapping[str, str] | None:
    """Turn a ``Scope`` into the headers that aim a request at an account, context or entity.

    Called by drivers (``ProviderContext.scope_headers``) before each scoped request. Raise
    ``ScopeError`` for a scope the provider cannot accept (Zuora entity id AND name, say), so
    nothing is sent. The built-in answer (trylast) follows the provider's
    ``ProviderSpec.scope_headers`` and ``check_scope``; a plugin answering first may add
    headers of its own (routing, tracing) and returns None for scopes it leaves alone. If
    nobody answers, an empty scope means no headers and a non-empty one is a ScopeError.
    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def report_gateway_map_status(provider: str, raw_status: str) -> RunStatus | None:
    """Map a provider's status word (``pending``, ``PROCESSINGDATA``...) to a ``RunStatus``.

    Called by drivers (``ProviderContext.map_status``) for every run snapshot. The built-in
    answer (trylast) looks the word up in the provider's ``ProviderSpec.statuses``, then
    accepts the RunStatus values themselves; anything else warns once and counts as
    RUNNING. A plugin answering first returns None for a word it does not know.
    Stops at first non-None result.
    """


@hookspec
def report_gateway_run_changed(run: ReportRun, previous: ReportRun | None) -> None:
    """Observe a run's status change (logging, metrics, notifications).

    Called after ``start`` (``previous`` None), on every status change seen while waiting,
    and after ``cancel``; ``previous`` is the last snapshot with another status. Return
    values are ignored; an exception propagates to the caller, so observers should be
    quick and quiet.
    """
