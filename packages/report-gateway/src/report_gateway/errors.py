"""The gateway's errors: one base class to catch, subclasses that say what to do next.

Each error carries what a user or support needs (the provider, the run id, the parameter and
its allowed values, the provider's request id) and never a credential: messages are built
only from names, ids and provider reasons.

The tree (``except GatewayError`` catches every one)::

    GatewayError
    ├── ConfigurationError
    │   ├── CredentialsError
    │   └── UnknownProviderError
    ├── UnknownReportError, RunNotFoundError (also LookupError), NotSupportedError
    ├── ParameterError (also ValueError), ScopeError (also ValueError)
    ├── ProviderError: the API refused or failed a request; reads status, code, message,
    │     request_id, track_id, retry_after, rate_limited, not_found, auth_failed and
    │     request_sent from ``cause``, the ``reporting_runtime`` error (ApiError with its
    │     status subclasses, or TransportError), so nothing is copied and nothing is lost
    ├── RunFailedError, RunCanceledError, WaitTimeoutError (also TimeoutError)
    ├── DownloadError
    │   └── IntegrityError
    │       └── ResultFormatError
    ├── RunMayExistError
    └── RunLimitError

    UnknownStatusWarning (a UserWarning, not an error): a status no plugin maps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import ReportRun, RunStatus

__all__ = [
    "ConfigurationError",
    "CredentialsError",
    "DownloadError",
    "GatewayError",
    "IntegrityError",
    "MissingExtraError",
    "NotSupportedError",
    "ParameterError",
    "ProviderError",
    "ResultFormatError",
    "RunCanceledError",
    "RunFailedError",
    "RunLimitError",
    "RunMayExistError",
    "RunNotFoundError",
    "ScopeError",
    "UnknownProviderError",
    "UnknownReportError",
    "UnknownStatusWarning",
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

    ``cause`` is the ``reporting_runtime`` error; what support and retry logic ask for
    (status, code, message, request id, Retry-After, the kind of failure) reads through to
    it, so a caller never needs to dig into ``cause``, and nothing is copied.
    """

    def __init__(self, cause: BaseException, *, provider: str | None = None) -> None:
        self.cause = cause
        self.provider: str | None = provider or getattr(cause, "provider", None)
        text = str(cause) or type(cause).__name__
        if self.provider and not text.startswith(self.provider):
            text = f"{self.provider}: {text}"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_provider_error, (self.cause, self.provider))

    @property
    def status(self) -> int | None:
        """The HTTP status; None when no response came (a connection or TLS failure)."""
        return getattr(self.cause, "status", None)

    @property
    def code(self) -> str | None:
        """The provider's error code (``resource_missing``, ``ZAN-USAGE-REST-ERROR``...)."""
        return getattr(self.cause, "code", None)

    @property
    def message(self) -> str:
        """The provider's own message, without the status and ids around it."""
        own = getattr(self.cause, "message", None)
        return own if isinstance(own, str) and own else str(self.cause)

    @property
    def request_id(self) -> str | None:
        """The provider's request id: quote it to their support."""
        return getattr(self.cause, "request_id", None)

    @property
    def track_id(self) -> str | None:
        return getattr(self.cause, "track_id", None)

    @property
    def operation(self) -> str | None:
        return getattr(self.cause, "operation", None)

    @property
    def retry_after(self) -> float | None:
        """Seconds the provider asked to wait (a 429's Retry-After), if it said."""
        return getattr(self.cause, "retry_after", None)

    # The runtime's classes are imported when asked, not with this module: a plugin's
    # hook module imports the gateway's errors and must not load the runtime on the way.
    @property
    def rate_limited(self) -> bool:
        """Too many requests or runs (HTTP 429): try again later, after ``retry_after``."""
        from reporting_runtime.errors import RateLimitError

        return isinstance(self.cause, RateLimitError) or self.status == 429

    @property
    def not_found(self) -> bool:
        """No such object, or not visible to these credentials (HTTP 404)."""
        from reporting_runtime.errors import NotFoundError

        return isinstance(self.cause, NotFoundError) or self.status == 404

    @property
    def auth_failed(self) -> bool:
        """The credentials were refused or may not do this (401, 403, a failed login)."""
        from reporting_runtime.errors import AuthenticationError, PermissionDeniedError

        return isinstance(self.cause, AuthenticationError | PermissionDeniedError) or (
            self.status in (401, 403)
        )

    @property
    def request_sent(self) -> bool:
        """False only when the request certainly never left (a refused connection)."""
        return bool(getattr(self.cause, "request_sent", True))


def _rebuild_provider_error(cause: BaseException, provider: str | None) -> ProviderError:
    return ProviderError(cause, provider=provider)


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


class MissingExtraError(ConfigurationError):
    """A data tool needs an optional library that is not installed (``pyarrow``, ``pandas``,
    ``polars``): the message names the ``pip install "report-gateway[...]"`` that adds it."""


class DownloadError(GatewayError):
    """The result could not be fetched or written; no partial file was left at the target."""


class IntegrityError(DownloadError):
    """The bytes received do not match what the provider announced (size or checksum)."""


class ResultFormatError(IntegrityError):
    """The result's text cannot be read as a table (broken quoting, an oversized cell).

    An ``IntegrityError`` (so a ``DownloadError``): the bytes arrived but cannot be vouched
    for as the table they claim to be.
    """


class UnknownStatusWarning(UserWarning):
    """A provider reported a status no plugin maps; the run is treated as still running."""


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


def provider_errors(provider: str, *, scrub: Callable[[str], str] | None = None) -> _ProviderErrors:
    """Turn runtime errors raised inside the block into ``ProviderError`` (gateway errors
    and anything else pass through unchanged).

    ``scrub`` (the Gateway's: it knows every secret it resolved) is applied to the message
    and text attributes of each gateway or runtime error leaving the block, causes included,
    so a reason a provider echoed (a failed run's, an error body's) cannot carry a key out.
    """
    return _ProviderErrors(provider, scrub)


class _ProviderErrors:
    """``provider_errors``' block: a plain context manager, since every start, get and
    download enters one (a generator-based one cost a generator and its frames each time)."""

    __slots__ = ("provider", "scrub")

    def __init__(self, provider: str, scrub: Callable[[str], str] | None) -> None:
        self.provider, self.scrub = provider, scrub

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None or not isinstance(exc, Exception):
            return  # not ours to turn (KeyboardInterrupt...), or no error
        scrub = self.scrub
        if isinstance(exc, GatewayError):
            if scrub is not None:
                _scrub(exc, scrub)
            return
        if _is_runtime_error(exc):
            error = ProviderError(exc, provider=self.provider)
            if scrub is not None:
                _scrub(exc, scrub)
                _scrub(error, scrub)
            raise error from exc
        return


def same_run(run: ReportRun, run_id: str) -> ReportRun:
    """``run`` when it is the run asked for (``run_id``); else a ``ProviderError`` naming
    both. A provider answering a lookup with another run (a proxy's cache, a server bug)
    would have that run's status and result taken for the one asked about."""
    if run.id == run_id:
        return run
    from reporting_runtime.errors import ResponseFormatError

    cause = ResponseFormatError(
        f"{run.provider}: asked for run {run_id!r}, the answer is about run {run.id!r}; refused",
        provider=run.provider,
    )
    raise ProviderError(cause, provider=run.provider) from cause


def _scrub(error: BaseException, scrub: Callable[[str], str]) -> None:
    from reporting_runtime.redaction import scrub_error

    scrub_error(error, scrub)


def _is_runtime_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the runtime's report of a failed request (wrapped in ProviderError).

    Imported here, on the error path: a plugin's hook module imports this package and must
    not load the runtime on the way (tests/zuora/test_hooks.py holds it to that).
    """
    from reporting_runtime.errors import ReportingError

    return isinstance(exc, ReportingError)


def deadline_passed(error: BaseException) -> bool:
    """Whether ``error``, or an error it wraps (a ``ProviderError``'s cause), is the
    runtime's ``DeadlineExceededError``: the caller's deadline ended the request."""
    from reporting_runtime.errors import DeadlineExceededError

    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, DeadlineExceededError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
