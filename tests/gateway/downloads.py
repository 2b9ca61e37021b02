"""What the download tests share: a finished run to fetch, the temporaries a download may
leave behind, stand-ins for the no-replace renames that fail, and the forcing of each way
a result is put in place without replacing.

One copy, so that every download test builds its run and looks for leftovers the same way:
a change to ``ReportRun`` or to the temporaries' names is made here once.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from report_gateway import ReportRun, ResultFile, RunStatus
from report_gateway import download as download_module

DATA = b"id,amount\n" + b"".join(b"row_%d,%d\n" % (i, i * 7) for i in range(5000))
URL = "https://files.invalid/x"


def make_run(size: int | None = len(DATA), *, url: str = URL, **result: Any) -> ReportRun:
    """A succeeded run whose result is at ``url``: ``size`` is the announced byte count
    (None: not announced), ``result`` any other ``ResultFile`` field."""
    return ReportRun(
        provider="fake",
        id="run_1",
        report_id="r",
        status=RunStatus.SUCCEEDED,
        raw_status="succeeded",
        result=ResultFile(url=url, size=size, **result),
    )


def leftovers(folder: Path) -> list[str]:
    """The download temporaries (``*.part``) in ``folder``: whichever way a download ends,
    it must leave none."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def failing_renameat2(code: int) -> Callable[..., int]:
    """A stand-in for libc's ``renameat2`` that fails as C does: -1, with ``code`` in errno."""

    def renameat2(*args: Any) -> int:
        ctypes.set_errno(code)
        return -1

    return renameat2


def failing_link(code: int) -> Callable[..., None]:
    """A stand-in for ``os.link`` that fails with ``code``."""

    def link(*args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code))

    return link


def take_the_way(way: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the way a download (or ``atomic_file``) puts its result in place without
    replacing anything: "renameat2", the system's (the test skipped where there is none),
    with ``os.link`` failing with EIO meanwhile (a download that did not use renameat2
    then fails the test instead of passing through a fallback); "renameat2 refused, link", the
    hard-link fallback after renameat2's EINVAL; "link", the hard link with no renameat2;
    "last check", no renameat2 and links refused (EPERM): a check, then a plain rename."""
    if way == "renameat2":
        if download_module._load_renameat2() is None:
            pytest.skip("no renameat2 here")
        monkeypatch.setattr(os, "link", failing_link(errno.EIO))
    elif way == "renameat2 refused, link":
        monkeypatch.setattr(download_module, "_renameat2", failing_renameat2(errno.EINVAL))
    elif way == "link":
        monkeypatch.setattr(download_module, "_renameat2", None)
    elif way == "last check":
        monkeypatch.setattr(download_module, "_renameat2", None)
        monkeypatch.setattr(os, "link", failing_link(errno.EPERM))
    else:
        raise ValueError(f"no such way: {way!r}")
