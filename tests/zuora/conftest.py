"""Fixtures for the zuora provider: gateways wired to the plugin alone, cassette replays
(Zuora's documented examples and small scripted exchanges), and one shared sandbox.

Gateways built here never read the real environment or a config file, and load no entry
points unless a test asks for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import report_gateway_zuora.plugin as zuora_plugin
import vcr
from report_gateway import Gateway
from report_gateway_sandbox import (
    ZUORA_ACCESS_KEY_ID,
    ZUORA_SECRET_ACCESS_KEY,
    Sandbox,
    SandboxConfig,
)
from reporting_runtime import Request, Response, RetryConfig, Transport

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "zuora" / "docs"
DOCS_HOST = "https://zconnectsandbox.zuora.com/api/rest/v1"

REPLAY = vcr.VCR(record_mode="none", match_on=["method", "scheme", "host", "port", "path", "query"])

#: Sandbox behaviour every test starts from (runs finish fast, results stay small).
SANDBOX_DEFAULTS: dict[str, Any] = {
    "run_seconds": 0.6,
    "result_rows": 40,
    "faults": [],
    "zuora_token_seconds": 3599,
}


class RecordingTransport(Transport):
    """The runtime's transport, keeping every request as it leaves the pipeline."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[Request] = []

    def send(self, request: Request, *, stream: bool = False, retries: Any = None) -> Response:
        self.sent.append(request)
        return super().send(request, stream=stream, retries=retries)


@pytest.fixture
def plugin() -> ModuleType:
    return zuora_plugin


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """A private environment: no ZUORA_* variables, config home in a temporary folder."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config-home")}


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def make_gateway(
    environ: dict[str, str], transport: RecordingTransport
) -> Iterator[Callable[..., Gateway]]:
    """``make_gateway({"base_url": ...})``: a Gateway with only the zuora plugin."""
    built: list[Gateway] = []

    def build(zuora: Mapping[str, Any] | None = None, **kwargs: Any) -> Gateway:
        kwargs.setdefault("plugins", [zuora_plugin])
        kwargs.setdefault("load_entrypoints", False)
        kwargs.setdefault("environ", environ)
        kwargs.setdefault("transport", transport)
        gateway = Gateway({"zuora": dict(zuora)} if zuora is not None else None, **kwargs)
        built.append(gateway)
        return gateway

    yield build
    for gateway in built:
        gateway.close()


@pytest.fixture
def docs_gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    """Aimed at the host of Zuora's examples, by data-center name, with the placeholder keys
    the cassettes carry; one attempt per request (a cassette holds one answer each)."""
    return make_gateway(
        {
            "api_access_key_id": "REDACTED",
            "api_secret_access_key": "REDACTED",
            "data_center": "US Cloud 2 Sandbox",
        },
        retry=RetryConfig(total=0),
    )


@pytest.fixture
def docs_cassette() -> Iterator[Callable[..., AbstractContextManager[Any]]]:
    """``with docs_cassette("overview-...yaml", "cancel-...yaml") as played:`` replays one or
    more documented-example cassettes (merged in order into one temporary cassette)."""
    made: list[Path] = []

    def use(*names: str, **options: Any) -> AbstractContextManager[Any]:
        import tempfile

        import yaml

        interactions: list[Any] = []
        for name in names:
            path = CASSETTES / name
            assert path.is_file(), f"missing documented-example cassette {path}"
            interactions += yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - removed after the test
            "w", suffix=".yaml", delete=False, encoding="utf-8"
        )
        with handle:
            yaml.safe_dump({"interactions": interactions, "version": 1}, handle)
        made.append(Path(handle.name))
        return REPLAY.use_cassette(handle.name, **options)

    yield use
    for path in made:
        path.unlink(missing_ok=True)


def _interaction(
    method: str,
    path: str,
    body: Any,
    *,
    status: int = 200,
    content_type: str = "application/json;charset=UTF-8",
    host: str = DOCS_HOST,
) -> dict[str, Any]:
    """One interaction for a hand-built cassette (JSON bodies given as Python values)."""
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "request": {"body": None, "headers": {}, "method": method, "uri": host + path},
        "response": {
            "body": {"string": text},
            "headers": {"Content-Type": [content_type], "Zuora-Request-Id": ["scripted"]},
            "status": {"code": status, "message": "OK" if status == 200 else "Error"},
        },
    }


@pytest.fixture
def scripted() -> Callable[..., dict[str, Any]]:
    """``scripted("GET", "/reportruns/x", {...})``: one interaction for ``script``."""
    return _interaction


@pytest.fixture
def script(tmp_path: Path) -> Callable[[Sequence[dict[str, Any]]], AbstractContextManager[Any]]:
    """Replay hand-built interactions (for shapes Zuora documents in words only)."""

    def use(interactions: Sequence[dict[str, Any]]) -> AbstractContextManager[Any]:
        import yaml

        path = tmp_path / f"scripted-{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump({"interactions": list(interactions), "version": 1}))
        return REPLAY.use_cassette(str(path))

    return use


@pytest.fixture(scope="session")
def _sandbox_server() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(**SANDBOX_DEFAULTS)) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(_sandbox_server: Sandbox) -> Sandbox:
    """The shared sandbox, emptied of runs, statistics and faults."""
    _sandbox_server.configure(**SANDBOX_DEFAULTS)
    _sandbox_server.reset()
    return _sandbox_server


@pytest.fixture
def sandbox_settings(sandbox: Sandbox) -> dict[str, Any]:
    return {
        "api_access_key_id": ZUORA_ACCESS_KEY_ID,
        "api_secret_access_key": ZUORA_SECRET_ACCESS_KEY,
        "base_url": sandbox.zuora_base_url,
        "create_lookup_seconds": 5,
    }


@pytest.fixture
def gw(make_gateway: Callable[..., Gateway], sandbox_settings: dict[str, Any]) -> Gateway:
    """A Gateway on the sandbox with the default credential pair."""
    return make_gateway(sandbox_settings)


class SandboxCounts:
    """What the sandbox saw: requests per operation and Zuora runs created."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def requests(self, operation: str) -> int:
        count: int = self.sandbox.stats()["requests"].get(operation, 0)
        return count

    @property
    def runs_created(self) -> int:
        created: int = self.sandbox.stats()["runs_created"]["zuora"]
        return created

    def logged(self, operation: str) -> list[dict[str, Any]]:
        """The sandbox's log entries (method, path, headers...) for ``operation``."""
        log: list[dict[str, Any]] = self.sandbox.stats()["request_log"]
        return [entry for entry in log if entry["operation"] == operation]


@pytest.fixture
def counts(sandbox: Sandbox) -> SandboxCounts:
    return SandboxCounts(sandbox)
