"""Waiting for a child a test forked, with a limit: a child that hangs (on a lock copied
mid-use, say) must fail the test that forked it, not hang the whole run."""

from __future__ import annotations

import os
import signal
import time


def exit_code_within(pid: int, seconds: float) -> int | None:
    """The forked child's exit code, or None (and the child killed and reaped) if it is
    still running after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None
