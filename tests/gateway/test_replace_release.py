"""A download over yesterday's large file does not pay for freeing it (``download._replace``):
the old file is held open through the rename and freed when a thread of its own closes it.
What is replaced, and what is never touched, stays exactly as before."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from report_gateway import download as download_module
from report_gateway.download import download

from tests.forking import exit_code_within
from tests.gateway.downloads import DATA, make_run

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX rename semantics")


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Which descriptors ``_replace`` held, and on which thread each was closed."""
    seen: dict[str, Any] = {"held": [], "closed_on": {}, "done": threading.Event()}
    monkeypatch.setattr(download_module, "RELEASE_AT", 1)
    real_hold = download_module._hold_replaced
    real_close = os.close

    def hold(target: Path) -> int | None:
        fd = real_hold(target)
        if fd is not None:
            seen["held"].append((fd, os.fstat(fd).st_ino))
        return fd

    def close(fd: int) -> None:
        if any(fd == held for held, _ in seen["held"]):
            seen["closed_on"][fd] = threading.current_thread().name
            seen["done"].set()
        real_close(fd)

    monkeypatch.setattr(download_module, "_hold_replaced", hold)
    monkeypatch.setattr(os, "close", close)
    return seen


def test_the_replaced_file_is_freed_by_the_releasers_thread_not_the_caller(
    tmp_path: Path, opener: Any, scripted: Any, closes: dict[str, Any]
) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(b"yesterday's report\n" * 100)
    old_inode = target.stat().st_ino
    download(make_run(), target, opener([lambda offset: scripted(DATA, offset=offset)]))
    assert target.read_bytes() == DATA
    assert [inode for _, inode in closes["held"]] == [old_inode]
    assert closes["done"].wait(10)
    ((fd, _),) = closes["held"]
    assert closes["closed_on"][fd] == "report-gateway-release"


def test_a_link_at_the_target_is_replaced_and_what_it_points_to_is_left_alone(
    tmp_path: Path, opener: Any, scripted: Any, closes: dict[str, Any]
) -> None:
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_bytes(b"keep me\n" * 100)
    target = tmp_path / "out.csv"
    target.symlink_to(elsewhere)
    download(make_run(), target, opener([lambda offset: scripted(DATA, offset=offset)]))
    assert not target.is_symlink()
    assert target.read_bytes() == DATA
    assert elsewhere.read_bytes() == b"keep me\n" * 100
    assert closes["held"] == []  # a link is never held (nor followed)


def test_a_file_with_another_name_is_not_held(
    tmp_path: Path, opener: Any, scripted: Any, closes: dict[str, Any]
) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(b"yesterday\n" * 100)
    other = tmp_path / "other-name.csv"
    os.link(target, other)
    download(make_run(), target, opener([lambda offset: scripted(DATA, offset=offset)]))
    assert target.read_bytes() == DATA
    assert other.read_bytes() == b"yesterday\n" * 100  # the rename freed nothing
    assert closes["held"] == []


def test_a_small_file_is_freed_by_the_rename_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download_module, "RELEASE_AT", 1 << 20)
    target = tmp_path / "out.csv"
    target.write_bytes(b"small\n")
    assert download_module._hold_replaced(target) is None


def test_a_failed_rename_closes_the_held_file_and_leaves_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closes: dict[str, Any]
) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(b"yesterday\n" * 100)

    def refuse(source: object, destination: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        download_module._replace(tmp_path / "missing.part", target)
    assert target.read_bytes() == b"yesterday\n" * 100
    ((fd, _),) = closes["held"]
    assert closes["closed_on"][fd] == threading.current_thread().name  # at once, here


def test_past_the_backlog_the_caller_frees_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closes: dict[str, Any]
) -> None:
    monkeypatch.setattr(download_module, "_RELEASE_BACKLOG", 0)
    target = tmp_path / "out.csv"
    target.write_bytes(b"yesterday\n" * 100)
    temporary = tmp_path / ".out.csv.0000abcd.part"
    temporary.write_bytes(b"today\n")
    download_module._replace(temporary, target)
    assert target.read_bytes() == b"today\n"
    ((fd, _),) = closes["held"]
    assert closes["closed_on"][fd] == threading.current_thread().name


def _replace_with(folder: Path, target: Path, data: bytes) -> None:
    temporary = folder / f".{target.name}.{os.urandom(4).hex()}.part"
    temporary.write_bytes(data)
    download_module._replace(temporary, target)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_a_forked_child_does_not_keep_the_replaced_files_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker forked while replaced files wait to be freed (a ``multiprocessing`` pool)
    must not hold them: their disk space would stay taken for the child's whole life."""
    monkeypatch.setattr(download_module, "RELEASE_AT", 1)
    stalled = threading.Event()
    real_close = os.close

    def close(fd: int) -> None:
        if threading.current_thread().name == "report-gateway-release":
            stalled.wait(10)  # the parent's files stay waiting until the child has looked
        real_close(fd)

    monkeypatch.setattr(os, "close", close)
    target = tmp_path / "out.csv"
    target.write_bytes(b"night 0\n" * 100)
    replaced = []
    try:
        for night in range(1, 4):
            replaced.append(target.stat().st_ino)
            _replace_with(tmp_path, target, f"night {night}\n".encode() * 100)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            still_open = 0
            fds = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
            for name in os.listdir(fds):
                with contextlib.suppress(OSError, ValueError):
                    info = os.fstat(int(name))
                    still_open += info.st_nlink == 0 and info.st_ino in replaced
            os._exit(still_open)
        code = exit_code_within(pid, 30)
    finally:
        stalled.set()
    assert code == 0  # no replaced file held by the child (None: it hung)
    assert target.read_bytes() == b"night 3\n" * 100


@pytest.mark.parametrize("kind", ["fifo", "unreadable"])
def test_what_is_at_the_target_is_never_opened_for_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A FIFO made at the target in the instant after the check is pinned, not opened (an
    open would block or run a driver's open); a file its owner may not read is held."""
    monkeypatch.setattr(download_module, "RELEASE_AT", 1)
    target = tmp_path / "out.csv"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.write_bytes(b"yesterday\n")
        os.chmod(target, 0)
    opened: list[int] = []
    real_open = os.open

    def spy(path: Any, flags: int, *args: Any) -> int:
        if Path(path) == target:
            opened.append(flags)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", spy)
    held = download_module._hold_replaced(target)
    if kind == "fifo":
        assert held is None
    else:
        assert held is not None
        os.close(held)
    if hasattr(os, "O_PATH"):
        assert opened
        assert all(flags & os.O_PATH for flags in opened)
