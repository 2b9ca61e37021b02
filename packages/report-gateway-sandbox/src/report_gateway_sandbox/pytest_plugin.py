"""pytest fixtures for testing against the sandbox, loaded by pytest through the `pytest11`
entry point whenever report-gateway-sandbox is installed (as pytest ships `pytester`).

- `sandbox_config`: the `SandboxConfig` a test starts from. Override it in a conftest (or a
  test module) to give a folder its own defaults; the plugin's own is `SandboxConfig()`.
- `sandbox`: a sandbox on 127.0.0.1 with exactly that configuration, no runs, no statistics;
  whatever the test changes (`configure`, `add_fault`) is undone afterwards.
- `sandbox_url`: its base URL (`sandbox.url`).
- `make_sandbox`: a factory for more sandboxes of a test's own (another seed, a limit, a
  fault from the first request), each on its own port and stopped after the test.
- `sandbox_server`: the session's one server behind `sandbox`, as the last test left it.

One server serves the whole session: starting a server per test costs a port and a thread
each, and restoring the configuration and forgetting the state gives the same sandbox.
Disable the plugin with `-p no:report_gateway_sandbox`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from report_gateway_sandbox.config import SandboxConfig
from report_gateway_sandbox.server import Sandbox

MakeSandbox = Callable[..., Sandbox]


def _restore(server: Sandbox, config: SandboxConfig) -> None:
    """Give a running sandbox every setting of `config` (not only those that differ)."""
    server.configure(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """The configuration `sandbox` and `make_sandbox` start from; override to change it."""
    return SandboxConfig()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: Sandbox, sandbox_config: SandboxConfig) -> Iterator[Sandbox]:
    """The session's sandbox with `sandbox_config`, no runs, no statistics."""
    _restore(sandbox_server, sandbox_config)
    sandbox_server.reset()
    yield sandbox_server
    _restore(sandbox_server, sandbox_config)


@pytest.fixture
def sandbox_url(sandbox: Sandbox) -> str:
    return sandbox.url


@pytest.fixture
def make_sandbox(sandbox_config: SandboxConfig) -> Iterator[MakeSandbox]:
    """`make_sandbox(config=None, **changes)`: a started sandbox of the test's own, built
    from `config` (default: `sandbox_config`) with `changes` applied (`faults`, limits,
    `seed`...). Usable as a context manager to stop it before the test ends."""
    started: list[Sandbox] = []

    def make(config: SandboxConfig | None = None, /, **changes: Any) -> Sandbox:
        base = config if config is not None else sandbox_config
        own = Sandbox(base.updated(changes)).start()
        started.append(own)
        return own

    yield make
    for own in started:
        own.stop()
