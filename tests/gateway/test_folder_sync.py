"""Downloads finishing together in one folder share its fsyncs, and each is still covered.

A fan-out saves a hundred small files a second into one folder; each used to send its own
folder fsync (a disk flush). ``_sync_folder`` now lets calls that arrive while one runs
share the next one, but none may return before an fsync that began after it was called
(so after its rename) has ended: that is what keeps the file's name durable.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import report_gateway.download as download_module

CALLERS = 20


def test_concurrent_folder_syncs_are_shared_and_each_covered(
    monkeypatch: Any, tmp_path: Path
) -> None:
    order = itertools.count()
    counting = threading.Lock()
    syncs: list[tuple[int, int]] = []
    calls: list[tuple[int, int]] = []
    all_called = threading.Event()
    arrived = 0

    def tick() -> int:
        with counting:
            return next(order)

    def fake_fsync(folder: Path) -> None:
        began = tick()
        all_called.wait(10)  # the first one lasts until every caller came
        syncs.append((began, tick()))

    monkeypatch.setattr(download_module, "_fsync_folder", fake_fsync)

    def caller() -> None:
        nonlocal arrived
        called = tick()
        with counting:
            arrived += 1
            if arrived == CALLERS:
                all_called.set()
        download_module._sync_folder(tmp_path)
        calls.append((called, tick()))

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(calls) == CALLERS
    for called, returned in calls:
        # An fsync that began after the call and ended before it returned.
        assert any(called < began and ended < returned for began, ended in syncs), (
            called,
            returned,
            syncs,
        )
    assert len(syncs) < CALLERS  # shared
    assert not download_module._folder_syncs  # nothing kept once no one syncs


def test_a_folder_sync_really_fsyncs_the_folder(monkeypatch: Any, tmp_path: Path) -> None:
    synced: list[int] = []
    real = download_module.os.fsync

    def recording(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(download_module.os, "fsync", recording)
    download_module._sync_folder(tmp_path)
    assert len(synced) == 1


def test_a_forked_child_does_not_wait_for_its_parents_folder_sync(tmp_path: Path) -> None:
    """A parent's thread was inside a folder fsync when the process forked: the child has
    no such thread, and its own downloads into that folder must still return."""
    import os
    import time

    running = download_module._FolderSync()
    running.started = 1  # begun, never to end in the child
    download_module._folder_syncs[os.fspath(tmp_path)] = running
    try:
        pid = os.fork()
        if pid == 0:  # the child: exits 0 once its sync returned
            code = 1
            try:
                download_module._sync_folder(tmp_path)
                code = 0
            finally:
                os._exit(code)
        deadline = time.monotonic() + 60  # a bound for a busy machine, not a timing check
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise AssertionError("the child's folder sync waited for the parent's")
            time.sleep(0.05)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        del download_module._folder_syncs[os.fspath(tmp_path)]
