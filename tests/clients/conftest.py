"""Replaying the providers' documented examples (tests/cassettes/<provider>/docs/) with vcrpy.

Requests match on method, scheme, host, port, path and query (bodies and headers are the
client's business); nothing is recorded and the network stays blocked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import vcr

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"

REPLAY = vcr.VCR(
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path", "query"],
)


@pytest.fixture
def cassette() -> Iterator[Callable[[str, str], AbstractContextManager[Any]]]:
    """`with cassette("stripe", "stripe-api-errors.yaml") as played:` replays one docs cassette."""

    def use(provider: str, name: str) -> AbstractContextManager[Any]:
        path = CASSETTES / provider / "docs" / name
        assert path.is_file(), f"missing documented-example cassette {path}"
        return REPLAY.use_cassette(str(path))

    return use
