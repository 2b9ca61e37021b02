"""HTTP runtime shared by the generated reporting clients: transport, policies, converter,
errors. The converter (cattrs) loads on first use, so importing a client stays quick.

``reporting_runtime.converter`` is the submodule, always (as Python binds it once imported);
the cattrs instance is ``reporting_runtime.converter.converter``. ``structure`` and
``unstructure`` are also available here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reporting_runtime.auth import AuthPolicy, BasicAuth, BearerAuth, HeaderPairAuth
from reporting_runtime.client import ApiClient, Operation
from reporting_runtime.error_bodies import (
    ErrorDetails,
    ErrorReader,
    JsonErrorReader,
    api_error,
    html_title,
    text_value,
)
from reporting_runtime.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectError,
    ConnectTimeout,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReadTimeoutError,
    ReportingError,
    ResponseFormatError,
    ServerError,
    TransportError,
)
from reporting_runtime.messages import Headers, Request, Response
from reporting_runtime.pipeline import Pipeline, Policy
from reporting_runtime.policies import (
    HeadersPolicy,
    IdempotencyKeyPolicy,
    LoggingPolicy,
    RedirectPolicy,
    UserAgentPolicy,
)
from reporting_runtime.retry import BackoffRetry, RetryConfig, RetryPolicy
from reporting_runtime.transport import Timeout, Transport
from reporting_runtime.types import (
    EpochMillisOrRfc3339,
    FlexibleTime,
    Int64String,
    OpenEnum,
    UnixTime,
)

if TYPE_CHECKING:
    from reporting_runtime import converter
    from reporting_runtime.converter import structure, unstructure

__all__ = [
    "ApiClient",
    "ApiError",
    "AuthPolicy",
    "AuthenticationError",
    "BackoffRetry",
    "BadRequestError",
    "BasicAuth",
    "BearerAuth",
    "ConflictError",
    "ConnectError",
    "ConnectTimeout",
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

_LAZY_FUNCTIONS = frozenset({"structure", "unstructure"})


def __getattr__(name: str) -> Any:
    """Import the converter module on first use (cattrs is the slow part of the runtime).

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
    raise AttributeError(f"module 'reporting_runtime' has no attribute {name!r}")
