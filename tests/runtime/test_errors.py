"""Every documented error shape becomes the right ApiError, message extracted, no secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
from reporting_runtime import (
    ApiClient,
    ApiError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    Operation,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    RetryConfig,
    ServerError,
)
from reporting_runtime.error_bodies import ErrorDetails, ErrorReader, JsonErrorReader, api_error
from reporting_runtime.messages import Headers, Request, Response
from stripe_reporting_client.errors import ERROR_READER as STRIPE_ERROR_READER
from zuora_reporting_client.errors import ERROR_READER as ZUORA_ERROR_READER

# The readers live beside each generated client; the runtime turns what they find into errors.
READERS: dict[str, ErrorReader] = {
    "stripe": STRIPE_ERROR_READER,
    "stripe-v2": STRIPE_ERROR_READER,
    "zuora": ZUORA_ERROR_READER,
}

OP = Operation(operation_id="get_report_run", method="GET", path="/reportruns/{id}")


def error_for(
    status: int, body: bytes | str, error_format: Any, headers: dict[str, str] | None = None
) -> ApiError:
    data = body.encode() if isinstance(body, str) else body
    request = Request(method="GET", url="https://x/y", operation="op", provider="p")
    response = Response(
        None, request=request, status=status, headers=Headers((headers or {}).items()), content=data
    )
    return api_error(response, data, READERS[error_format])


# Stripe v1 and v2.


def test_stripe_v1_error_object() -> None:
    body = {
        "error": {
            "type": "invalid_request_error",
            "code": "parameter_invalid_integer",
            "message": "Invalid integer: abc",
            "param": "parameters[interval_start]",
            "doc_url": "https://stripe.com/docs/error-codes/parameter-invalid-integer",
            "request_log_url": "https://dashboard.stripe.com/logs/req_1",
        }
    }
    err = error_for(400, json.dumps(body), "stripe", {"Request-Id": "req_1"})
    assert type(err) is BadRequestError
    assert (err.code, err.message, err.param) == (
        "parameter_invalid_integer",
        "Invalid integer: abc",
        "parameters[interval_start]",
    )
    assert err.error_type == "invalid_request_error"
    assert str(err) == (
        "p op: HTTP 400 parameter_invalid_integer: Invalid integer: abc "
        "(parameter parameters[interval_start]) (request id req_1)"
    )


def test_stripe_echoed_key_is_scrubbed() -> None:
    body = {
        "error": {
            "type": "invalid_request_error",
            "message": "Invalid API Key provided: sk_test_abcdefgh1234",
        }
    }
    err = error_for(401, json.dumps(body), "stripe")
    assert type(err) is AuthenticationError
    assert "abcdefgh1234" not in str(err)
    assert "abcdefgh1234" not in err.raw_body_excerpt


def test_stripe_v2_error_object_and_rate_limit() -> None:
    body = {
        "error": {
            "type": "rate_limit_error",
            "code": "report_run_rate_limit_exceeded",
            "message": "Too many running report runs.",
            "doc_url": None,
            "user_message": "Try later",
        }
    }
    err = error_for(429, json.dumps(body), "stripe-v2", {"Retry-After": "30", "Request-Id": "r"})
    assert isinstance(err, RateLimitError)
    assert err.code == "report_run_rate_limit_exceeded"
    assert err.retry_after == 30.0
    assert err.request_id == "r"


def test_stripe_v2_user_message_when_no_message() -> None:
    body = {
        "error": {
            "type": "invalid_request_error",
            "code": "report_inaccessible",
            "user_message": "No access",
        }
    }
    err = error_for(403, json.dumps(body), "stripe-v2")
    assert type(err) is PermissionDeniedError
    assert err.message == "No access"


@pytest.mark.parametrize(
    ("status", "cls"),
    [(404, NotFoundError), (500, ServerError), (502, ServerError), (418, ApiError)],
)
def test_a_non_json_body_still_gives_the_status_class(status: int, cls: type[ApiError]) -> None:
    err = error_for(status, "<html><head><title>502 Bad Gateway</title></head></html>", "stripe")
    assert type(err) is cls
    assert err.message == "502 Bad Gateway"


# Zuora: every envelope in the reference.

ZUORA_INNER = {
    "errorId": "ZXOCZC5NUWFNCAOU",
    "message": "The report run does not exist",
    "errorCode": "ZAN-USAGE-REST-ERROR",
}


def test_zuora_json_in_a_string() -> None:
    body = {"success": False, "response": json.dumps(ZUORA_INNER), "links": None}
    err = error_for(
        400,
        json.dumps(body),
        "zuora",
        {"Zuora-Request-Id": "zr-1", "Zuora-Track-Id": "track-9"},
    )
    assert type(err) is BadRequestError
    assert err.message == "The report run does not exist"
    assert err.code == "ZAN-USAGE-REST-ERROR"
    assert (err.request_id, err.track_id) == ("zr-1", "track-9")
    assert str(err).endswith("(request id zr-1, track id track-9)")


def test_zuora_xml_zan_response() -> None:
    inner = json.dumps(ZUORA_INNER).replace('"', "&quot;")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<zanResponse success="false"><response class="string">{inner}</response></zanResponse>'
    )
    err = error_for(500, body, "zuora")
    assert type(err) is ServerError
    assert err.message == "The report run does not exist"
    assert err.code == "ZAN-USAGE-REST-ERROR"


def test_zuora_xml_with_raw_json_text() -> None:
    body = (
        f'<zanResponse success="false"><response>{json.dumps(ZUORA_INNER)}</response></zanResponse>'
    )
    err = error_for(400, body, "zuora")
    assert err.message == "The report run does not exist"


def test_zuora_flat_export_error() -> None:
    body = {
        "message": "Export is only available for completed runs",
        "errorCode": "ZAN-USAGE-REST-ERROR",
    }
    err = error_for(400, json.dumps(body), "zuora")
    assert (err.message, err.code) == (body["message"], "ZAN-USAGE-REST-ERROR")


def test_zuora_login_failed_is_an_authentication_error_whatever_the_status() -> None:
    body = {"message": "Token could not be decrypted.", "errorCode": "loginFailed"}
    err = error_for(400, json.dumps(body), "zuora")
    assert type(err) is AuthenticationError
    assert err.message == "Token could not be decrypted."


def test_zuora_html_bad_request_page() -> None:
    body = (
        "<!DOCTYPE html><html><head><title>Bad Request</title></head>"
        "<body><h1>Bad Request</h1></body></html>"
    )
    err = error_for(400, body, "zuora")
    assert type(err) is BadRequestError
    assert err.message == "Bad Request"


def test_zuora_bare_401() -> None:
    err = error_for(401, b"", "zuora")
    assert type(err) is AuthenticationError
    assert err.message == "Unauthorized"
    assert str(err) == "p op: HTTP 401: Unauthorized"


def test_zuora_plain_text_response_member() -> None:
    body = {"success": False, "response": "The current user has not run this report yet."}
    err = error_for(200, json.dumps(body), "zuora")
    assert type(err) is BadRequestError  # a failure sent with a 2xx status
    assert err.status == 200
    assert err.message == "The current user has not run this report yet."


# Through ApiClient over a socket.


def zuora_client(server: Any) -> ApiClient:
    return ApiClient(
        provider="zuora",
        base_url=server.url,
        error_reader=ZUORA_ERROR_READER,
        retry=RetryConfig(total=0),
    )


def test_zuora_http_200_with_success_false_raises(server: Any) -> None:
    body = {"success": False, "response": json.dumps(ZUORA_INNER), "links": None}
    server.reply(200, json.dumps(body), headers={"Content-Type": "application/json"})
    with pytest.raises(ApiError, match="The report run does not exist") as info:
        zuora_client(server).request(OP, path={"id": "r1"})
    assert info.value.status == 200
    assert info.value.operation == "get_report_run"


def test_zuora_success_true_passes(server: Any) -> None:
    server.reply(200, '{"success": true, "response": {"id": "r1"}}')
    assert zuora_client(server).request(OP, path={"id": "r1"}).json()["response"]["id"] == "r1"


def test_streamed_zuora_json_error_with_200_is_caught(server: Any) -> None:
    export = Operation(operation_id="export", method="GET", path="/export/{id}", streaming=True)
    body = {"message": "bad", "errorCode": "ZAN-USAGE-REST-ERROR", "success": False}
    server.reply(200, json.dumps(body), headers={"Content-Type": "application/json"})
    with pytest.raises(ApiError, match="bad"):
        zuora_client(server).request(export, path={"id": "r1"})


def test_malformed_success_body_is_a_response_format_error(server: Any) -> None:
    server.reply(
        200, "<html>Service Unavailable token=abc</html>", headers={"Content-Type": "text/html"}
    )
    with pytest.raises(ResponseFormatError) as info:
        zuora_client(server).call(OP, dict, path={"id": "r1"})
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert "expected JSON" in str(info.value)
    assert "text/html" in str(info.value)


def test_api_error_pickles() -> None:
    import pickle

    err = error_for(429, '{"error": {"message": "slow"}}', "stripe", {"Retry-After": "2"})
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes
    assert type(copy) is RateLimitError
    assert str(copy) == str(err)
    assert copy.retry_after == 2.0


# The mechanism: a client of a new API brings its own reader; the runtime has no list.


class EnvelopeReader:
    """An imaginary API: `{"ok": false, "problem": {"why", "kind"}}`, "denied" is auth."""

    checks_success = True

    def read(self, status: int, data: Any, text: str) -> ErrorDetails | None:
        problem = data.get("problem") if isinstance(data, dict) else None
        if not isinstance(problem, dict):
            return None
        kind = problem.get("kind")
        return ErrorDetails(
            message=problem.get("why"),
            code=kind,
            error_class=AuthenticationError if kind == "denied" else None,
        )

    def failed(self, data: Any) -> bool:
        return isinstance(data, dict) and data.get("ok") is False


def test_a_new_apis_reader_needs_no_runtime_change(server: Any) -> None:
    body = {"ok": False, "problem": {"why": "key revoked", "kind": "denied"}}
    server.reply(200, json.dumps(body), headers={"Acme-Request-Id": "acme-7"})
    client = ApiClient(
        provider="acme",
        base_url=server.url,
        error_reader=EnvelopeReader(),
        retry=RetryConfig(total=0),
    )
    with pytest.raises(AuthenticationError, match="key revoked") as info:
        client.request(OP, path={"id": "r1"})
    assert (info.value.code, info.value.request_id) == ("denied", "acme-7")


def test_without_a_reader_the_common_json_shape_is_read() -> None:
    request = Request(method="GET", url="https://x/y", operation="op", provider="p")
    body = b'{"message": "slow down", "code": "busy"}'
    response = Response(None, request=request, status=429, headers=Headers(), content=body)
    err = api_error(response, body, JsonErrorReader())
    assert type(err) is RateLimitError
    assert (err.code, err.message) == ("busy", "slow down")
