"""Replaying the providers' documented examples (tests/cassettes/<provider>/docs/) with vcrpy.

Requests match on method, scheme, host, port, path and query (bodies and headers are the
client's business); nothing is recorded and the network stays blocked.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import vcr
from reporting_runtime import Request, Response, Transport

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"

REPLAY = vcr.VCR(
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path", "query"],
)


class RecordingTransport(Transport):
    """The runtime's transport, keeping each request as it leaves the pipeline (auth included).

    vcrpy matches on the URL only; this is how a test checks the headers and body a client
    really sent against the documented request.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Request] = []

    def send(self, request: Request, *, stream: bool = False, retries: Any = None) -> Response:
        self.sent.append(request)
        return super().send(request, stream=stream, retries=retries)


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def cassette() -> Callable[[str, str], AbstractContextManager[Any]]:
    """`with cassette("stripe", "stripe-api-errors.yaml") as played:` replays one docs cassette;
    `played.all_played` says no documented interaction was left unused."""

    def use(provider: str, name: str) -> AbstractContextManager[Any]:
        path = CASSETTES / provider / "docs" / name
        assert path.is_file(), f"missing documented-example cassette {path}"
        return REPLAY.use_cassette(str(path))

    return use
