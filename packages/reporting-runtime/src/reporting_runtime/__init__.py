"""HTTP runtime shared by the generated reporting clients: transport, policies, converter,
errors. Only the errors load with the package: everything else (urllib3, attrs, cattrs)
loads on first use, so a library that catches these errors (report-gateway) imports them
for free, and importing a client stays quick.

``reporting_runtime.converter`` is the submodule, always (as Python binds it once imported);
the cattrs instance is ``reporting_runtime.converter.converter``. ``structure`` and
``unstructure`` are also available here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reporting_runtime.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    BodyTooLargeError,
    ConflictError,
    ConnectError,
    ConnectTimeout,
    DeadlineExceededError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReadTimeoutError,
    ReportingError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

if TYPE_CHECKING:
    from reporting_runtime import converter
    from reporting_runtime.auth import AuthPolicy, BasicAuth, BearerAuth, HeaderPairAuth
    from reporting_runtime.backoff import Backoff
    from reporting_runtime.client import ApiClient, Operation
    from reporting_runtime.converter import structure, unstructure
    from reporting_runtime.error_bodies import (
        ErrorDetails,
        ErrorReader,
        JsonErrorReader,
        api_error,
        html_title,
        text_value,
    )
    from reporting_runtime.messages import (
        DEFAULT_MAX_BODY_BYTES,
        DEFAULT_MAX_JSON_ITEMS,
        Headers,
        Request,
        Response,
    )
    from reporting_runtime.pipeline import Pipeline, Policy
    from reporting_runtime.policies import (
        HeadersPolicy,
        IdempotencyKeyPolicy,
        LoggingPolicy,
        RedirectPolicy,
        UserAgentPolicy,
    )
    from reporting_runtime.redaction import Scrubber
    from reporting_runtime.retry import BackoffRetry, RetryConfig, RetryPolicy
    from reporting_runtime.transport import Timeout, Transport
    from reporting_runtime.types import (
        EpochMillisOrRfc3339,
        FlexibleTime,
        Int64String,
        OpenEnum,
        UnixTime,
    )

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_JSON_ITEMS",
    "ApiClient",
    "ApiError",
    "AuthPolicy",
    "AuthenticationError",
    "Backoff",
    "BackoffRetry",
    "BadRequestError",
    "BasicAuth",
    "BearerAuth",
    "BodyTooLargeError",
    "ConflictError",
    "ConnectError",
    "ConnectTimeout",
    "DeadlineExceededError",
    "EpochMillisOrRfc3339",
    "ErrorDetails",
    "ErrorReader",
    "FlexibleTime",
    "HeaderPairAuth",
    "Headers",
    "HeadersPolicy",
    "IdempotencyKeyPolicy",
    "Int64String",
    "JsonErrorReader",
    "LoggingPolicy",
    "NotFoundError",
    "OpenEnum",
    "Operation",
    "PermissionDeniedError",
    "Pipeline",
    "Policy",
    "RateLimitError",
    "ReadTimeoutError",
    "RedirectPolicy",
    "ReportingError",
    "Request",
    "Response",
    "ResponseFormatError",
    "RetryConfig",
    "RetryPolicy",
    "Scrubber",
    "ServerError",
    "Timeout",
    "Transport",
    "TransportError",
    "UnixTime",
    "UserAgentPolicy",
    "api_error",
    "converter",
    "html_title",
    "structure",
    "text_value",
    "unstructure",
]

_LAZY: dict[str, str] = {
    "ApiClient": "reporting_runtime.client",
    "AuthPolicy": "reporting_runtime.auth",
    "Backoff": "reporting_runtime.backoff",
    "BackoffRetry": "reporting_runtime.retry",
    "BasicAuth": "reporting_runtime.auth",
    "BearerAuth": "reporting_runtime.auth",
    "DEFAULT_MAX_BODY_BYTES": "reporting_runtime.messages",
    "DEFAULT_MAX_JSON_ITEMS": "reporting_runtime.messages",
    "EpochMillisOrRfc3339": "reporting_runtime.types",
    "ErrorDetails": "reporting_runtime.error_bodies",
    "ErrorReader": "reporting_runtime.error_bodies",
    "FlexibleTime": "reporting_runtime.types",
    "HeaderPairAuth": "reporting_runtime.auth",
    "Headers": "reporting_runtime.messages",
    "HeadersPolicy": "reporting_runtime.policies",
    "IdempotencyKeyPolicy": "reporting_runtime.policies",
    "Int64String": "reporting_runtime.types",
    "JsonErrorReader": "reporting_runtime.error_bodies",
    "LoggingPolicy": "reporting_runtime.policies",
    "OpenEnum": "reporting_runtime.types",
    "Operation": "reporting_runtime.client",
    "Pipeline": "reporting_runtime.pipeline",
    "Policy": "reporting_runtime.pipeline",
    "RedirectPolicy": "reporting_runtime.policies",
    "Request": "reporting_runtime.messages",
    "Response": "reporting_runtime.messages",
    "RetryConfig": "reporting_runtime.retry",
    "RetryPolicy": "reporting_runtime.retry",
    "Scrubber": "reporting_runtime.redaction",
    "Timeout": "reporting_runtime.transport",
    "Transport": "reporting_runtime.transport",
    "UnixTime": "reporting_runtime.types",
    "UserAgentPolicy": "reporting_runtime.policies",
    "api_error": "reporting_runtime.error_bodies",
    "html_title": "reporting_runtime.error_bodies",
    "text_value": "reporting_runtime.error_bodies",
}
_LAZY_FUNCTIONS = frozenset({"structure", "unstructure"})


def __getattr__(name: str) -> Any:
    """Import a name's module on first use; the converter module likewise (cattrs is the
    slow part of the runtime).

    ``converter`` answers with the submodule itself, which is what the attribute holds once
    anything imported ``reporting_runtime.converter``: the same object whatever the import
    order, never the cattrs instance in one process and the module in another.
    """
    if name == "converter" or name in _LAZY_FUNCTIONS:
        # import_module, not `from reporting_runtime import converter`: that form asks this
        # very __getattr__ for "converter" first and recurses until the stack runs out.
        import importlib

        module = importlib.import_module("reporting_runtime.converter")
        return module if name == "converter" else getattr(module, name)
    where = _LAZY.get(name)
    if where is not None:
        import importlib

        value = getattr(importlib.import_module(where), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'reporting_runtime' has no attribute {name!r}")
