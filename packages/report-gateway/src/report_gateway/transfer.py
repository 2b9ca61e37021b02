"""Reading a result's bytes once, in order, surviving dropped connections.

Both ``download`` and ``rows`` consume ``ResultBody.chunks()``: it reopens the result after a
connection drops or a body ends short, asking for the rest with a Range request
(``open_result(offset=N)``), with ``If-Range`` carrying the first response's validator (a
strong ETag, else its Last-Modified) when the opener takes one. Bytes from two versions of a
file are never spliced: a resumed answer that is a whole body (200), or whose validator
differs from the first response's, means "start again": a consumer that can rewind
(``download`` truncates its temporary file; ``on_restart``) gets the whole body again from
byte zero; one that cannot (``rows`` has already yielded rows) gets the rest only when both
answers carry the same strong ETag, else an ``IntegrityError``.

A download's time is bounded twice when the driver takes the keywords
(``result_opener``): ``stall_timeout``, the longest wait for any byte (each reconnect gets
it afresh), and ``deadline``, when the whole transfer must be over, reconnects included;
past it a ``DownloadError`` (never retried).

Reading stops at the announced size: a body longer than its Content-Length, or a result
longer than the size the provider announced, is an ``IntegrityError`` before the first
byte past that size reaches the consumer (a counter check per chunk, no copy). Attempts
are bounded; the final check compares the byte count with the announced size.

A ``206`` is believed only as far as its ``Content-Range`` goes: its numbers are read with
at most 18 digits (a longer one is a ``DownloadError``, never a bare ``ValueError``), and
its total, when given, is the size to reach, like an announced size: a result that stops
short of it is resumed for the rest (a server answering ``206`` to a request that asked for
no range, with a third of the file, does not make a third a success), and a total that
differs from the provider's announced size is an ``IntegrityError``. A ``206`` with an
unknown total (``*``) to a request that asked for no range cannot be vouched for: refused.

A compressed transfer (``Content-Encoding``) of a result with no announced size is bounded
by its expansion: more than ``max_ratio`` (default ``MAX_DECODED_RATIO``, 200, as
``ZipLimits.max_ratio``) decoded bytes per byte on the wire, past the first MiB, is an
``IntegrityError``: a gzip bomb stops after a few MiB, where it would have filled the disk.

A durable download writes behind (``WriteBehind``): once the file passes
``WRITEBACK_WINDOW`` bytes (32 MiB), a background thread of its own calls ``os.fdatasync``
on the file's descriptor, woken again every window; the writer never waits for it (a
wake-up while it is still flushing coalesces with the next). The disk then works beside
the transfer instead of after it, and the final ``fsync`` of the file (and of the folder)
finds almost nothing left to do. That fsync still happens and is still what makes the
download durable: write-behind only moves the work earlier. An error the thread meets (EIO,
ENOSPC) fails the download (Linux reports a writeback error once per open file, so the
final fsync could pass after it); the thread is stopped before the file is truncated to
start again, closed, renamed or removed, on every path. A file smaller than one window
starts no thread (``run_many`` saves thousands of small files); the last two windows of a
file of known size are flushed a quarter window at a time (below). Trade-off: nothing waits
for the disk while writing, so this download's dirty memory is bounded by the kernel's
dirty limits, not by two windows as with the waits of ``sync_file_range`` below.

Where ``os.fdatasync`` is missing (macOS, Windows), the former mechanism is kept: every
``RANGE_WINDOW`` (8 MiB) bytes, Linux ``sync_file_range`` is asked to start writing that
range (``SYNC_FILE_RANGE_WRITE``) and the range before it is waited for
(``WAIT_BEFORE|WRITE|WAIT_AFTER``); where that too is missing or fails, the final fsync does
all the work. ``posix_fadvise(DONTNEED)``, used before, also started writeback but dropped
the pages from the cache, which a user reading the file next reads back from disk.

Why a thread and not ``sync_file_range`` alone: on this machine kind (2 cores, ext4 on a
virtual disk) ``sync_file_range(WRITE)`` queues the pages but the virtual disk's own cache
is only flushed by the fsync at the end, so the waits slowed writing without shortening
the final fsync much. The window was chosen by measurement (``WriteBehind`` itself, 1 GiB in
64 KiB writes paced at 450 MiB/s onto /work's disk, then ``finish`` and fsync, against the
same writes with no fsync, 2026-12-02, load 10-15 from other helpers' benches and tests,
three alternated rounds): total-time ratio to the no-fsync copy, seconds after the last
write (the thread's last flush and the final fsync):
  fsync only at the end: 0.49-0.76, 1.85-2.40 s
  ``sync_file_range`` every 8 MiB, waiting for the window before: 0.59-0.66, 0.03-0.51 s
  fdatasync thread every 16 MiB: 0.83-0.92, 0.11-0.73 s (more flushes, each of less)
  fdatasync thread every 32 MiB: 1.02-1.12, 0.18-0.50 s
  fdatasync thread every 64 MiB: 0.79-1.05, 0.20-0.66 s (more left for the end)
On a quiet machine (the lead's prototype, same writes): no fsync 2.28 s, fsync at the end
3.87-4.00 s, 8 MiB ranges 3.14-3.42 s, a 32 MiB fdatasync thread 2.32-2.36 s (final fsync
0.05-0.09 s).
The whole ``download()`` of 1 GiB from an in-memory response paced at 400 MiB/s (2.56 s at
best; no network, so the disk's share shows), five alternated rounds, same load, seconds:
``durable=False`` 2.56-2.57 both before and after; default (durable) with 8 MiB
``sync_file_range`` windows 3.19-3.68 (median 3.28, 0.78 of non-durable); with this thread
2.60-3.04 (median 2.67, 0.96); three more rounds at load 3-4: 2.63-3.36 before, 2.62-2.64
with this thread. ``nox -s bench -- --only download`` could not resolve the
difference that day (load 6-15, the sandbox gave 50-130 MiB/s instead of 370, and the
non-durable rows, unchanged by this, moved from 0.59 to 1.58 between runs).

The end of a file of known size (the announced size, or a Content-Range's total) is
flushed in quarter windows: within its last two windows (64 MiB) the thread is woken every
8 MiB, so when the last byte arrives what is left for the caller to wait for (the thread's
flush under way, then the final fsync) is about a quarter window instead of up to a whole
one; a body of unknown size keeps whole windows. Why: with whole windows that wait was
0.06-0.09 s after the last byte whatever the file's size, 10% of a 256 MiB download at
the sandbox's 350 MiB/s, most of what the bench's durable/bare ratio lost on it. Measured
(``Gateway.download`` of 256 MiB from the sandbox, each in a fresh process, os.fsync and
os.fdatasync timed, 7 alternated rounds, 2026-12-02, load 5-11 from other helpers'
benches; seconds from the last byte to ``download`` returning, median (min-max)): quiet,
whole windows 0.078 (0.067-0.089), quarter-window end 0.024 (0.020-0.035); busy
(``tests/bench/busy.py`` beside it) 0.085 (0.073-0.144) and 0.027 (0.023-0.036). The cost
is two or three more fdatasyncs per file (10 instead of 7-8 for 256 MiB): the process's
CPU time was level (quiet 0.36 against 0.35 s; busy 0.31 against 0.34 s, within the
spread). Whole-download ratios to the bare copy could not be resolved that day (the
transfers themselves varied 0.8-3.8 s with the machine's load). A paced prototype (256
MiB of 64 KiB writes at 380 MiB/s, 5-7 alternated rounds, total-time ratio to the same
writes with no fsync): quiet, whole windows 0.91 (0.86-0.92), 8 MiB end windows 0.95
(0.89-0.98); busy 0.90 (0.84-0.91) and 0.93 (0.88-0.98). Also tried there: 4 MiB end
windows (0.93 quiet, 0.85 busy: more flushes, each paying the disk's fixed cost) and
flushing back to back from the first window on (0.97 quiet, 0.83 busy: the flushes
compete with the busy machine's); and ``O_DIRECT`` writes from two aligned 4-16 MiB
buffers by a writer thread (the socket read overlapping the write): half the CPU (0.11
against 0.25 s) but one write at a time reaches only 210-230 MiB/s on this virtual disk,
below the transfer's rate (ratio 0.55-0.61), so not pursued.

What the rest of the durable download's cost on the busy machine is (same day, same
method, kernel stacks of the downloading process sampled from /proc every few ms): this
ext4 has no journal (the flushes go through ``ext4_fsync_nojournal``), so no commit of the
busy process's metadata is waited for; the folder fsync and the rename take about 1 ms.
What remains is writing the bytes at all, which the bare copy never does within the bench
(its file is deleted long before the kernel would write it): the thread's flushes (about
0.1 s of this process's CPU per GiB), the virtual disk's work on the host (steal time on
the guest's CPUs per download about twice the non-durable one's), and the writer waiting, now and
then, for ext4 to allocate blocks under the pages being flushed (``ext4_da_get_block_prep``).
Reserving the whole file's blocks at the first window (``fallocate`` with
``FALLOC_FL_KEEP_SIZE``) removed those waits from the samples and cut the process's CPU
for 1 GiB from 1.45 to 1.15 s busy and 1.10 to 0.98 s quiet (medians of 5 pairs), but left
256 MiB level (0.28 against 0.27-0.30 s) and no wall-clock difference could be resolved
under the day's load (1 GiB pairs 0.58-1.50 either way): not kept, for a gain not shown.
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from reporting_runtime.errors import DeadlineExceededError, TransportError

from .errors import DownloadError, IntegrityError, deadline_passed, provider_errors
from .models import ReportRun, RunStatus
from .provider import DriverCalls, ResultResponse, accepted_keywords

__all__ = [
    "CHUNK_SIZE",
    "WRITEBACK_WINDOW",
    "ResultBody",
    "WriteBehind",
    "accepts_if_range",
    "network_errors",
    "result_opener",
]

#: Bytes read into the one buffer per transfer (``views``), chosen by measurement on this
#: machine kind (2 cores, shared), ``nox -s bench -- --only chunks``: bare ``readinto`` of
#: a 1 GiB result into one buffer vs urllib3 ``stream(1 MiB)``, median of 5 alternating
#: pairs (min-max), quiet / busy (another process allocating 1.5 GiB and writing 1 GiB):
#:   64 KiB: 1.75 (1.00-2.26) / 1.52 (0.39-3.50)
#:   256 KiB: 0.96 (0.68-1.68) / 1.58 (0.57-2.34)
#:   1 MiB: 1.01 (0.51-1.93) / 1.46 (0.54-2.00)
#: 64 KiB is the best or level with the best in both conditions (it stays in the L2
#: cache between the socket read and the file write); the allocating 1 MiB stream was
#: the slowest. Measured while other helpers ran test suites on the machine (load 5-12
#: on 2 cores), so wall-clock spreads are wide; the steadier signal is the kernel CPU of
#: ``Gateway.download`` of 1 GiB under the busy load: 1.06-1.59 s per run with a new
#: 1 MiB object per chunk, 0.53-1.21 s with this buffer (``--only download``).
CHUNK_SIZE = 64 << 10
_WHOLE = -1
_REOPEN = -2
_CONTENT_RANGE = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*\Z", re.IGNORECASE)
#: Digits a Content-Range number may have: 18 is below 2**63 (an exabyte); more is a lie.
_MAX_DIGITS = 18
#: Decoded bytes per wire byte allowed for a compressed body of unknown size (``ZipLimits``'s).
MAX_DECODED_RATIO = 200.0
#: Decoded bytes a compressed body may always reach before its ratio is checked.
_RATIO_GRACE = 1 << 20


def network_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "the connection failed", whatever layer raised them.

    Built at call time so importing the gateway does not import urllib3.
    """
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, http.client.HTTPException]
    urllib3_exceptions = sys.modules.get("urllib3.exceptions")
    if urllib3_exceptions is not None:
        errors.append(urllib3_exceptions.HTTPError)
    errors.append(TransportError)
    return tuple(errors)


class ResultBody:
    """One pass over a result's bytes, resumed after interruptions.

    ``open_result(offset)`` returns a streaming response starting at ``offset`` (206) or at
    zero (200); when resuming with a validator it is called as
    ``open_result(offset, if_range=validator)`` (openers that take no ``if_range`` are
    never given one unless the first answer carried a validator). ``expected_size`` is the
    provider's announced size, if any; ``received`` and ``total`` are readable for progress
    display. ``on_restart``, when set, is called before the body starts again from byte
    zero (the consumer discards what it has).
    """

    def __init__(
        self,
        open_result: Callable[..., ResultResponse],
        *,
        expected_size: int | None,
        description: str,
        max_attempts: int = 5,
        chunk_size: int = CHUNK_SIZE,
        max_ratio: float = MAX_DECODED_RATIO,
    ) -> None:
        self._open = open_result
        self.expected_size = expected_size
        self.total = expected_size
        self.received = 0
        self.description = description
        self.max_attempts = max(1, max_attempts)
        self.chunk_size = chunk_size
        self.max_ratio = max_ratio
        self.on_restart: Callable[[], None] | None = None
        self._etag: str | None = None
        self._last_modified: str | None = None
        #: The total a ``206``'s Content-Range gave: the size to reach when none was announced.
        self._range_total: int | None = None

    def _call_open(self) -> ResultResponse:
        validator = self._etag or self._last_modified
        if self.received and validator:
            return self._open(self.received, if_range=validator)
        return self._open(self.received)

    def chunks(self) -> Iterator[bytes]:
        """Yield the bytes in order, each exactly once; raise DownloadError/IntegrityError.

        Each chunk is a new ``bytes`` object: for callers that keep them. The hot paths use
        ``views``.
        """
        for piece in self.views(bytearray(self.chunk_size)):
            yield piece if isinstance(piece, bytes) else bytes(piece)

    def views(self, buffer: bytearray) -> Iterator[bytes | memoryview]:
        """Like ``chunks``, with no allocation per chunk: the bytes are read into ``buffer``
        and each piece is a view of it, valid only until the next one is asked for.

        A response with ``readinto`` (``reporting_runtime.Response``) fills the buffer; one
        without it (an older driver's) is read with ``iter_bytes`` and its chunks passed on.
        A caller's deadline passing (``DeadlineExceededError`` below) is never retried.
        """
        try:
            yield from self._views(buffer)
        except Exception as exc:
            if not deadline_passed(exc):
                raise
            raise DownloadError(
                f"{self.description}: not finished by the deadline ({self.received} bytes received)"
            ) from exc

    def _views(self, buffer: bytearray) -> Iterator[bytes | memoryview]:
        whole = memoryview(buffer)
        retryable = network_errors()
        failures = 0
        while True:
            response = self._call_open()
            short = False
            try:
                skip, body_length = self._position(response)
                if skip == _REOPEN:
                    failures += 1
                    if failures >= self.max_attempts:
                        raise IntegrityError(
                            f"{self.description}: the result kept changing on the server "
                            "while it was being read"
                        )
                    continue
                if skip == _WHOLE:
                    skip = self._restart(response)
                limit = self._goal()
                wire = None if limit is not None else _wire_counter(response)
                got = 0
                try:
                    for chunk in _pieces(response, whole):
                        got += len(chunk)
                        if skip:
                            if len(chunk) <= skip:
                                skip -= len(chunk)
                                continue
                            chunk = chunk[skip:]
                            skip = 0
                        if limit is not None and self.received + len(chunk) > limit:
                            raise IntegrityError(
                                f"{self.description}: the server sent more than the "
                                f"{limit} bytes announced; stopped reading"
                            )
                        if body_length is not None and got > body_length:
                            raise IntegrityError(
                                f"{self.description}: the body is longer than its "
                                f"Content-Length ({body_length}); stopped reading"
                            )
                        if wire is not None and got > _RATIO_GRACE:
                            self._check_ratio(got, wire())
                        self.received += len(chunk)
                        yield chunk
                except DeadlineExceededError:
                    raise
                except retryable as exc:
                    failures += 1
                    if failures >= self.max_attempts:
                        raise DownloadError(
                            f"{self.description}: connection failed {failures} times, "
                            f"last after {self.received} bytes ({type(exc).__name__})"
                        ) from exc
                    continue
                short = body_length is not None and got < body_length
            finally:
                response.close()
            if short or (self._range_total is not None and self.received < self._range_total):
                # Cut short of its Content-Length, or of the total its Content-Range gave
                # (the server itself says there is more): resumed for the rest, a bounded
                # number of times.
                failures += 1
                if failures >= self.max_attempts:
                    raise IntegrityError(
                        f"{self.description}: body ended early {failures} times; received "
                        f"{self.received} of {self.total} bytes"
                    )
                continue
            if self.expected_size is not None and self.received != self.expected_size:
                raise IntegrityError(
                    f"{self.description}: received {self.received} bytes but the provider "
                    f"announced {self.expected_size}"
                )
            return

    def _goal(self) -> int | None:
        """The size the result must reach: announced, else a Content-Range's total."""
        return self.expected_size if self.expected_size is not None else self._range_total

    def _check_ratio(self, decoded: int, wire: int | None) -> None:
        if wire is not None and decoded > self.max_ratio * max(wire, 1):
            raise IntegrityError(
                f"{self.description}: the compressed body expands beyond {self.max_ratio:g} "
                f"times ({decoded} bytes from {wire}) and no size was announced; stopped "
                "reading (a compression bomb?)"
            )

    def _restart(self, response: ResultResponse) -> int:
        """The resumed answer is not the rest of the same bytes: start again or refuse.

        Skipping the first ``received`` bytes of a whole new body is only sound when the
        server vouches that it is the same file (the same strong ETag); otherwise a consumer
        that cannot rewind would splice two versions.
        """
        headers = response.headers
        if self.on_restart is None:
            if self._etag is not None and _strong_etag(headers) == self._etag:
                return self.received
            raise IntegrityError(
                f"{self.description}: the server could not resume at byte {self.received} "
                "and cannot vouch that the result is unchanged; download it instead"
            )
        self._rewind()
        self._etag = _strong_etag(headers)
        self._last_modified = headers.get("Last-Modified") or None
        if self.total is None:
            self.total = response.content_length
        return 0

    def _rewind(self) -> None:
        assert self.on_restart is not None
        self.on_restart()
        self.received = 0
        self.total = self.expected_size
        self._range_total = None
        self._etag = self._last_modified = None

    def _position(self, response: ResultResponse) -> tuple[int, int | None]:
        """Bytes of this response to skip, and how long its body should be.

        ``_WHOLE``: a whole body answered a ranged request; ``_REOPEN``: a ranged answer from
        another version, already rewound, so the caller reopens from byte zero.
        """
        status = response.status
        length = response.content_length
        headers = response.headers
        if self.received == 0 and status != 206:
            if 200 <= status < 300:
                self._etag = _strong_etag(headers)
                self._last_modified = headers.get("Last-Modified") or None
                if self.total is None and length is not None:
                    self.total = length
                return 0, length
            raise DownloadError(f"{self.description}: unexpected HTTP status {status}")
        if status == 206:
            start, end, total = self._content_range(headers.get("Content-Range", ""))
            if length is not None and length != end - start + 1:
                raise DownloadError(
                    f"{self.description}: partial response of {length} bytes for the "
                    f"{end - start + 1} its Content-Range names"
                )
            if start > self.received:
                raise DownloadError(
                    f"{self.description}: server resumed at byte {start}, expected {self.received}"
                )
            if self.received == 0:
                # A partial answer to a request for the whole result (no Range was sent):
                # only its total can tell whether the rest is missing.
                if total is None:
                    raise DownloadError(
                        f"{self.description}: the server answered a request for the whole "
                        "result with a part of unknown total size (206, Content-Range "
                        f"{headers.get('Content-Range', '')[:80]!r}); refused"
                    )
                self._etag = _strong_etag(headers)
                self._last_modified = headers.get("Last-Modified") or None
            elif self._changed(headers):
                if self.on_restart is None:
                    raise IntegrityError(
                        f"{self.description}: the result changed on the server while it was "
                        "being read (its validator differs); read it again"
                    )
                self._rewind()
                return _REOPEN, length
            if total is not None:
                self._take_total(total)
            return self.received - start, length
        if 200 <= status < 300:
            return _WHOLE, length
        raise DownloadError(f"{self.description}: unexpected HTTP status {status}")

    def _content_range(self, value: str) -> tuple[int, int, int | None]:
        """``bytes START-END/TOTAL`` (TOTAL may be ``*``), numbers of at most 18 digits."""
        match = _CONTENT_RANGE.match(value)
        if match is None:
            what = "without Content-Range" if not value else "with an unreadable Content-Range"
            raise DownloadError(f"{self.description}: partial response {what}")
        if any(len(number) > _MAX_DIGITS for number in match.groups()):
            raise DownloadError(
                f"{self.description}: partial response whose Content-Range has a number "
                f"longer than {_MAX_DIGITS} digits; refused"
            )
        start, end = int(match.group(1)), int(match.group(2))
        total = None if match.group(3) == "*" else int(match.group(3))
        if end < start or (total is not None and end >= total):
            raise DownloadError(
                f"{self.description}: partial response with an impossible Content-Range "
                f"({start}-{end}/{match.group(3)})"
            )
        return start, end, total

    def _take_total(self, total: int) -> None:
        """A Content-Range's total: it must agree with the announced size and earlier answers."""
        known = self.expected_size if self.expected_size is not None else self._range_total
        if known is not None and total != known:
            raise IntegrityError(
                f"{self.description}: the server's Content-Range says the result is {total} "
                f"bytes, but {known} were announced"
            )
        self._range_total = total
        if self.total is None:
            self.total = total

    def _changed(self, headers: Mapping[str, str]) -> bool:
        """Whether a ranged answer belongs to another version than the first answer."""
        if self._etag is not None:
            return _strong_etag(headers) != self._etag
        if self._last_modified is not None:
            return (headers.get("Last-Modified") or None) != self._last_modified
        return False


def _pieces(response: ResultResponse, buffer: memoryview) -> Iterator[bytes | memoryview]:
    readinto = getattr(response, "readinto", None)
    if readinto is None:
        yield from response.iter_bytes(len(buffer))
        return
    while count := readinto(buffer):
        yield buffer[:count]


def _wire_counter(response: ResultResponse) -> Callable[[], int | None] | None:
    """For a compressed body: a count of its bytes on the wire so far, to bound its ratio.

    ``reporting_runtime.Response.wire_bytes()`` counts them; a response without it is
    bounded by its (compressed) Content-Length header, when it has one. ``None`` for a
    body that is not compressed (nothing to bound: each wire byte is one byte).
    """
    headers = response.headers
    if headers.get("Content-Encoding", "identity").strip().lower() in ("", "identity"):
        return None
    counter = getattr(response, "wire_bytes", None)
    if callable(counter):
        return counter  # type: ignore[no-any-return]
    announced = (headers.get("Content-Length") or "").strip()
    if announced.isdigit() and len(announced) <= _MAX_DIGITS:
        size = int(announced)
        return lambda: size
    return None


def _strong_etag(headers: Mapping[str, str]) -> str | None:
    """A strong ETag (the only kind If-Range may carry); a weak one says nothing of bytes."""
    etag = headers.get("ETag")
    if not etag or etag.startswith(("W/", "w/")):
        return None
    return etag


def accepts_if_range(function: Callable[..., Any]) -> bool:
    """Whether a driver's ``open_result`` takes ``if_range`` (older drivers do not)."""
    return "if_range" in accepted_keywords(function, ("if_range",))


def result_opener(
    run: ReportRun,
    driver_for: Callable[[str], Any],
    calls: Mapping[str, DriverCalls],
    scrub: Callable[[str], str],
    timeout: float | None = None,
    stall: float | None = None,
) -> Callable[..., ResultResponse]:
    """``open_result(offset, if_range=None)`` for ``ResultBody``: the driver's, given the
    optional keywords it takes (``DriverCalls``: ``if_range``, a ``deadline`` ``timeout``
    seconds from now, ``stall_timeout``), its errors wrapped as the gateway's."""
    if run.status is not RunStatus.SUCCEEDED or run.result is None:
        raise DownloadError(
            f"{run.provider} run {run.id} has no result yet (status {run.raw_status}); "
            "wait for it first"
        )
    driver = driver_for(run.provider)
    accepted = calls[run.provider]
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)

    def open_result(offset: int, if_range: str | None = None) -> ResultResponse:
        extra = accepted.keywords(
            "open_result", if_range=if_range, deadline=deadline, stall_timeout=stall
        )
        with provider_errors(run.provider, scrub=scrub):
            response: ResultResponse = driver.open_result(run, offset=offset, **extra)
            return response

    return open_result


#: Bytes written between two wake-ups of the background fdatasync (see ``WriteBehind``).
WRITEBACK_WINDOW = 32 << 20
#: Bytes between two ``sync_file_range`` requests, where there is no ``os.fdatasync``.
RANGE_WINDOW = 8 << 20
_SYNC_FILE_RANGE_WAIT_BEFORE = 1
_SYNC_FILE_RANGE_WRITE = 2
_SYNC_FILE_RANGE_WAIT_AFTER = 4
_WAIT_FOR_RANGE = (
    _SYNC_FILE_RANGE_WAIT_BEFORE | _SYNC_FILE_RANGE_WRITE | _SYNC_FILE_RANGE_WAIT_AFTER
)
#: ``sync_file_range(fd, offset, nbytes, flags) -> 0 | -1``, looked up once; ``None`` where
#: there is none. ``_UNSET`` until the first durable download asks (ctypes is not imported
#: by a process that never downloads durably).
_UNSET: Any = object()
_sync_file_range: Any = _UNSET


def sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` through ctypes (Linux), or ``None`` where it is missing."""
    global _sync_file_range
    if _sync_file_range is _UNSET:
        _sync_file_range = _load_sync_file_range()
    return _sync_file_range  # type: ignore[no-any-return]


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (ImportError, OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


class WriteBehind:
    """Writeback of a file started while it is still being written (see the module notes).

    ``mark`` is the count of bytes received at which ``advance`` is next due; the caller
    compares its own counter with it once per chunk (no call on the hot path otherwise).
    ``reset`` before the file is truncated to start again; ``finish`` once every byte is
    written (it raises what a background flush met); ``close`` on every path, exceptions
    included, before the file is closed: the background thread uses the file's descriptor,
    so it must be gone first. Usable as a context manager (``close`` on exit).

    Two mechanisms, the first that exists:

    * a background thread calling ``os.fdatasync`` on the file's descriptor, started when
      the file first passes one window (a small file, of which ``run_many`` saves
      thousands, starts none), woken once per window; the writer never waits for it (a
      wake-up while it is still flushing coalesces with the next). An error it meets (EIO,
      ENOSPC) is kept and raised by the next ``advance`` or by ``finish``: Linux reports a
      writeback error once per open file, so the final fsync (through another descriptor)
      could succeed after it, and a file whose bytes never reached the disk be kept.
    * where ``os.fdatasync`` is missing: Linux ``sync_file_range`` on the output file's
      offsets (``out.tell()``, so a converting writer is covered too), the window before
      the last waited for. After its first failure, nothing more is asked: the final fsync
      does the work.
    """

    def __init__(self, out: IO[bytes], window: int | None = None) -> None:
        self._out = out
        self._fd = out.fileno()
        self._fdatasync: Callable[[int], None] | None = getattr(os, "fdatasync", None)
        default = WRITEBACK_WINDOW if self._fdatasync is not None else RANGE_WINDOW
        self._window = max(1, window if window is not None else default)
        #: The end of a file of known size: its last ``2 * window`` bytes are flushed every
        #: quarter window (see ``advance``).
        self._tail_stretch = 2 * self._window
        self._tail_window = max(1, self._window // 4)
        self._call = None if self._fdatasync is not None else sync_file_range()
        self.mark = self._window if self.active else sys.maxsize
        self._started = 0  # writeback asked (not waited for) from ``_waited`` up to here
        self._waited = 0  # on the disk up to here (as far as this object knows)
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stopping = False
        #: What a background flush raised; raised in the writer's thread, never dropped.
        self._error: BaseException | None = None

    @property
    def active(self) -> bool:
        """Whether writeback is still being asked for (fdatasync, or a working
        ``sync_file_range``)."""
        return self._fdatasync is not None or self._call is not None

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def reset(self) -> None:
        """The file is about to be truncated to nothing: stop flushing, start counting
        again. An error already met is kept (``finish`` raises it): it may be the disk's."""
        self._join()
        self._started = self._waited = 0
        self.mark = self._window if self.active else sys.maxsize

    def advance(self, received: int, total: int | None = None) -> None:
        """Ask for writeback of what was written since the last call (see the class notes).

        ``total``, the body's size when known: within the last two windows of it, the
        thread is woken every quarter window, so that what is left unflushed when the
        last byte arrives (the final fsync's work, which the caller waits for) is a
        quarter window instead of up to a whole one.
        """
        window = self._window
        if (
            total is not None
            and total - received <= self._tail_stretch
            and self._fdatasync is not None
        ):
            window = self._tail_window
        self.mark = received + window
        if self._error is not None:
            self._raise()
        if self._fdatasync is not None:
            if self._thread is None and not self._start():
                return
            self._wake.set()
            return
        self._range(received)

    def finish(self) -> None:
        """Every byte is written: stop the thread, raise what a background flush met."""
        self._join()
        if self._error is not None:
            self._raise()

    def close(self) -> None:
        """Stop the thread, if any (idempotent; never raises a flush's error)."""
        self._join()

    def _raise(self) -> None:
        error, self._error = self._error, None
        self.mark = sys.maxsize
        self._fdatasync = self._call = None
        assert error is not None
        raise error

    def _start(self) -> bool:
        """Start the thread; False (and no write-behind: the final fsync does it all) when
        the process cannot start one more. Recorded before it starts, so a Ctrl-C between
        the two cannot leave it running unseen."""
        self._stopping = False
        self._wake.clear()
        self._thread = threading.Thread(
            target=self._flush_loop, name="report-gateway-writeback", daemon=True
        )
        try:
            self._thread.start()
        except RuntimeError:
            self._thread = None
            self._fdatasync = None
            self.mark = sys.maxsize
            return False
        return True

    def _flush_loop(self) -> None:
        fdatasync, fd, wake = self._fdatasync, self._fd, self._wake
        assert fdatasync is not None
        while True:
            wake.wait()
            wake.clear()
            if self._stopping:
                return
            try:
                fdatasync(fd)
            except BaseException as exc:  # kept for the writer's thread, which raises it
                self._error = exc
                return

    def _join(self) -> None:
        """Stop the thread and wait for it, even through a Ctrl-C: the descriptor it
        flushes must not be closed (and perhaps reused by another file) under it. The wait
        is at most one flush of one window; an interruption is raised once it is over."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        interrupted: BaseException | None = None
        while thread.is_alive():
            try:
                thread.join()
            except BaseException as exc:  # raised below, once the thread is gone
                interrupted = exc
        self._thread = None
        if interrupted is not None:
            raise interrupted

    def _range(self, received: int) -> None:
        """The ``sync_file_range`` fallback: start this window, wait for the one before."""
        call = self._call
        if call is None:
            return
        self._out.flush()
        position = self._out.tell()
        if position <= self._started:
            return
        if call(self._fd, self._started, position - self._started, _SYNC_FILE_RANGE_WRITE) != 0:
            self._give_up()
            return
        if self._started > self._waited:
            done = call(self._fd, self._waited, self._started - self._waited, _WAIT_FOR_RANGE)
            if done != 0:
                self._give_up()
                return
            self._waited = self._started
        self._started = position

    def _give_up(self) -> None:
        """The call failed (a file system without it, say): the final fsync does it all."""
        self._call = None
        self.mark = sys.maxsize
