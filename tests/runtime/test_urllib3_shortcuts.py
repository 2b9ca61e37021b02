"""The two places the runtime reaches past urllib3's public surface to save work on every
request: reading a response's headers from ``HTTPHeaderDict``'s own table
(``messages._headers_of``) and picking the connection pool without ``PoolManager.urlopen``
(``Transport._route``). Each must give what the public way gives, with the urllib3 that is
installed: a urllib3 that changes the shape fails here instead of silently going slow (or
sending elsewhere)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reporting_runtime import Transport
from reporting_runtime.messages import Headers, _headers_of
from urllib3 import HTTPHeaderDict, HTTPResponse
from urllib3.util import parse_url


def _raw_headers() -> HTTPHeaderDict:
    response = HTTPResponse(
        body=b"",
        headers=[
            ("Content-Type", "application/json"),
            ("Request-Id", "req_123"),
            ("Set-Cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("Content-Length", "0"),
            ("X-Empty", ""),
        ],
        preload_content=False,
    )
    headers = response.headers
    assert isinstance(headers, HTTPHeaderDict)
    return headers


def test_response_headers_are_read_from_urllib3s_table_not_item_by_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = _raw_headers()
    expected = Headers((str(k), str(v)) for k, v in raw.items())  # the public, slow way

    def refuse(self: Any) -> Any:
        raise AssertionError("_headers_of fell back to items(): urllib3's table changed shape")

    monkeypatch.setattr(HTTPHeaderDict, "items", refuse)
    fast = _headers_of(raw)
    monkeypatch.undo()

    assert list(fast.items()) == list(expected.items())
    assert list(fast) == ["Content-Type", "Request-Id", "Set-Cookie", "Content-Length", "X-Empty"]
    assert fast["set-cookie"] == "a=1, b=2"
    assert fast.get("x-empty") == ""


def test_headers_of_anything_else_reads_items() -> None:
    class Replayed:  # vcrpy's replayed headers: a plain mapping-like object
        def items(self) -> list[tuple[str, str]]:
            return [("Content-Type", "text/csv"), ("content-type", "x"), ("A", "1")]

    headers = _headers_of(Replayed())
    assert list(headers.items()) == [("Content-Type", "text/csv, x"), ("A", "1")]


ROUTED_URLS = [
    "http://example.com/v1/reporting/report_runs",
    "http://example.com/v1/reporting/report_runs/frr_123?expand[]=result",
    "https://api.stripe.com/v1/files/file_1/contents",
    "https://API.Stripe.com/v1/files",
    "http://example.com:80/a",
    "https://example.com:443/a",
    "http://example.com:8080/a?b=c&d=e",
    "http://127.0.0.1:5000/v1/x",
    "http://[::1]:8080/v1/x",
    "http://[::1]/v1/x",
    "http://example.com",
    "http://example.com/",
    "http://example.com?a=b",
    "http://example.com/a%2Fb",
    "http://example.com/a%2fb",
    "http://example.com/a b",
    "http://example.com/caf\u00e9",
    "http://example.com/a/./b/../c",
    "http://example.com/a/..",
    "http://example.com/a#fragment",
    "http://example.com/a?q=1#frag",
    "http://example.com/a?q=%zz",
    "http://example.com/a?x=\u00e9",
    "http://example.com//double",
    "http://user:pw@example.com/a",
    "http://example.com.:81/trailing-dot",
    "HTTP://example.com/upper-scheme",
]


def _public_route(transport: Transport, url: str) -> tuple[Any, str]:
    pool = transport._pool.connection_from_url(url)
    return pool, parse_url(url).request_uri


@pytest.mark.parametrize("url", ROUTED_URLS)
def test_route_picks_the_pool_and_target_urllib3_would(url: str) -> None:
    transport = Transport()
    for _ in range(2):  # the second time from the per-origin cache
        pool, target = transport._route(url)
        expected_pool, expected_target = _public_route(transport, url)
        assert pool is expected_pool
        assert target == expected_target


_SEGMENT = st.text(alphabet=st.sampled_from("abcXYZ019-._~!$&'()*+,;=:@%/?# \u00e9[]"), max_size=12)


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=st.sampled_from(["example.com", "EXAMPLE.org", "127.0.0.1", "[::1]", "a-b.example"]),
    port=st.sampled_from(["", ":80", ":443", ":8080"]),
    tail=_SEGMENT,
)
def test_route_agrees_with_urllib3_on_any_path(
    scheme: str, host: str, port: str, tail: str
) -> None:
    url = f"{scheme}://{host}{port}/{tail}"
    transport = _SHARED
    try:
        expected_pool, expected_target = _public_route(transport, url)
    except Exception:
        return  # a URL urllib3 itself refuses is not routed either way
    pool, target = transport._route(url)
    assert pool is expected_pool
    assert target == expected_target


_SHARED = Transport()
