"""A download never replaces what is not a file (a FIFO, a device node: ``-o /dev/null`` as
root), and the next download into a folder removes a killed process's temporaries."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from report_gateway import DownloadError
from report_gateway import download as download_module
from report_gateway.atomic import atomic_file
from report_gateway.download import download

from tests.gateway.downloads import DATA, leftovers, make_run

NodeMaker = Callable[[Path], str]


def fifo(path: Path) -> str:
    os.mkfifo(path)
    return "a FIFO (named pipe)"


def char_device(path: Path) -> str:
    if os.geteuid() != 0:
        pytest.skip("mknod of a character device needs root")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    return "a character device"


NODES = [pytest.param(fifo, id="fifo"), pytest.param(char_device, id="char-device")]


def still_a_node(path: Path) -> bool:
    mode = os.lstat(path).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


@pytest.mark.parametrize("make", NODES)
def test_download_refuses_a_node_and_leaves_it(
    tmp_path: Path, opener: Any, scripted: Any, make: NodeMaker
) -> None:
    target = tmp_path / "null"
    kind = make(target)
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    with pytest.raises(DownloadError) as caught:
        download(make_run(), target, play)
    assert str(caught.value) == f"{target} is {kind}, not a file; refusing to replace it"
    assert still_a_node(target)
    assert play.offsets == []  # refused before a byte was fetched
    assert leftovers(tmp_path) == []


def test_a_node_made_during_the_download_is_still_not_replaced(
    tmp_path: Path, opener: Any, scripted: Any
) -> None:
    """The check-then-rename race: what is at the target is looked at again just before
    the rename."""
    target = tmp_path / "out.csv"

    def progress(done: int, total: int | None) -> None:
        if not target.exists():
            os.mkfifo(target)

    play = opener([lambda offset: scripted(DATA, offset=offset)])
    with pytest.raises(DownloadError, match="is a FIFO"):
        download(make_run(), target, play, on_progress=progress)
    assert still_a_node(target)
    assert leftovers(tmp_path) == []


def test_a_symlink_is_replaced_itself_never_written_through(
    tmp_path: Path, opener: Any, scripted: Any
) -> None:
    """As it always was: the rename replaces the link, so a link to a node leaves the node."""
    node = tmp_path / "node"
    os.mkfifo(node)
    link = tmp_path / "out.csv"
    link.symlink_to(node)
    play = opener([lambda offset: scripted(DATA, offset=offset)])
    download(make_run(), link, play)
    assert not link.is_symlink()
    assert link.read_bytes() == DATA
    assert still_a_node(node)


@pytest.mark.parametrize("make", NODES)
def test_atomic_file_refuses_a_node(tmp_path: Path, make: NodeMaker) -> None:
    target = tmp_path / "out.parquet"
    kind = make(target)
    refused = pytest.raises(DownloadError, match=f"is {re.escape(kind)}, not a file")
    with refused, atomic_file(target) as out:
        out.write(b"data")
    assert still_a_node(target)
    assert leftovers(tmp_path) == []


# -- temporaries a killed process left (review 12, F3) -------------------------------------

HOLD = """\
import sys, time
from pathlib import Path
from report_gateway.download import _new_temporary, _Temporaries
registry = _Temporaries()
path, fd = _new_temporary(Path(sys.argv[1]), "ctx_a.csv", registry)
print(path, flush=True)
time.sleep(120)
"""


def holder(folder: Path) -> tuple[subprocess.Popen[str], Path]:
    """A child process that made a temporary with the project's own helper (empty, locked)
    and sleeps holding it."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    return child, Path(child.stdout.readline().strip())


def test_an_empty_temporary_of_a_killed_process_goes_at_the_next_download(
    tmp_path: Path, opener: Any, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fan-out killed right after creating a temporary leaves it empty; a re-run seconds
    later (a new process: nothing swept yet) must remove it, while a live one stays."""
    monkeypatch.setattr(download_module, "_swept", {})  # as in a new process
    dead_child, dead = holder(tmp_path)
    live_child, live = holder(tmp_path)
    try:
        dead_child.send_signal(signal.SIGKILL)
        dead_child.wait(timeout=10)
        assert dead.stat().st_size == 0
        assert time.time() - dead.stat().st_mtime < 60  # young: it used to be spared
        play = opener([lambda offset: scripted(DATA, offset=offset)])
        download(make_run(), tmp_path / "ctx_a.csv", play)
        assert not dead.exists()
        assert live.exists()
        assert leftovers(tmp_path) == [live.name]
    finally:
        live_child.kill()
        live_child.wait(timeout=10)
        if dead_child.poll() is None:  # pragma: no cover - only when the test failed early
            dead_child.kill()


def test_a_temporary_a_sweep_removed_before_its_lock_is_replaced_by_a_new_one(
    tmp_path: Path,
) -> None:
    """Why no age spares an empty temporary any more: the download that made it and lost
    it to a sweep before locking it notices (no name left) and makes another."""
    from report_gateway.download import _hold, _Temporaries

    path = tmp_path / ".out.csv.0badc0de.part"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    registry = _Temporaries()
    try:
        path.unlink()  # the sweep took its lock first and removed it
        assert _hold(fd, registry) is False
        assert registry.locks == []
    finally:
        os.close(fd)
        registry.discard()
