"""The "busy machine": another process allocating and writing gigabytes while a figure is
measured. `python -m tests.bench.busy FOLDER ALLOC_BYTES FILE_BYTES SECONDS`.

Nightly pulls run beside other jobs. Under memory pressure from a neighbour, a transfer's
write() can cost far more than on a quiet machine (issue 12: a 1 MiB write took ~3 ms
instead of 0.2 ms), which a quiet-machine bench never shows. Each cycle here touches every
page of a fresh ALLOC_BYTES buffer, writes FILE_BYTES of it to a file (no fsync: dirty
pages and writeback, as an ordinary job makes them), deletes the file and frees the
buffer. The process exits by itself after SECONDS, so a crashed bench cannot leave it
running for long; the bench stops it as soon as its pairs are done.
"""

from __future__ import annotations

import os
import sys
import time

_BLOCK = 1 << 20


def cycle(folder: str, alloc: int, file_bytes: int, deadline: float) -> None:
    buffer = bytearray(alloc)
    view = memoryview(buffer)
    block = os.urandom(_BLOCK)
    for offset in range(0, alloc - _BLOCK + 1, _BLOCK):
        view[offset : offset + _BLOCK] = block  # touch every page: resident, not just mapped
        if time.monotonic() > deadline:
            return
    path = os.path.join(folder, f"busy-{os.getpid()}.bin")
    try:
        with open(path, "wb") as out:
            written = 0
            while written < file_bytes and time.monotonic() < deadline:
                start = written % max(_BLOCK, alloc - _BLOCK)
                out.write(view[start : start + _BLOCK])
                written += _BLOCK
    finally:
        os.unlink(path)
    view.release()


def main(argv: list[str]) -> int:
    folder, alloc, file_bytes, seconds = argv
    deadline = time.monotonic() + float(seconds)
    print("busy", flush=True)  # the bench waits for this before its first pair
    while time.monotonic() < deadline:
        cycle(folder, int(alloc), int(file_bytes), deadline)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
