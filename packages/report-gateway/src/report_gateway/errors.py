"""The gateway's errors: one base class to catch, subclasses that say what to do next.

Each error carries what a user or support needs (the provider, the run id, the parameter and
its allowed values, the provider's request id) and never a credential: messages are built
only from names, ids and provider reasons.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import ReportRun, RunStatus

__all__ = [
    "ConfigurationError",
    "CredentialsError",
    "DownloadError",
    "GatewayError",
    "IntegrityError",
    "NotSupportedError",
    "ParameterError",
    "ProviderError",
    "RunCanceledError",
    "RunFailedError",
    "RunLimitError",
    "RunMayExistError",
    "RunNotFoundError",
    "ScopeError",
    "UnknownProviderError",
    "UnknownReportError",
    "WaitTimeoutError",
    "provider_errors",
]


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose: catch this one to catch them all."""


class ConfigurationError(GatewayError):
    """The gateway cannot be set up as asked: a bad settings file, profile or setting."""


class CredentialsError(ConfigurationError):
    """No credentials were found for a provider; ``tried`` lists every place looked at."""

    def __init__(self, provider: str, tried: Sequence[str]) -> None:
        self.provider = provider
        self.tried = tuple(tried)
        where = "; ".join(self.tried) if self.tried else "nowhere"
        super().__init__(f"no credentials for provider {provider!r}: looked in {where}")


class UnknownProviderError(ConfigurationError):
    """A provider name no installed plugin registers (usually a typo or a missing plugin)."""

    def __init__(self, provider: str, available: Iterable[str]) -> None:
        self.provider = provider
        self.available = tuple(sorted(available))
        listed = ", ".join(self.available) if self.available else "none (install a plugin)"
        super().__init__(f"unknown provider {provider!r}; available providers: {listed}")


class UnknownReportError(GatewayError):
    """The provider has no report (template) with this id."""

    def __init__(self, provider: str, report_id: str, hint: str | None = None) -> None:
        self.provider = provider
        self.report_id = report_id
        message = f"{provider}: unknown report {report_id!r}"
        super().__init__(f"{message}; {hint}" if hint else message)


class RunNotFoundError(GatewayError, LookupError):
    """No such run (a wrong id, another account's run, or no completed run yet)."""


class NotSupportedError(GatewayError):
    """The provider has no such operation (Stripe v1 runs cannot be canceled, say)."""

    def __init__(self, provider: str, operation: str, hint: str | None = None) -> None:
        self.provider = provider
        self.operation = operation
        message = f"{provider}: {operation} is not supported by this provider"
        super().__init__(f"{message}; {hint}" if hint else message)


class ParameterError(GatewayError, ValueError):
    """A report parameter is missing, unknown, of the wrong type or out of range.

    Raised before any run is created, naming the parameter and what it accepts.
    """

    def __init__(
        self,
        parameter: str,
        message: str,
        *,
        allowed: Sequence[Any] | str | None = None,
        provider: str | None = None,
        report_id: str | None = None,
    ) -> None:
        self.parameter = parameter
        self.allowed = allowed
        self.provider = provider
        self.report_id = report_id
        where = f"{provider} {report_id}: " if provider and report_id else ""
        text = f"{where}parameter {parameter!r}: {message}"
        if allowed is not None:
            shown = allowed if isinstance(allowed, str) else ", ".join(map(str, allowed))
            text += f" (allowed: {shown})"
        super().__init__(text)


class ScopeError(GatewayError, ValueError):
    """The scope (account, context, entity) is invalid for the provider; nothing was sent."""


class ProviderError(GatewayError):
    """The provider's API refused or failed a request (after the runtime's retries).

    ``cause`` is the ``reporting_runtime`` error; ``status``, ``code`` and ``request_id`` are
    copied from it because support asks for them first.
    """

    def __init__(self, cause: BaseException, *, provider: str | None = None) -> None:
        self.cause = cause
        self.status: int | None = getattr(cause, "status", None)
        self.code: str | None = getattr(cause, "code", None)
        self.request_id: str | None = getattr(cause, "request_id", None)
        self.provider = provider or getattr(cause, "provider", None)
        self.operation: str | None = getattr(cause, "operation", None)
        text = str(cause) or type(cause).__name__
        if self.provider and not text.startswith(self.provider):
            text = f"{self.provider}: {text}"
        super().__init__(text)


class RunFailedError(GatewayError):
    """The run ended FAILED; ``reason`` is the provider's own explanation."""

    def __init__(self, run: ReportRun, reason: str | None = None) -> None:
        self.run = run
        self.reason = reason or run.error or "the provider gave no reason"
        super().__init__(
            f"{run.provider} run {run.id} ({run.report_id}) failed "
            f"[{run.raw_status}]: {self.reason}"
        )


class RunCanceledError(GatewayError):
    """The run ended CANCELED (by a user or the provider) and has no result."""

    def __init__(self, run: ReportRun) -> None:
        self.run = run
        super().__init__(f"{run.provider} run {run.id} ({run.report_id}) was canceled")


class WaitTimeoutError(GatewayError, TimeoutError):
    """The wait's deadline passed; the run goes on at the provider and can be resumed."""

    def __init__(
        self,
        provider: str,
        run_id: str,
        last_status: RunStatus | str | None = None,
        *,
        run: ReportRun | None = None,
        elapsed: float | None = None,
    ) -> None:
        self.provider = provider
        self.run_id = run_id
        self.last_status = last_status
        self.run = run
        self.elapsed = elapsed
        status = getattr(last_status, "value", last_status) or "unknown"
        after = f" after {elapsed:.0f}s" if elapsed is not None else ""
        super().__init__(
            f"{provider} run {run_id} is still {status}{after}; it keeps running: resume with "
            f"gw.wait(gw.get({provider!r}, {run_id!r})) or `report-gateway wait {provider} "
            f"{run_id}`"
        )


class DownloadError(GatewayError):
    """The result could not be fetched or written; no partial file was left at the target."""


class IntegrityError(DownloadError):
    """The bytes received do not match what the provider announced (size or checksum)."""


class RunMayExistError(GatewayError):
    """Creating a run failed ambiguously: the provider may have created it anyway.

    Raised instead of blindly retrying a request that has no idempotency key, so a nightly
    job never creates a run twice; ``report_id`` and ``started_after`` say what to look for.
    ``hint`` is how to look, from the provider, which knows its API: not every provider can
    list runs (Zuora only shows a report's last completed run). Without one, the message
    points at ``report-gateway runs <provider>``.
    """

    def __init__(
        self,
        provider: str,
        report_id: str,
        detail: str,
        *,
        started_after: Any = None,
        hint: str | None = None,
    ) -> None:
        self.provider = provider
        self.report_id = report_id
        self.started_after = started_after
        self.hint = hint or f"check `report-gateway runs {provider}` before starting another"
        super().__init__(
            f"{provider}: creating a run of {report_id!r} failed ambiguously ({detail}); a run "
            f"may exist: {self.hint}"
        )


class RunLimitError(GatewayError):
    """No run slot freed up in time under ``Gateway(max_active_runs=...)``; nothing was created.

    ``active`` holds the ids of the runs that kept the slots (wait for them, or raise the cap).
    """

    def __init__(self, provider: str, limit: int, active: Sequence[str], waited: float) -> None:
        self.provider = provider
        self.limit = limit
        self.active = tuple(active)
        self.waited = waited
        shown = ", ".join(self.active) or "runs still being created"
        super().__init__(
            f"{provider}: {limit} run(s) of this process are still active ({shown}); no slot "
            f"freed within {waited:.0f}s (max_active_runs); no run was created"
        )


@contextlib.contextmanager
def provider_errors(provider: str) -> Iterator[None]:
    """Turn runtime errors raised inside the block into ``ProviderError`` (gateway errors
    and anything else pass through unchanged)."""
    try:
        yield
    except GatewayError:
        raise
    except Exception as exc:
        if _is_runtime_error(exc):
            raise ProviderError(exc, provider=provider) from exc
        raise


def _is_runtime_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from reporting_runtime (checked without importing it)."""
    runtime = sys.modules.get("reporting_runtime")
    base = getattr(runtime, "ReportingError", None)
    return isinstance(base, type) and isinstance(exc, base)
