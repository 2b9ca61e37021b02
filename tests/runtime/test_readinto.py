"""Response.readinto: the download hot path reads into one caller-owned buffer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import vcr  # type: ignore[import-untyped]
from reporting_runtime import Request, Response, Transport
from reporting_runtime.messages import Headers


def get(url: str) -> Request:
    return Request(method="GET", url=url, operation="download", provider="p")


def drain(response: Response, size: int) -> list[bytes]:
    buffer = memoryview(bytearray(size))
    pieces = []
    while count := response.readinto(buffer):
        pieces.append(bytes(buffer[:count]))
    return pieces


def test_readinto_fills_the_buffer_and_gives_the_connection_back(server: Any) -> None:
    body = bytes(range(256)) * 40
    server.reply(200, body, headers={"Request-Id": "req_r"})
    transport = Transport()
    with transport.send(get(f"{server.url}/f"), stream=True) as response:
        assert response.content_length == len(body)
        pieces = drain(response, 4096)
    assert b"".join(pieces) == body
    assert [len(p) for p in pieces[:2]] == [4096, 4096]  # full buffers, not socket reads
    server.reply(200, b"again")
    assert transport.send(get(f"{server.url}/g")).read() == b"again"


def test_readinto_reads_a_chunked_body(server: Any) -> None:
    body = b"0123456789" * 1000
    server.reply(200, body, chunked=True)
    with Transport().send(get(f"{server.url}/f"), stream=True) as response:
        assert b"".join(drain(response, 1000)) == body


def test_readinto_works_the_same_under_vcrpy_replay(server: Any, tmp_path: Path) -> None:
    body = b"y" * 5000
    server.reply(200, body, headers={"Content-Type": "text/csv"})
    cassette = tmp_path / "c.yaml"
    with vcr.use_cassette(str(cassette), record_mode="once"):
        recorded = Transport().send(get(f"{server.url}/f"), stream=True)
        assert b"".join(drain(recorded, 1024)) == body
    with vcr.use_cassette(str(cassette), record_mode="none"):
        response = Transport().send(get(f"{server.url}/f"), stream=True)
        assert b"".join(drain(response, 1024)) == body
    assert len(server.seen) == 1


def test_readinto_of_a_body_already_in_memory() -> None:
    response = Response(
        None, request=get("http://x"), status=200, headers=Headers(), content=b"abcdefg"
    )
    assert drain(response, 3) == [b"abc", b"def", b"g"]


class ReadOnlyRaw:
    """A raw response with ``read`` but no ``readinto`` (an older stand-in)."""

    status = 200
    headers: dict[str, str] = {}

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.released = False

    def read(self, amt: int | None = None) -> bytes:
        piece, self.body = self.body[: amt or None], self.body[amt or len(self.body) :]
        return piece

    def release_conn(self) -> None:
        self.released = True

    def close(self) -> None:
        pass


def test_readinto_falls_back_to_read() -> None:
    raw = ReadOnlyRaw(b"hello world")
    response = Response(raw, request=get("http://x"))  # type: ignore[arg-type]
    assert drain(response, 4) == [b"hell", b"o wo", b"rld"]
    assert raw.released
