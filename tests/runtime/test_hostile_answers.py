"""Servers that lie (issue 10, classes 3, 7 and 8, runtime part), on a raw loopback socket:
huge or endless JSON, JSON nested past the recursion limit, ids of the wrong JSON type, and
error bodies, headers and excerpts that echo the credential the client holds. Each test
states the safe behaviour; memory is proven bounded by the bytes the server could deliver."""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from collections.abc import Iterator

import attrs
import pytest
from reporting_runtime import (
    DEFAULT_MAX_BODY_BYTES,
    ApiClient,
    AuthenticationError,
    BasicAuth,
    BearerAuth,
    BodyTooLargeError,
    HeaderPairAuth,
    NotFoundError,
    Operation,
    ResponseFormatError,
    RetryConfig,
    Scrubber,
    ServerError,
    Transport,
)
from zuora_reporting_client.errors import ERROR_READER as ZUORA_ERROR_READER

from tests.runtime.rawserver import RawServer, endless, head

OP = Operation(operation_id="get_report_run", method="GET", path="/runs/{id}")
SECRET = "zs3cr3t-Abc/def+ghi=jkl"  # slash, plus, equals: JSON and URL spellings differ
KEY_ID = "zkeyid-0123456789"
MiB = 1 << 20


@attrs.frozen(kw_only=True)
class Run:
    id: str
    status: str | None = None


@pytest.fixture
def raw() -> Iterator[list[RawServer]]:
    made: list[RawServer] = []
    yield made
    for server in made:
        server.close()


def serve(raw: list[RawServer], answer: object) -> RawServer:
    server = RawServer(answer)  # type: ignore[arg-type]
    raw.append(server)
    return server


def client(server: RawServer, **kwargs: object) -> ApiClient:
    options: dict[str, object] = {"retry": RetryConfig(total=0)}
    options.update(kwargs)
    return ApiClient(provider="acme", base_url=server.url, **options)  # type: ignore[arg-type]


def json_answer(body: bytes, status: str = "200 OK") -> object:
    def answer(_: bytes) -> Iterator[bytes]:
        yield head(status, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        yield body

    return answer


# -- class 3: bounded JSON -----------------------------------------------------------------


def test_a_512_mib_content_length_is_refused_before_reading(raw: list[RawServer]) -> None:
    def answer(_: bytes) -> Iterator[bytes]:
        yield head("200 OK", {"Content-Type": "application/json", "Content-Length": str(512 * MiB)})
        yield b'{"id": "'
        yield from endless(b"x" * 65536)

    server = serve(raw, answer)
    with pytest.raises(BodyTooLargeError) as info:
        client(server).call(OP, Run, path={"id": "r1"})
    assert info.value.limit == DEFAULT_MAX_BODY_BYTES
    assert "536870912" in str(info.value)
    # Only what the kernel's socket buffers took before the client hung up: never 512 MiB.
    assert server.sent < DEFAULT_MAX_BODY_BYTES


def test_an_endless_json_body_without_a_length_stops_at_the_cap(raw: list[RawServer]) -> None:
    def answer(_: bytes) -> Iterator[bytes]:
        yield head("200 OK", {"Content-Type": "application/json", "Connection": "close"})
        yield b"["
        yield from endless(b"1," * 32768)

    server = serve(raw, answer)
    with pytest.raises(BodyTooLargeError, match="more than 1048576 bytes"):
        client(server, transport=Transport(max_body_bytes=MiB)).call(OP, Run, path={"id": "r"})
    assert server.sent < 16 * MiB  # the cap, one chunk, socket buffers: not "forever"


def test_an_endless_chunked_json_body_stops_at_the_cap(raw: list[RawServer]) -> None:
    piece = b"1," * 32768

    def answer(_: bytes) -> Iterator[bytes]:
        yield head("200 OK", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        while True:
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"

    server = serve(raw, answer)
    with pytest.raises(BodyTooLargeError):
        client(server, transport=Transport(max_body_bytes=MiB)).call(OP, Run, path={"id": "r"})
    assert server.sent < 16 * MiB


def test_a_huge_error_page_keeps_only_its_head(raw: list[RawServer]) -> None:
    def answer(_: bytes) -> Iterator[bytes]:
        yield head("500 Internal Server Error", {"Content-Length": str(512 * MiB)})
        yield b'{"error": {"message": "boom"}}'
        yield from endless()

    server = serve(raw, answer)
    with pytest.raises(ServerError, match="boom") as info:
        client(server, transport=Transport(max_body_bytes=MiB)).call(OP, Run, path={"id": "r"})
    assert getattr(info.value, "status", None) == 500  # still the provider's failure
    assert server.sent < 16 * MiB


def test_the_cap_defaults_to_4_mib_and_must_be_positive() -> None:
    assert Transport().max_body_bytes == 4 * MiB
    with pytest.raises(ValueError, match="max_body_bytes"):
        Transport(max_body_bytes=0)


# -- class 7: deep JSON and ids of the wrong type -------------------------------------------


def test_json_nested_100k_deep_is_a_response_format_error(raw: list[RawServer]) -> None:
    server = serve(raw, json_answer(b"[" * 100_000 + b"]" * 100_000))
    with pytest.raises(ResponseFormatError, match="nested too deeply") as info:
        client(server).call(OP, Run, path={"id": "r1"})
    assert info.value.operation == "get_report_run"


def test_a_deep_json_error_body_still_gives_the_status(raw: list[RawServer]) -> None:
    server = serve(raw, json_answer(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "404 Not Found"))
    with pytest.raises(NotFoundError) as info:
        client(server).call(OP, Run, path={"id": "r1"})
    assert info.value.status == 404


def test_a_deep_json_2xx_is_no_crash_for_an_envelope_reader(raw: list[RawServer]) -> None:
    server = serve(raw, json_answer(b"[" * 100_000 + b"]" * 100_000))
    api = client(server, error_reader=ZUORA_ERROR_READER)
    with pytest.raises(ResponseFormatError):
        api.call(OP, Run, path={"id": "r1"})


@pytest.mark.parametrize(
    ("value", "said"),
    [(None, "null"), ({}, "an object"), (42, "a number"), ([], "an array"), (True, "a boolean")],
)
def test_an_id_of_the_wrong_json_type_is_refused_naming_the_field(
    raw: list[RawServer], value: object, said: str
) -> None:
    server = serve(raw, json_answer(json.dumps({"id": value, "status": "ok"}).encode()))
    with pytest.raises(ResponseFormatError) as info:
        client(server).call(OP, Run, path={"id": "r1"})
    text = str(info.value)
    assert "$.id" in text
    assert said in text
    assert "get_report_run" in text
    assert "'None'" not in text


def test_an_optional_string_of_the_wrong_type_is_refused(raw: list[RawServer]) -> None:
    server = serve(raw, json_answer(b'{"id": "r1", "status": {}}'))
    with pytest.raises(ResponseFormatError, match=r"\$\.status"):
        client(server).call(OP, Run, path={"id": "r1"})


# -- class 8: echoed secrets ---------------------------------------------------------------


def zuora_auth() -> HeaderPairAuth:
    return HeaderPairAuth({"apiAccessKeyId": KEY_ID, "apiSecretAccessKey": SECRET})


def every_text(error: BaseException) -> str:
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    parts += [repr(vars(error))]
    return "\n".join(parts)


ECHOES = {
    "plain": SECRET,
    "json-escaped": json.dumps(SECRET)[1:-1].replace("/", "\\/"),
    "percent-encoded": "zs3cr3t-Abc%2Fdef%2Bghi%3Djkl",
}


@pytest.mark.parametrize("spelling", sorted(ECHOES))
def test_a_401_echoing_the_secret_hides_it_everywhere(raw: list[RawServer], spelling: str) -> None:
    echoed = ECHOES[spelling]
    body = (
        '{"message": "Invalid apiSecretAccessKey ' + echoed + " for " + KEY_ID + '",'
        ' "errorCode": "AUTH"}'
    ).encode()
    server = serve(raw, json_answer(body, "401 Unauthorized"))
    api = client(server, auth=zuora_auth(), error_reader=ZUORA_ERROR_READER)
    with pytest.raises(AuthenticationError) as info:
        api.call(OP, Run, path={"id": "r1"})
    error = info.value
    for text in (every_text(error), error.message, error.raw_body_excerpt):
        assert SECRET not in text
        assert KEY_ID not in text
        if spelling != "json-escaped":  # "\/" is not a spelling json.dumps makes
            assert echoed not in text
    assert "REDACTED" in error.message


def test_a_secret_straddling_the_excerpt_cut_leaves_no_half(raw: list[RawServer]) -> None:
    body = ("x" * 190 + " " + SECRET + " " + "y" * 300).encode()
    server = serve(raw, json_answer(body, "401 Unauthorized"))
    with pytest.raises(AuthenticationError) as info:
        client(server, auth=zuora_auth()).call(OP, Run, path={"id": "r1"})
    assert SECRET[:8] not in info.value.raw_body_excerpt


def test_a_secret_echoed_in_a_malformed_2xx_is_hidden(raw: list[RawServer]) -> None:
    server = serve(raw, json_answer(f"<html>bad key {SECRET}</html>".encode()))
    with pytest.raises(ResponseFormatError) as info:
        client(server, auth=zuora_auth()).call(OP, Run, path={"id": "r1"})
    assert SECRET not in every_text(info.value)
    assert SECRET not in info.value.excerpt


def test_a_secret_echoed_in_a_request_id_header_is_hidden_from_errors_and_logs(
    raw: list[RawServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def answer(_: bytes) -> Iterator[bytes]:
        body = b'{"message": "no"}'
        yield head(
            "401 Unauthorized",
            {"Request-Id": SECRET, "Content-Length": str(len(body)), "X-Echo": SECRET},
        )
        yield body

    server = serve(raw, answer)
    with pytest.raises(AuthenticationError) as info:
        client(server, auth=zuora_auth()).call(OP, Run, path={"id": "r1"})
    assert SECRET not in every_text(info.value)
    assert info.value.request_id == "REDACTED"
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert caplog.records  # the exchange was logged
    assert SECRET not in logged
    assert KEY_ID not in logged


@pytest.mark.parametrize(
    ("auth", "held"),
    [
        (BearerAuth("tok-0123456789"), {"tok-0123456789"}),
        (BasicAuth("user-name", "pass-word"), {"user-name", "pass-word"}),
        (zuora_auth(), {SECRET, KEY_ID}),
    ],
)
def test_every_auth_policy_reports_the_secrets_it_holds(auth: object, held: set[str]) -> None:
    values = auth.secret_values()  # type: ignore[attr-defined]
    assert held <= values
    scrub = Scrubber(auth.secret_values)  # type: ignore[attr-defined]
    assert all(secret not in scrub(f"echo {secret} echo") for secret in values)


def test_the_scrubber_asks_for_the_secrets_each_time() -> None:
    current = ["first-token"]
    scrub = Scrubber(lambda: current)
    current[0] = "second-token"  # a refreshed token is hidden from the moment it exists
    assert scrub("got second-token") == "got REDACTED"
    assert scrub("ab is short") == "ab is short"


def test_a_secret_in_a_header_block_urllib3_cannot_parse_stays_out_of_logged_tracebacks(
    raw: list[RawServer], caplog: pytest.LogCaptureFixture
) -> None:
    """urllib3 logs "Failed to parse headers" with the exception attached, and the exception
    holds the unparsed header text: a handler printing tracebacks printed the echoed secret
    (review 18)."""
    caplog.set_level(logging.DEBUG)

    def answer(_: bytes) -> Iterator[bytes]:
        body = b'{"id": "r1", "status": "pending"}'
        yield (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"a line without a colon\r\nX-Echo: " + SECRET.encode() + b"\r\n\r\n"
        )
        yield body

    server = serve(raw, answer)
    with contextlib.suppress(Exception):
        client(server, auth=zuora_auth()).call(OP, Run, path={"id": "r1"})
    parse_failures = [r for r in caplog.records if "Failed to parse headers" in r.getMessage()]
    assert parse_failures  # urllib3 did log it, with its exception
    rendered = "\n".join(logging.Formatter().format(r) for r in caplog.records)
    assert SECRET not in rendered
    assert SECRET not in caplog.text
