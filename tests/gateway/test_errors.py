"""ProviderError answers what a caller asks (which kind? which request id?) without `.cause`."""

from __future__ import annotations

import pickle

from report_gateway import GatewayError, ProviderError
from report_gateway.errors import DownloadError, ResultFormatError, UnknownStatusWarning
from reporting_runtime import (
    AuthenticationError,
    ConnectError,
    NotFoundError,
    RateLimitError,
    ServerError,
)


def test_a_rate_limit_is_readable_on_the_gateway_error() -> None:
    cause = RateLimitError(
        status=429,
        message="Too many concurrent runs",
        code="rate_limited",
        request_id="req_1",
        provider="stripe-v2",
        operation="create_report_run",
        retry_after=12.0,
    )
    error = ProviderError(cause, provider="stripe-v2")
    assert isinstance(error, GatewayError)
    assert error.rate_limited
    assert not error.not_found
    assert not error.auth_failed
    assert (error.status, error.code, error.request_id, error.retry_after) == (
        429,
        "rate_limited",
        "req_1",
        12.0,
    )
    assert error.message == "Too many concurrent runs"
    assert error.operation == "create_report_run"


def test_the_kind_follows_the_runtime_class_not_only_the_status() -> None:
    # A failed login some APIs answer with a 200 envelope is still an auth failure.
    login = ProviderError(AuthenticationError(status=200, message="bad login", provider="z"))
    assert login.auth_failed
    missing = ProviderError(NotFoundError(status=404, message="No such run", provider="s"))
    assert missing.not_found
    assert not ProviderError(ServerError(status=503, message="down")).rate_limited


def test_a_connection_failure_has_no_status_and_says_nothing_was_sent() -> None:
    error = ProviderError(ConnectError("could not connect", provider="zuora"))
    assert error.status is None
    assert error.request_id is None
    assert error.request_sent is False
    assert error.message == "could not connect"


def test_provider_error_survives_pickling() -> None:
    cause = NotFoundError(status=404, message="gone", request_id="req_2", provider="stripe")
    copy = pickle.loads(pickle.dumps(ProviderError(cause)))  # noqa: S301 - our own bytes
    assert (copy.status, copy.request_id, copy.provider) == (404, "req_2", "stripe")
    assert str(copy) == str(ProviderError(cause))


def test_moved_classes_keep_their_old_import_paths() -> None:
    from report_gateway.provider import UnknownStatusWarning as FromProvider
    from report_gateway.rows import ResultFormatError as FromRows

    assert FromProvider is UnknownStatusWarning
    assert FromRows is ResultFormatError
    assert issubclass(ResultFormatError, DownloadError)
