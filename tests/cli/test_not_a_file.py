"""``-o`` naming a FIFO or a device node (``-o /dev/null`` as root) is a usage error before
any run is created; the node stays as it was."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cli, needs_stripe

V1_PARAMS = ["-p", "interval_start=2025-01-01", "-p", "interval_end=2025-02-01"]


def fifo(path: Path) -> str:
    os.mkfifo(path)
    return "a FIFO (named pipe)"


def char_device(path: Path) -> str:
    if os.geteuid() != 0:
        pytest.skip("mknod of a character device needs root")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    return "a character device"


@needs_stripe
@pytest.mark.parametrize("make", [fifo, char_device], ids=["fifo", "char-device"])
def test_run_with_o_a_node_is_refused_before_any_run(
    provider_cli: Cli, sandbox: Any, tmp_path: Path, make: Callable[[Path], str]
) -> None:
    target = tmp_path / "null"
    kind = make(target)
    before = sandbox.stats()["runs_created"].get("stripe", 0)
    result = provider_cli(
        "run", "stripe", "balance.summary.1", *V1_PARAMS, "-o", str(target),
        "--base-url", sandbox.stripe_base_url,
    )  # fmt: skip
    assert result.code == 2
    assert f"{target} is {kind}, not a file; refusing to replace it" in result.err
    assert "Traceback" not in result.err
    assert sandbox.stats()["runs_created"].get("stripe", 0) == before
    mode = os.lstat(target).st_mode
    assert stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)
