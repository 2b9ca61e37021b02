"""Flow replays: the flows in tests/recording, run against their cassettes or the live services.

tests/recording is a package (``python -m tests.recording``) that these tests import, so the
repository root must be importable; pytest's importlib mode does not add it by itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

#: A pattern no address matches (an empty list would match every host in pytest-recording).
NO_HOST = "(?!)"
REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture
def allowed_hosts(request: pytest.FixtureRequest) -> list[str]:
    """No host at all for replays (not even loopback: a cassette answers everything); a
    `live` test (run only with --live) may go anywhere; a test that serves something on
    loopback says so with ``@pytest.mark.block_network(allowed_hosts=[...])``.

    pytest-recording checks the connected address (an IP once DNS has answered), so the
    providers' host names cannot be listed: a live test opens the network as a whole.
    """
    if request.node.get_closest_marker("live") is not None:
        return [".*"]
    marker = request.node.get_closest_marker("block_network")
    if marker is not None and marker.kwargs.get("allowed_hosts"):
        return list(marker.kwargs["allowed_hosts"])
    return [NO_HOST]
