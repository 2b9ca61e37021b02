"""Fixtures for the gateway core: the example plugin, isolated gateways, scripted responses.

Gateways built here never read the real environment or the user's config file, and never
load installed entry points unless a test asks for it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from report_gateway import Gateway

EXAMPLE_SRC = Path(__file__).parents[1] / "plugins" / "report-gateway-example" / "src"


@pytest.fixture(scope="session")
def example_plugin() -> ModuleType:
    """The example plugin module, from the installed distribution or from its source tree."""
    try:
        return importlib.import_module("report_gateway_example.plugin")
    except ImportError:
        sys.path.insert(0, str(EXAMPLE_SRC))
        return importlib.import_module("report_gateway_example.plugin")


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """A private environment: no provider variables, config home in a temporary folder."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config-home")}


@pytest.fixture
def make_gateway(
    example_plugin: ModuleType, environ: dict[str, str]
) -> Iterator[Callable[..., Gateway]]:
    """Build gateways with the example plugin registered and nothing else from outside."""
    built: list[Gateway] = []

    def build(settings: Mapping[str, Any] | None = None, **kwargs: Any) -> Gateway:
        if settings is None:
            settings = {"example": {"token": "tok_test", "polls": 2}}
        kwargs.setdefault("plugins", [example_plugin])
        kwargs.setdefault("load_entrypoints", False)
        kwargs.setdefault("environ", environ)
        gateway = Gateway(settings, **kwargs)
        built.append(gateway)
        return gateway

    yield build
    for gateway in built:
        gateway.close()


@pytest.fixture(autouse=True)
def _clear_example_changes(example_plugin: ModuleType) -> None:
    example_plugin.CHANGES.clear()


class ScriptedResponse:
    """A streaming response that plays scripted chunks, then fails or ends.

    ``fail_after``: raise ``error`` once that many bytes of this body were delivered.
    """

    def __init__(
        self,
        data: bytes,
        *,
        offset: int = 0,
        ranges: bool = True,
        fail_after: int | None = None,
        error: BaseException | None = None,
        content_length: int | None | str = "auto",
        chunk: int | None = None,
        status: int | None = None,
    ) -> None:
        self.total = len(data)
        self.offset = offset if ranges else 0
        self.body = data[self.offset :]
        self.status = status or (206 if self.offset else 200)
        self.headers: dict[str, str] = {}
        if ranges:
            self.headers["Accept-Ranges"] = "bytes"
        if self.offset:
            self.headers["Content-Range"] = f"bytes {self.offset}-{self.total - 1}/{self.total}"
        self.content_length = len(self.body) if content_length == "auto" else content_length
        self.fail_after = fail_after
        self.error = error or ConnectionResetError("connection dropped")
        self.chunk = chunk
        self.closed = False
        self.delivered = 0

    def iter_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        size = self.chunk or chunk_size
        for start in range(0, len(self.body), size):
            piece = self.body[start : start + size]
            if self.fail_after is not None and self.delivered + len(piece) > self.fail_after:
                keep = self.fail_after - self.delivered
                if keep > 0:
                    self.delivered += keep
                    yield piece[:keep]
                raise self.error
            self.delivered += len(piece)
            yield piece

    def close(self) -> None:
        self.closed = True


class ScriptedOpener:
    """``open_result(offset)`` answering from a list of response factories, in order."""

    def __init__(self, plays: Sequence[Callable[[int], ScriptedResponse]]) -> None:
        self.plays = list(plays)
        self.offsets: list[int] = []
        self.responses: list[ScriptedResponse] = []

    def __call__(self, offset: int) -> ScriptedResponse:
        self.offsets.append(offset)
        play = self.plays[min(len(self.offsets), len(self.plays)) - 1]
        response = play(offset)
        self.responses.append(response)
        return response


@pytest.fixture
def scripted() -> type[ScriptedResponse]:
    return ScriptedResponse


@pytest.fixture
def opener() -> type[ScriptedOpener]:
    return ScriptedOpener
