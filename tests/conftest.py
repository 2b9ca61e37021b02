"""Suite-wide options: live mode is opt-in, everything else replays or talks to loopback."""

from __future__ import annotations

import os
import tempfile

import pytest

# The run journal's default file lives in the user data folder: a test run keeps its own.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="report-gateway-tests-data-")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--live",
        action="store_true",
        default=False,
        help="run tests marked `live` against the real provider services "
        "(needs credentials in the environment; network must be allowed)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--live"):
        return
    skip_live = pytest.mark.skip(reason="live test: run with --live and provider credentials")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip_live)
