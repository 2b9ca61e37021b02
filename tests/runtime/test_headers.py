"""The runtime reads response headers without the ``email`` parser (``headers.py``): it must
give exactly what ``http.client`` gives, for plain blocks and for odd or hostile ones (which
go to the ``email`` parser as before), and every connection the transport opens must use it."""

from __future__ import annotations

import http.client
import io
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reporting_runtime import Request, Transport
from reporting_runtime.headers import HeaderFastResponse, parse_header_lines, read_header_lines

from tests.runtime.rawserver import RawServer

#: Header lines of every kind the ``email`` parser treats differently: plain ones, and the
#: ones that must fall back (folded, nameless, a space before the colon, a stray CR, a byte
#: above 0x7F, a ``From `` line, LF-only endings).
_NAMES = st.sampled_from(
    ["Content-Type", "content-length", "X-A", "Set-Cookie", "Request-Id", "a", "X_Y!#$%&'*+.^`|~"]
)
_VALUES = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("\t é\xff"),
    max_size=30,
)


@st.composite
def _line(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["plain", "plain", "plain", "odd"]))
    end = draw(st.sampled_from([b"\r\n", b"\n"]))
    name = draw(_NAMES).encode()
    value = draw(_VALUES).encode("latin-1")
    if kind == "plain":
        blanks = draw(st.sampled_from([b"", b" ", b"  ", b"\t"]))
        return name + b":" + blanks + value + end
    odd = draw(
        st.sampled_from(
            [
                b" folded" + end,
                b"\tfolded" + end,
                b": nameless" + end,
                name + b" : spaced" + end,
                name + b": a\rb" + end,
                name + b": caf\xc3\xa9" + end,
                b"From someone" + end,
                b"no colon here" + end,
                name + b":" + value + b"\r\r\n",
            ]
        )
    )
    return odd


@st.composite
def _block(draw: Any) -> bytes:
    lines = draw(st.lists(_line(), max_size=12))
    ending = draw(st.sampled_from([b"\r\n", b"\n", b""]))  # b"": the peer closed mid-headers
    return b"".join(lines) + ending + b"BODY"


def _both(raw: bytes) -> tuple[http.client.HTTPMessage, bytes, http.client.HTTPMessage, bytes]:
    ours_fp = io.BufferedReader(io.BytesIO(raw))
    theirs_fp = io.BufferedReader(io.BytesIO(raw))
    ours = parse_header_lines(read_header_lines(ours_fp))
    theirs = http.client.parse_headers(theirs_fp)
    return ours, ours_fp.read(), theirs, theirs_fp.read()


def _state(message: http.client.HTTPMessage) -> dict[str, Any]:
    state = dict(vars(message))
    state["defects"] = [type(d) for d in message.defects]  # instances never compare equal
    return state


@settings(max_examples=400)
@given(_block())
def test_a_header_block_reads_as_http_client_reads_it(raw: bytes) -> None:
    ours, our_rest, theirs, their_rest = _both(raw)
    assert _state(ours) == _state(theirs)
    assert list(ours.items()) == list(theirs.items())
    assert our_rest == their_rest  # not a byte of the body taken for a header


def test_a_plain_block_is_built_without_the_email_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    # What makes the fast path fast; an odd block still reaches the parser (the property test).
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the email parser was used for a plain block")

    monkeypatch.setattr("email.parser.Parser.parsestr", refuse)
    raw = b"Content-Type: application/json\r\nContent-Length: 2\r\nX-Empty:\r\n\r\n{}"
    message = parse_header_lines(read_header_lines(io.BufferedReader(io.BytesIO(raw))))
    assert message.items() == [
        ("Content-Type", "application/json"),
        ("Content-Length", "2"),
        ("X-Empty", ""),
    ]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"X: " + b"a" * 70_000 + b"\r\n\r\n", http.client.LineTooLong),
        (b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n", http.client.HTTPException),
    ],
    ids=["line too long", "too many headers"],
)
def test_http_clients_limits_hold(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_header_lines(io.BufferedReader(io.BytesIO(raw)))
    with pytest.raises(error):
        http.client.parse_headers(io.BufferedReader(io.BytesIO(raw)))


class _Socket:
    """Just enough of a socket for ``HTTPResponse``: ``makefile`` over fixed bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data))


_ANSWERS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
    b"HTTP/1.1 201 Created \r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n"
    b"2\r\n{}\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
    b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nContent-Length: twelve\r\n\r\nabc",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n folded: first\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nbroken line\r\nX: y\r\n\r\n{}",
]


def _begun(cls: type[http.client.HTTPResponse], raw: bytes, method: str) -> Any:
    response = cls(_Socket(raw), method=method)  # type: ignore[arg-type]
    try:
        response.begin()
    except Exception as exc:  # compared as a kind, like every other outcome
        return type(exc)
    body = response.read()
    return (
        response.status,
        response.reason,
        response.version,
        response.chunked,
        response.will_close,
        response.length,
        list(response.headers.items()),
        [type(d) for d in response.headers.defects],
        body,
    )


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("raw", _ANSWERS)
def test_an_answer_begins_as_with_http_client(raw: bytes, method: str) -> None:
    assert _begun(HeaderFastResponse, raw, method) == _begun(http.client.HTTPResponse, raw, method)


@pytest.mark.parametrize(
    "raw", [b"HTTP/2 200 OK\r\n\r\n", b"garbage\r\n\r\n", b""], ids=["HTTP/2", "garbage", "empty"]
)
def test_a_bad_status_line_fails_as_with_http_client(raw: bytes) -> None:
    assert _begun(HeaderFastResponse, raw, "GET") == _begun(http.client.HTTPResponse, raw, "GET")


def test_the_transports_connections_read_headers_the_fast_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    used: list[type[Any]] = []
    real_begin = http.client.HTTPResponse.begin

    def begin(self: http.client.HTTPResponse) -> None:
        used.append(type(self))
        real_begin(self)

    monkeypatch.setattr(http.client.HTTPResponse, "begin", begin)
    monkeypatch.setattr(HeaderFastResponse, "begin", begin)

    def answer(head: bytes) -> Iterator[bytes]:
        yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    server = RawServer(answer)
    transport = Transport()
    try:
        request = Request(method="GET", url=server.url + "/ping", operation="ping", provider="p")
        assert transport.send(request).status == 200
    finally:
        transport.close()
        server.close()
    assert used == [HeaderFastResponse]


def test_a_connection_replaced_by_someone_else_keeps_its_response_class() -> None:
    # vcrpy's recording stubs (and test doubles) bring their own: never overridden.
    from reporting_runtime.deadlines import _reading_headers_fast

    class Stub:
        response_class = object

    stub = Stub()
    assert _reading_headers_fast(stub) is stub
    assert stub.response_class is object
    plain = http.client.HTTPConnection("127.0.0.1")
    assert _reading_headers_fast(plain).response_class is HeaderFastResponse


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/mixed; boundary=xyz",
        "multipart/byteranges; boundary=THIS",
        "MultiPart/Form-Data",
        "message/http",
        "message/delivery-status",
        "application/json",
    ],
)
def test_a_plain_block_claiming_a_multipart_or_message_body_reads_as_http_client_reads_it(
    content_type: str,
) -> None:
    # The email parser goes on past such headers (a multipart's missing boundaries are
    # defects urllib3 logs, a message/* payload is a list holding an empty sub-message).
    raw = b"Content-Type: " + content_type.encode() + b"\r\nContent-Length: 2\r\n\r\n{}"
    ours, our_rest, theirs, their_rest = _both(raw)

    def shape(message: http.client.HTTPMessage) -> dict[str, Any]:
        state = _state(message)
        payload = state.pop("_payload")
        if isinstance(payload, list):  # sub-messages: compared by their own state
            state["parts"] = [shape(part) for part in payload]
        else:
            state["payload"] = payload
        return state

    assert shape(ours) == shape(theirs)
    assert ours.is_multipart() == theirs.is_multipart()
    assert our_rest == their_rest


def test_http_clients_debug_output_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    # ``HTTPConnection.debuglevel = 1`` is the usual way to watch an exchange.
    raw = b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\nHTTP/1.1 200 OK\r\nX-A: b\r\n\r\n"
    printed = []
    for cls in (HeaderFastResponse, http.client.HTTPResponse):
        cls(_Socket(raw), debuglevel=1, method="GET").begin()  # type: ignore[arg-type]
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1]
