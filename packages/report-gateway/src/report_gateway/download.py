"""Saving a result to a file that exists only when it is complete and verified.

The bytes go to a temporary file in the target's folder (same file system, so the final
``os.replace`` is atomic), are checked against the announced size (and checksum when the
provider gives one), optionally unpacked (ZIP) or decoded (Zuora's UTF-16 tab-separated
export to UTF-8 CSV), flushed to disk, and only then renamed over the target. On any failure
the temporary files are removed and an existing target is left untouched.

The temporary file is private (0600) while it fills, but ``os.replace`` would carry that
mode over; so just before the rename it gets the mode of the target it replaces, or the mode
a plainly created file would get in that folder (``0o666`` less the umask).

Plain CSV takes the fast path: each chunk is read into one buffer allocated once per
download (``ResultBody.views``) and written from it, no per-byte work and no allocation
per chunk. A Zuora UTF-16 export is converted to UTF-8 CSV as it arrives (``TsvToCsv``),
except when a checksum must first be checked on the provider's own bytes; that conversion
runs at about a quarter to a third of a bare decode-and-write, bounded by quoting the comma
cells in pure Python (figures, and what was tried, in ``TsvToCsv``).

What a server says never decides where bytes go: a provider's file name (or run id) used
inside a target folder goes through ``safe_name`` (no separators, no ``..``, no control
characters, short enough for the temporary suffix), and the final path must sit directly
in the folder the caller named; otherwise the call fails before anything is written. Every
file-system failure (read-only folder, full disk, a name too long) is a ``DownloadError``
naming the target. Temporaries are named ``.<name>.<8 hex>.part`` and hold an exclusive
``flock`` while alive, so the next download into the same folder removes the ones a killed
process left (their lock died with it) and never touches a live one.

Every temporary file is written through the descriptor that created it (``O_EXCL``), never
reopened with ``"wb"``: reopening truncates, and on ext4 (``auto_da_alloc``, the default) a
file truncated to zero starts writeback of all its dirty pages when it is closed. That made
every ``durable=False`` download pay for pushing the whole file towards the disk inside
``close()`` (about 0.3 s per GiB here, plus the disk traffic it starts), work only the
durable mode wants, and that mode asks for it itself.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import io
import itertools
import os
import queue
import re
import secrets
import stat
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from itertools import repeat
from pathlib import Path
from typing import IO, Any, BinaryIO

import attrs

from .errors import DownloadError, IntegrityError, ResultFormatError
from .models import CONTENT_TSV_UTF16, CONTENT_ZIP, ReportRun
from .provider import ResultResponse
from .rows import MAX_ROW
from .transfer import CHUNK_SIZE, ResultBody, WriteBehind

# The compiled fast path of the Zuora conversion (report-gateway-speedups, a dependency of
# the Zuora plugin, not of this package): without it ``_quote_comma_cells`` below does the
# same in pure Python, several times slower (figures in ``TsvToCsv``).
_native_quote_comma_cells: Callable[[bytes], bytes] | None
try:
    from report_gateway_speedups import quote_comma_cells as _native_quote_comma_cells
except ImportError:
    _native_quote_comma_cells = None

__all__ = [
    "DownloadProgress",
    "ZipLimits",
    "download",
    "not_a_file",
    "safe_name",
    "utf16_encoding",
]


@attrs.frozen(kw_only=True)
class ZipLimits:
    """What one ZIP member may expand to before it is refused (an ``IntegrityError``).

    ``max_size``: bytes once unpacked (default 16 GiB); ``max_ratio``: unpacked bytes per
    compressed byte (default 200; report CSVs compress 5-20x, a ZIP bomb about 1000x).
    Both are checked against the member's header before anything is unpacked and again
    while it unpacks, so a header that lies gains nothing.
    """

    max_size: int = 16 << 30
    max_ratio: float = 200.0


DEFAULT_ZIP_LIMITS = ZipLimits()

#: Longest file name most file systems take (bytes); ``pathconf`` refines it per folder.
NAME_MAX = 255
#: What a temporary adds to a name: ``.`` + name + ``.`` + 8 hex digits + ``.part``.
_TEMPORARY_EXTRA = 15
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}\.part\Z", re.DOTALL)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:]")
#: Invisible characters that change how a name reads (U+202E turns ``exe.csv`` around,
#: zero-width ones hide in plain sight): format (Cf), line and paragraph separators.
_INVISIBLE = frozenset(("Cf", "Zl", "Zp"))

#: ``on_progress(bytes_received, total_or_None)``, called after every chunk.
DownloadProgress = Callable[[int, int | None], None]


def download(
    run: ReportRun,
    path: str | os.PathLike[str],
    open_result: Callable[[int], ResultResponse],
    *,
    unzip: bool = False,
    raw: bool = False,
    overwrite: bool = True,
    on_progress: DownloadProgress | None = None,
    durable: bool = True,
    zip_limits: ZipLimits | None = None,
    deadline: float | None = None,
) -> Path:
    """Write ``run``'s result to ``path`` atomically and return the final path.

    ``path`` may be an existing folder: the provider's file name (or ``<run id>.csv``) is
    used inside it. ``unzip`` unpacks a ZIP result to its CSV; ``raw`` keeps the provider's
    bytes as they are (no UTF-16 decoding); ``overwrite=False`` refuses an existing target,
    and keeps one that appears while the result is written (the call then fails).
    ``durable=False`` skips the fsyncs (the file is still complete and atomically renamed,
    but a power loss right after may lose it): for scratch files only. ``deadline``
    (``time.monotonic()`` seconds) bounds the steps after the transfer too (checksum,
    unpacking, conversion): past it, a ``DownloadError`` and no file.
    """
    result = run.result
    if result is None:
        raise DownloadError(f"{run.provider} run {run.id} has no result ({run.raw_status})")
    unpack = unzip and result.content_type == CONTENT_ZIP
    decode = result.content_type == CONTENT_TSV_UTF16 and not raw
    target = _target(run, path, unpack=unpack)
    folder = target.parent
    try:
        _refuse_non_file(target)
        # ``fresh``: no regular file whose mode the result must keep (nothing there, or a
        # link to nothing or to a device: ``_replaced_mode``).
        fresh = _replaced_mode(target) is None
        # ``lexists``: a link to nothing is there too, and the rename would replace it.
        if not overwrite and os.path.lexists(target):
            raise DownloadError(f"{target} exists (pass overwrite=True to replace it)")
        _sweep(folder)
        limits = zip_limits or DEFAULT_ZIP_LIMITS
        body = ResultBody(
            open_result,
            expected_size=result.size,
            description=f"{run.provider} run {run.id} result",
            max_ratio=limits.max_ratio,
        )
        clock = _Clock(deadline, body.description)
        temporaries = _Temporaries()
        try:
            # A UTF-16 export is converted as it arrives, unless a checksum must first be
            # checked on the provider's own bytes.
            streamed = decode and not result.checksum
            # The file kept is this one (not an archive to unpack or an export to convert).
            kept = not (unpack or (decode and not streamed))
            # With no target to replace (``fresh``), the kept file is created as any new
            # file is (0o666 less the umask, the folder's default ACL): its mode is then a
            # new file's without making one to see (``_settle_mode``). Else it is private
            # (0o600) until it gets the replaced target's: never more readable meanwhile.
            fetched, fd = _new_temporary(
                folder, target.name, temporaries, mode=0o666 if fresh and kept else 0o600
            )
            with open(fd, "wb") as out:
                _copy(
                    body,
                    out,
                    on_progress,
                    # Only when this file is the one kept (and fsynced): an archive to
                    # unpack or an export to convert afterwards is never made durable.
                    early_writeback=durable and kept,
                    convert=TsvToCsv(out, what="the export") if streamed else None,
                )
                if kept:
                    if result.checksum:
                        # Checked before the mode is set: the final mode may not let its
                        # owner read (0o200), and a wrong file is never worth an fsync.
                        out.flush()
                        _verify_checksum(fetched, result.checksum, body.description, clock)
                    # Mode and fsync through the descriptor still open: no second open of
                    # the file, and the fsync covers the mode too.
                    _settle_mode(out.fileno(), fetched, target, folder, temporaries, fresh=fresh)
                    if durable:
                        out.flush()
                        os.fsync(out.fileno())
            if result.checksum and not kept:
                _verify_checksum(fetched, result.checksum, body.description, clock)
            final = fetched
            if not kept:
                final, fd = _new_temporary(
                    folder, target.name, temporaries, mode=0o666 if fresh else 0o600
                )
                with open(fd, "wb") as out:
                    if unpack:
                        _unzip(fetched, out, limits, clock)
                    else:
                        _tsv_utf16_to_csv(fetched, out, clock)
                    _settle_mode(out.fileno(), final, target, folder, temporaries, fresh=fresh)
                    if durable:
                        out.flush()
                        os.fsync(out.fileno())
            _replace(final, target, overwrite=overwrite)
            temporaries.remove(final)
            if durable:
                _sync_folder(folder)
        finally:
            temporaries.discard()
    except OSError as exc:
        # Read-only folder, full disk, a name too long: said with the target, never a bare
        # OSError (the CLI then exits 7, a download error, not 1).
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise DownloadError(f"download to {str(target)!r} failed: {reason}") from exc
    return target


#: What a target that is not a file is called in the refusal (``stat.S_IFMT`` -> words).
_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def not_a_file(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` must not be replaced by a download, or None when it may be.

    The atomic write renames its temporary over the target, which would swap a device node,
    a FIFO, a socket or a folder for a regular file (``-o /dev/null`` run as root would
    replace the system's ``/dev/null``). What may be replaced: nothing there, a regular
    file, or a symbolic link, whatever it points to: the rename replaces the link itself
    and never writes through it (so a link to ``/dev/null`` becomes the report file and
    ``/dev/null`` stays as it is), as it always has. ``lstat``, not ``stat``, for that.
    """
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        return None
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    return f"{os.fspath(path)} is {kind}, not a file; refusing to replace it"


def _refuse_non_file(target: Path) -> None:
    """A ``DownloadError`` when ``target`` is not a file a download may replace."""
    why = not_a_file(target)
    if why is not None:
        raise DownloadError(why)


def _replace(temporary: Path, target: Path, *, overwrite: bool = True) -> None:
    """``os.replace``, after checking once more (``lstat``) what is at the target: a device
    node or FIFO made there since the first check is still refused, not replaced. (A
    window of a few microseconds remains between the check and the rename; POSIX has no
    rename that refuses a non-file.) With ``overwrite=False``, a rename that never replaces
    (``_rename_new``).

    A large file replaced is freed off the caller's path (``_Releaser``): the rename that
    drops a file's last name also frees its blocks and its cached pages, about 0.17 s for
    256 MiB on this machine kind, inside the rename, on every nightly download over the
    previous night's file. Held open across the rename, the file is freed when that
    descriptor closes, which a thread of its own does.
    """
    if not overwrite:
        _rename_new(temporary, target)
        return
    _refuse_non_file(target)
    held = _hold_replaced(target)
    try:
        os.replace(temporary, target)
    except BaseException:
        if held is not None:
            os.close(held)
        raise
    if held is not None:
        _RELEASER.release(held)


#: ``renameat2``'s flag: fail with EEXIST instead of replacing (Linux 3.15, glibc 2.28).
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
#: Errors meaning "this system or file system has no such call": the next way is tried.
_UNSUPPORTED = frozenset(
    {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EXDEV}
)
_UNSET: Any = object()
_renameat2: Any = _UNSET


def _rename_new(temporary: Path, target: Path) -> None:
    """Give ``temporary`` the name ``target`` only if nothing has that name: what
    ``overwrite=False`` promises. The check before the transfer cannot keep that promise
    alone: a file created at the target while the download ran (another job, a user
    copying yesterday's file back) would be replaced by the rename, and lost. So the last
    step itself refuses: Linux ``renameat2(RENAME_NOREPLACE)``; where that is missing or
    the file system refuses it, a hard link (which fails on an existing name) and the
    temporary's name removed; where hard links are not to be had either (some network
    and FUSE file systems), a last check and a rename, with the old window. Refused: a
    ``DownloadError``, the target as it is, the temporary removed by the caller.
    """
    exists = DownloadError(
        f"{target} exists: it appeared while the result was being written and was left as "
        "it is (pass overwrite=True to replace it)"
    )
    rename = _load_renameat2()
    if rename is not None:
        source, name = os.fsencode(temporary), os.fsencode(target)
        if rename(_AT_FDCWD, source, _AT_FDCWD, name, _RENAME_NOREPLACE) == 0:
            return
        import ctypes

        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise exists
        if code not in _UNSUPPORTED:
            raise OSError(code, os.strerror(code), str(target))
    try:
        os.link(temporary, target, follow_symlinks=False)
    except FileExistsError:
        raise exists from None
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED and exc.errno != errno.EMLINK:
            raise
        if os.path.lexists(target):
            raise exists from None
        os.replace(temporary, target)
        return
    # The target is complete under its name; a temporary's name left by a failure here
    # is removed by the next download's sweep (its lock is gone with this process's).
    with contextlib.suppress(OSError):
        os.unlink(temporary)


def _load_renameat2() -> Any:
    """libc's ``renameat2`` through ctypes (Linux), or ``None`` where it is missing."""
    global _renameat2
    if _renameat2 is _UNSET:
        _renameat2 = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                function = ctypes.CDLL(None, use_errno=True).renameat2
            except (ImportError, OSError, AttributeError):
                return None
            function.argtypes = [
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_uint,
            ]
            function.restype = ctypes.c_int
            _renameat2 = function
    return _renameat2


#: Replaced files smaller than this are freed by the rename as before: freeing them costs
#: less than holding them (an open, an fstat, a hand-over). About 0.7 ms per MiB here.
RELEASE_AT = 4 << 20
#: Replaced files waiting to be freed beyond which the caller frees its own again (so a
#: loop replacing huge files faster than they are freed cannot pile up their disk space).
_RELEASE_BACKLOG = 8


def _hold_replaced(target: Path) -> int | None:
    """A descriptor keeping the file at ``target`` alive through its replacement, when it
    is a regular file of at least ``RELEASE_AT`` bytes with no other name (else None: the
    rename frees it, or frees nothing). POSIX only: elsewhere an open file may not be
    replaced. Never follows a link (the link is what the rename replaces).

    On Linux the descriptor is an ``O_PATH`` one: it pins the file without opening it, so
    whatever is at the target by then (a FIFO or a device node made there in the instant
    since ``_refuse_non_file``) is never opened (no driver's open, no controlling terminal,
    no wait on a FIFO), and a file its owner may not read is held all the same. Elsewhere
    it is a read-only open (non-blocking, ``O_NOCTTY``), made only after ``lstat`` saw a
    regular file. Trade-off: on NFS a file held open through its replacement
    becomes a ``.nfs*`` file until the descriptor closes (soon after, by ``_Releaser``).
    """
    if os.name != "posix":
        return None
    cloexec = getattr(os, "O_CLOEXEC", 0)
    path_only = getattr(os, "O_PATH", 0)
    if path_only:
        flags = path_only | os.O_NOFOLLOW | cloexec
    else:
        try:
            if not stat.S_ISREG(os.lstat(target).st_mode):
                return None
        except OSError:
            return None
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | cloexec
    try:
        fd = os.open(target, flags)
    except OSError:  # nothing there, a link (without O_PATH), no permission, no descriptor
        return None
    try:
        info = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size < RELEASE_AT:
        os.close(fd)
        return None
    return fd


class _Releaser:
    """Closes the held descriptors of replaced files on a daemon thread of its own: the
    kernel frees such a file when its last descriptor closes, and that work then happens
    beside the caller's next step rather than inside its rename. The thread starts on first
    use (a process that never replaces a large file has none); with no thread to be had,
    or ``_RELEASE_BACKLOG`` files already waiting, the caller closes its own. A process
    that exits first frees them on exit. A forked child starts afresh and closes its copies
    of the descriptors waiting at the fork (``forget``): else a long-lived child (a
    ``multiprocessing`` worker) would keep those files' disk space taken for its lifetime.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        #: Descriptors handed over and not closed yet.
        self.waiting = 0
        #: The same, each with the file it holds (device, inode): what a forked child
        #: closes (``forget``), once it has checked that the number still holds that file.
        self._held: dict[int, tuple[int, int]] = {}

    def release(self, fd: int) -> None:
        try:
            info = os.fstat(fd)
        except OSError:
            info = None
        with self._lock:
            if info is not None and self.waiting < _RELEASE_BACKLOG and self._running():
                self.waiting += 1
                self._held[fd] = (info.st_dev, info.st_ino)
                self._queue.put(fd)
                return
        os.close(fd)

    def _running(self) -> bool:
        """Whether the thread runs in this process, started now if need be (lock held)."""
        if self._thread is not None and self._pid == os.getpid():
            return True
        thread = threading.Thread(
            target=self._run, args=(self._queue,), name="report-gateway-release", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: the caller closes its own
            return False
        self._thread, self._pid = thread, os.getpid()
        return True

    def _run(self, waiting: queue.SimpleQueue[int]) -> None:
        while True:
            fd = waiting.get()
            with self._lock:
                held = self._held.get(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
            with self._lock:
                self.waiting -= 1
                # Unless the number was handed over again meanwhile, for another file.
                if self._held.get(fd) == held:
                    del self._held[fd]

    def forget(self) -> None:
        """In a forked child: the parent's thread is not there; a new queue and thread, and
        the child's copies of the descriptors waiting at the fork closed (the parent's
        thread closes the parent's), the one it was closing at the fork included. A number
        is closed only while it still holds its replaced file (same device and inode, no
        name left): one the parent's thread closed just before the fork may have been
        reused by then."""
        inherited = self._held
        self._lock = threading.Lock()
        self._queue = queue.SimpleQueue()
        self._thread, self._pid, self.waiting = None, 0, 0
        self._held = {}
        for fd, held in inherited.items():
            with contextlib.suppress(OSError):
                info = os.fstat(fd)
                if (info.st_dev, info.st_ino) == held and info.st_nlink == 0:
                    os.close(fd)


_RELEASER = _Releaser()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_RELEASER.forget)


def safe_name(name: str, *, fallback: str = "result.csv", name_max: int = NAME_MAX) -> str:
    """A server-chosen file name made safe to use inside a folder, or ``fallback``.

    Separators, control characters (NUL included), invisible format characters (Unicode
    category Cf: the right-to-left override U+202E, zero-width spaces, a BOM; line and
    paragraph separators) and ``:`` become ``_``; leading dots and spaces go (no ``..``, no
    hidden files); the name is cut (its extension kept) so that it and its temporary's 15
    extra characters fit ``name_max`` bytes.
    """
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", name))
    if not cleaned.isascii():
        category = unicodedata.category
        cleaned = "".join("_" if category(c) in _INVISIBLE else c for c in cleaned)
    cleaned = cleaned.strip().lstrip(". ")
    cleaned = cleaned.rstrip(". ")
    if not cleaned:
        cleaned = fallback
    limit = max(16, name_max - _TEMPORARY_EXTRA)
    if len(os.fsencode(cleaned)) > limit:
        stem, dot, extension = cleaned.rpartition(".")
        if not dot or len(extension) > 8:
            stem, extension = cleaned, ""
        suffix = f".{extension}" if extension else ""
        room = limit - len(suffix.encode())
        stem_bytes = os.fsencode(stem)[:room]
        cleaned = stem_bytes.decode("utf-8", errors="ignore").rstrip(". ") + suffix
    return cleaned


def download_target(run: ReportRun, path: str | os.PathLike[str], *, unzip: bool) -> Path:
    """The file ``download(run, path, unzip=unzip)`` would write (inside ``path`` when it is
    a folder): what a caller refusing to replace a file must look at before the transfer.
    A ``DownloadError`` when the run has no result or the path cannot be used."""
    result = run.result
    if result is None:
        raise DownloadError(f"{run.provider} run {run.id} has no result ({run.raw_status})")
    return _target(run, path, unpack=unzip and result.content_type == CONTENT_ZIP)


def _target(run: ReportRun, path: str | os.PathLike[str], *, unpack: bool) -> Path:
    """The final path: the caller's, or a safe name inside the caller's folder.

    Raises before anything is written when the path cannot be used.
    """
    target = Path(path)
    try:
        if "\x00" in os.fspath(target):
            raise DownloadError(f"cannot write {os.fspath(target)!r}: the path holds a NUL")
        if target.is_dir():
            assert run.result is not None
            fallback = safe_name(f"{run.id}.{_extension(run.result.content_type)}")
            name = safe_name(run.result.filename or fallback, fallback=fallback)
            if unpack:
                stem, dot, extension = name.rpartition(".")
                name = f"{stem}.csv" if dot and extension.lower() == "zip" else f"{name}.csv"
            folder = target
            target = folder / name
            if target.parent != folder or target.name != name:
                raise DownloadError(f"unsafe result file name {name!r}")
        folder = target.parent
        if not folder.is_dir():
            raise DownloadError(f"folder {folder} does not exist")
        limit = _name_max(folder)
        if len(os.fsencode(target.name)) > limit:
            raise DownloadError(
                f"cannot write {str(target)!r}: the file name is longer than {limit} bytes"
            )
    except (OSError, ValueError) as exc:
        raise DownloadError(f"cannot write {os.fspath(path)!r}: {exc}") from exc
    return target


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


#: How often one process sweeps one folder (``_sweep``), and how many folders it remembers.
SWEEP_SECONDS = 10.0
_SWEPT_MAX = 1024
_swept: dict[str, float] = {}
_swept_lock = threading.Lock()


def _sweep(folder: Path) -> None:
    """``_remove_abandoned_temporaries``, at most once per ``SWEEP_SECONDS`` per folder in
    this process: reading a folder costs time in proportion to its files, so a fan-out
    saving 5,000 files into one folder swept it 5,000 times (O(n^2): 0.4 ms a download at
    500 files). Trade-off: a temporary left by a process killed less than that after this
    process's last sweep there goes at the next download after it, not at the very next."""
    key, now = os.fspath(folder), time.monotonic()
    with _swept_lock:
        last = _swept.get(key)
        if last is not None and now - last < SWEEP_SECONDS:
            return
        if len(_swept) >= _SWEPT_MAX:
            _swept.clear()
        _swept[key] = now
    _remove_abandoned_temporaries(folder)


def _remove_abandoned_temporaries(folder: Path) -> None:
    """Remove our temporaries that no live download holds (a killed process left them).

    Only names of our own pattern; only files whose ``flock`` can be taken (a live
    download holds its own). A download that created its file and has not locked it yet
    finds it removed once it has the lock and makes another (``_hold``), so no age or size
    spares a file here: an empty one left by a process killed right after creating it
    (SIGKILL in a fan-out) went unswept by a re-run or ``resume`` started within the
    minute an empty file used to be spared, and stayed for good.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: nothing can tell live from dead
        return
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not _TEMPORARY.match(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    os.unlink(entry.path)
                finally:
                    os.close(fd)


def _extension(content_type: str) -> str:
    return "zip" if content_type == CONTENT_ZIP else "csv"


class _Temporaries(list[Path]):
    """This download's temporary files, and the descriptors holding their locks."""

    def __init__(self) -> None:
        super().__init__()
        self.locks: list[int] = []

    def discard(self) -> None:
        """Remove what is left, then let go of the locks (in that order: no window)."""
        for leftover in self:
            with contextlib.suppress(OSError):
                leftover.unlink()
        for fd in self.locks:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.clear()
        self.locks.clear()


def _new_temporary(
    folder: Path, name: str, registry: _Temporaries, *, mode: int = 0o600
) -> tuple[Path, int]:
    """A fresh hidden file beside the target, registered for cleanup, and its open descriptor.

    ``mode`` goes through the umask like any ``open()``; ``O_EXCL`` makes the name ours. The
    caller writes through the descriptor (``open(fd, ...)``) rather than reopening the path:
    no second lookup of a name in a shared folder, and no truncation (see the module notes).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    short = safe_name(name, name_max=_name_max(folder))
    for _ in range(100):
        path = folder / f".{short}.{secrets.token_hex(4)}.part"
        try:
            fd = os.open(path, flags, mode)
        except FileExistsError:
            continue
        registry.append(path)
        if _hold(fd, registry):
            return path, fd
        # A sweep removed it between its creation and the lock: try another name.
        os.close(fd)
        registry.remove(path)
    raise DownloadError(f"cannot create a temporary file in {folder}")


def _hold(fd: int, registry: _Temporaries) -> bool:
    """Mark a temporary as alive until the download ends (or its process dies); False
    when a sweep removed it before it could be marked (the caller makes another).

    The lock sits on a duplicate descriptor, so closing the writer (before unpacking,
    converting or renaming) keeps it. It is taken blocking: another download's sweep
    (``_remove_abandoned_temporaries``) may hold it for an instant right after the file
    was created; a non-blocking try would then fail, leave the file unmarked, and a later
    sweep would delete it mid-download (seen with a fan-out's concurrent downloads into one
    folder). That sweep cannot tell this fresh file from a killed process's leftover, and
    removes it; so once the lock is ours, a file with no name left (``st_nlink == 0``) is
    given up. This check is what lets a sweep remove every unlocked temporary at once,
    whatever its age or size.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return True
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink == 0:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        registry.locks.append(os.dup(fd))
    return True


def _replaced_mode(target: Path) -> int | None:
    """The permission bits of the regular file at ``target`` (through a link), else None.

    Only a regular file lends its mode: a link to ``/dev/null`` is replaced by the report
    (``not_a_file``), which must not take the device's 0o666 whatever the umask (a
    world-writable report); a link to nothing or one that loops lends none either.
    """
    try:
        info = os.stat(target)
    except OSError:
        return None
    return stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else None


def _final_mode(target: Path, folder: Path, registry: _Temporaries) -> int:
    """Permission bits for the finished file: the replaced target's, else a fresh file's.

    A fresh file's bits come from really creating one (the umask cannot be read without
    changing it for every thread of the process, and the folder may add its own rules).
    """
    mode = _replaced_mode(target)
    if mode is not None:
        return mode
    probe, fd = _new_temporary(folder, target.name, registry, mode=0o666)
    os.close(fd)
    try:
        return stat.S_IMODE(os.stat(probe).st_mode)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
            registry.remove(probe)


def _settle_mode(
    fd: int, path: Path, target: Path, folder: Path, registry: _Temporaries, *, fresh: bool
) -> None:
    """Give the temporary ``path``, open as ``fd``, its final permission bits (``_final_mode``).

    ``fresh``: the file was created with mode 0o666 because no target existed, so while
    none exists its bits are already a new file's: no probe file is made (a fan-out saving
    a hundred small files a second made a hundred more, each an open, a lock, a stat and
    an unlink). A target that appeared meanwhile still lends its bits.
    """
    mode = _replaced_mode(target)
    if mode is None:
        if fresh:
            return
        mode = _final_mode(target, folder, registry)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # pragma: no cover - Windows before Python 3.13
        os.chmod(path, mode)


def _copy(
    body: ResultBody,
    out: BinaryIO,
    on_progress: DownloadProgress | None,
    *,
    early_writeback: bool,
    convert: TsvToCsv | None = None,
) -> None:
    """Write the chunks as they come (through ``convert`` when given); with
    ``early_writeback``, write behind (``WriteBehind``): the disk works beside the transfer,
    so the final fsync has little left to do."""
    write: Callable[[bytes | memoryview], object] = out.write if convert is None else convert.feed
    behind = WriteBehind(out) if early_writeback else None
    if behind is not None and not behind.active:
        behind = None

    def restart() -> None:
        # The server sent a whole (possibly new) body: what was written goes. Write-behind
        # stops first: no flush of the file while it is truncated.
        if behind is not None:
            behind.reset()
        out.seek(0)
        out.truncate()
        if convert is not None:
            convert.reset()

    body.on_restart = restart
    # One buffer for the whole transfer: every chunk is read into it and written from it.
    pieces = body.views(bytearray(body.chunk_size))
    if behind is None:
        if on_progress is None:
            for chunk in pieces:
                write(chunk)
        else:
            for chunk in pieces:
                write(chunk)
                on_progress(body.received, body.total)
        if convert is not None:
            convert.finish()
        return
    # The write-behind thread (if one started) is stopped on every way out, before the
    # caller closes the file: it flushes through the file's descriptor.
    with behind:
        if on_progress is None:
            for chunk in pieces:
                write(chunk)
                if body.received >= behind.mark:
                    behind.advance(body.received, body.total)
        else:
            for chunk in pieces:
                write(chunk)
                if body.received >= behind.mark:
                    behind.advance(body.received, body.total)
                on_progress(body.received, body.total)
        if convert is not None:
            convert.finish()
        # What a background flush met (EIO, ENOSPC) fails the download here.
        behind.finish()


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where folders cannot be opened.

    Returns once an fsync of the folder that began after this call did (so after the
    caller's rename) has ended. Downloads renamed into one folder meanwhile share it (a
    group commit: a fan-out saving a hundred small files a second into one folder sent a
    hundred folder fsyncs a second, each a disk flush); none returns before its own rename
    is covered, so every file is still durable when its download returns.
    """
    if os.name != "posix":
        return
    key = os.fspath(folder)
    with _folder_syncs_lock:
        group = _folder_syncs.get(key)
        if group is None:
            group = _folder_syncs[key] = _FolderSync()
        group.users += 1
    try:
        group.sync(folder)
    finally:
        with _folder_syncs_lock:
            group.users -= 1
            if group.users == 0 and _folder_syncs.get(key) is group:
                del _folder_syncs[key]


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _FolderSync:
    """The fsyncs of one folder, numbered: ``started`` the last begun, ``ended`` the last
    ended (one at a time); ``users``: calls of ``_sync_folder`` on it now."""

    def __init__(self) -> None:
        self.turn = threading.Condition()
        self.started = 0
        self.ended = 0
        self.users = 0

    def sync(self, folder: Path) -> None:
        with self.turn:
            # One running now began before the caller came (maybe before its rename): the
            # next one to begin is the first that surely covers it.
            needed = self.started + 1
            while self.ended < needed:
                if self.started > self.ended:  # one is running: wait for it to end
                    self.turn.wait()
                    continue
                number, synced = self.started + 1, False
                try:
                    self.started = number
                    self.turn.release()
                    try:
                        _fsync_folder(folder)
                        synced = True
                    finally:
                        self.turn.acquire()
                finally:
                    # Given up (Ctrl-C in this thread): it covers no one; whoever still
                    # needs one begins it anew.
                    if synced:
                        self.ended = number
                    else:
                        self.started = self.ended
                    self.turn.notify_all()


_folder_syncs: dict[str, _FolderSync] = {}
_folder_syncs_lock = threading.Lock()


def _forget_folder_syncs() -> None:
    """In a forked child: the parent's fsyncs under way end in the parent only (their
    threads are not copied), so a child waiting for them would wait forever."""
    global _folder_syncs_lock
    _folder_syncs.clear()
    _folder_syncs_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_folder_syncs)


class _Clock:
    """The call's deadline for the steps after the transfer, checked once per chunk."""

    def __init__(self, deadline: float | None, description: str) -> None:
        self.deadline = deadline
        self.description = description

    def check(self) -> None:
        if self.deadline is None:
            return
        import time

        if time.monotonic() >= self.deadline:
            raise DownloadError(
                f"{self.description}: not finished by the deadline (while checking, "
                "unpacking or converting the bytes received)"
            )


_NO_DEADLINE = _Clock(None, "")


def _verify_checksum(
    path: Path, checksum: str, description: str, clock: _Clock = _NO_DEADLINE
) -> None:
    """Compare with ``"<hashlib algorithm>:<hex digest>"`` (a bare digest means sha256)."""
    import hashlib

    algorithm, _, expected = checksum.rpartition(":")
    algorithm = (algorithm or "sha256").lower().replace("-", "")
    try:
        digest = hashlib.new(algorithm)
    except ValueError:
        raise DownloadError(f"{description}: unknown checksum algorithm {algorithm!r}") from None
    buffer = memoryview(bytearray(CHUNK_SIZE))
    with path.open("rb", buffering=0) as fh:
        while count := fh.readinto(buffer):
            clock.check()
            digest.update(buffer[:count])
    if digest.hexdigest().lower() != expected.strip().lower():
        raise IntegrityError(f"{description}: {algorithm} checksum does not match")


def choose_member(archive: Any, limits: ZipLimits) -> Any:
    """The ZIP member holding the report, checked before a byte of it is unpacked.

    The one ``.csv`` member (folders aside), for ``download(unzip=True)`` and ``rows``
    alike. No ``.csv`` member (an empty archive, only folders, a nested ZIP, a lone
    ``evil.exe``) or several are refused with what the archive holds: which file is "the"
    report is not ours to guess, and a file not named as CSV is not read as one. So is an
    encrypted member, or one whose announced size or expansion ratio is beyond ``limits``.
    """
    members = [m for m in archive.infolist() if not m.is_dir()]
    csvs = [m for m in members if m.filename.lower().endswith(".csv")]
    if len(csvs) != 1:
        listed = archive.infolist()
        names = ", ".join(repr(m.filename) for m in (csvs or listed)[:10]) or "nothing"
        if len(csvs or listed) > 10:
            names += f", ... ({len(csvs or listed)} in all)"
        what = "several CSV files" if csvs else "no CSV file"
        raise IntegrityError(f"ZIP result holds {what} (found {names}); refusing to pick one")
    chosen = csvs[0]
    if chosen.flag_bits & 0x1:
        raise IntegrityError(f"ZIP member {chosen.filename!r} is encrypted")
    if chosen.file_size > limits.max_size:
        raise IntegrityError(
            f"ZIP member {chosen.filename!r} would unpack to {chosen.file_size} bytes, "
            f"beyond the limit of {limits.max_size} (ZipLimits.max_size)"
        )
    if chosen.file_size > limits.max_ratio * max(chosen.compress_size, 1):
        raise IntegrityError(
            f"ZIP member {chosen.filename!r} expands {chosen.file_size} / "
            f"{chosen.compress_size} times, beyond {limits.max_ratio:g} (ZipLimits.max_ratio)"
        )
    return chosen


def zip_errors() -> tuple[type[BaseException], ...]:
    """What zipfile and its codecs raise for a damaged or unreadable member."""
    import zipfile
    import zlib

    return (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


def member_chunks(
    member: IO[bytes], limits: ZipLimits, name: str, clock: _Clock = _NO_DEADLINE
) -> Iterator[bytes]:
    """A member's bytes, bounded by ``limits.max_size`` whatever its header said."""
    unpacked = 0
    while chunk := member.read(CHUNK_SIZE):
        clock.check()
        unpacked += len(chunk)
        if unpacked > limits.max_size:
            raise IntegrityError(
                f"ZIP member {name!r} unpacks beyond {limits.max_size} bytes (ZipLimits.max_size)"
            )
        yield chunk


def _unzip(
    archive: Path, destination: BinaryIO, limits: ZipLimits, clock: _Clock = _NO_DEADLINE
) -> None:
    """Extract the report's CSV (see ``choose_member``); its CRC is checked at the end."""
    import zipfile

    damaged = zip_errors()
    try:
        with zipfile.ZipFile(archive) as zf:
            chosen = choose_member(zf, limits)
            with zf.open(chosen) as src:
                for chunk in member_chunks(src, limits, chosen.filename, clock):
                    destination.write(chunk)
    except damaged as exc:
        raise IntegrityError(f"result is not a valid ZIP file: {exc}") from None


def utf16_encoding(head: bytes) -> str:
    """The codec for a UTF-16 export: its BOM decides, little-endian without one.

    Without a BOM the export must start with a character of U+0000..U+00FF (its header is
    column names): a UTF-8 file read as UTF-16 would otherwise become CJK mojibake.
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8) or (len(head) >= 2 and head[1] != 0):
        raise IntegrityError("the export is not UTF-16 text (it looks like UTF-8 or binary)")
    return "utf-16-le"


def _tsv_utf16_to_csv(source: Path, destination: BinaryIO, clock: _Clock = _NO_DEADLINE) -> None:
    """Zuora's UTF-16 tab-separated export as UTF-8 comma-separated CSV (cells unchanged).

    Decoded strictly and required to end on a line boundary; a quote left open at the end
    is an error, not one giant cell. Read with ``readinto`` into one buffer; the text is
    converted a block of whole lines at a time (see ``TsvToCsv``).
    """
    view = memoryview(bytearray(CHUNK_SIZE))
    converter = TsvToCsv(destination, what="the export")
    with source.open("rb", buffering=0) as fh:
        while count := fh.readinto(view):
            clock.check()
            converter.feed(view[:count])
    converter.finish()


class Utf16Text:
    """A UTF-16 export's text, decoded strictly, handed out a block of whole lines at a time.

    Fed bytes in any split (views of a reused buffer included); ``feed`` returns the text
    up to the last line break seen so far (maybe ``""``), ``finish`` the rest, refusing an
    export that does not end on a line break (cut mid-row). The codec comes from the first
    two bytes (``utf16_encoding``), so UTF-8 dressed as UTF-16 is refused before any text.
    Invalid UTF-16 (an odd byte count, a lone surrogate) is an ``IntegrityError``.

    NUL characters are dropped from the text (padding, never data: ``rows`` and the
    converted download agree), before lines are told apart, so a NUL between CR and LF
    reads the same in any split. A line still open after ``MAX_ROW`` characters (NULs
    counted) is a ``ResultFormatError`` there and then: an export that never sends a line
    break cannot fill memory. The codec drops the
    BOM; a second one doubled at the very start of the text is dropped too (never data:
    it would key the first column ``'\ufeffa'``).
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._decode: Callable[..., str] | None = None
        self._head = b""
        self._tail = ""
        self._started = False
        self._unbroken = 0  # characters since the last line break, NULs included

    def feed(self, data: bytes | memoryview, *, final: bool = False) -> str:
        if self._decode is None:
            self._head += data
            if len(self._head) < 2 and not final:
                return ""
            encoding = utf16_encoding(self._head[:2])
            self._decode = codecs.getincrementaldecoder(encoding)(errors="strict").decode
            data, self._head = self._head, b""
        try:
            text = self._decode(data, final)
        except UnicodeDecodeError as exc:
            raise IntegrityError(f"{self._what} is not valid UTF-16 ({exc.reason})") from None
        if not self._started and text:
            text = text.lstrip("\ufeff")
            self._started = bool(text)
        unbroken = self._unbroken + len(text)
        if "\x00" in text:
            text = text.replace("\x00", "")
        if self._tail:
            text = self._tail + text
        end = len(text)
        if not final and text.endswith("\r"):
            end -= 1  # it may be the CR of a CR LF: it waits for the next text
        cut = max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1
        if cut == len(text):
            self._tail = ""
            self._unbroken = 0
            return text
        self._tail = text[cut:]
        self._unbroken = len(self._tail) if cut else unbroken
        if self._unbroken > MAX_ROW:
            raise ResultFormatError(
                f"cannot read {self._what} as CSV: {self._unbroken} characters without a "
                f"line break (a row may hold at most {MAX_ROW}, MAX_ROW); refused"
            )
        return text[:cut]

    def finish(self) -> str:
        block = self.feed(b"", final=True)
        if self._tail:
            raise IntegrityError(
                f"{self._what} does not end on a line boundary: it was cut mid-row "
                f"({len(self._tail)} characters after the last line break)"
            )
        return block


_TAB = "\t"
_QUOTED_TAB = '"\t'


def _quote_comma_cells(text: str) -> bytes:
    """Quote-free TSV lines (LF only, ending on one) as UTF-8 CSV: tab -> comma, and a
    cell holding a comma quoted, as ``csv.writer`` does.

    Why by commas rather than by cells: the work that costs is one Python object per unit
    (a ``str`` from a split, a call), and commas are fewer than cells (an amount column
    or two among many). Once every cell boundary is a tab (a line break becomes a cell of
    its own, and a tab is put before the first cell), a comma cell's closing quote goes
    before the first tab after each comma, and its opening quote after the last tab
    before each comma, which is the first tab after that comma in the reversed text. So:
    split on commas, ``replace(tab, quote tab, 1)`` on every piece, join, once on the
    reversed text (as ``str``, whose reversal is cheaper) and once forward (as bytes,
    whose split, replace and join are cheaper); both passes also touch the tab put in
    front and the last tab, which the final slice drops. Pieces between two commas of
    one cell hold no tab and are left alone.

    Figures (CPU seconds of ``TsvToCsv`` alone, old and new alternated five times in one
    process on a loaded 2-core machine): the sandbox's invoice export, 15 MiB (6 columns,
    2 amounts like ``4,815.84`` per row, the worst case for this design): 0.13-0.16 by
    cells, 0.14-0.16 by commas, level; 20 columns of which 2 hold commas, 21 MiB: 0.18-0.23
    by cells, 0.15-0.16 by commas. Also tried and dropped, per 64 MiB of that export
    against about 0.6 s by cells: a regular expression anchored on the tab (0.2-0.4 s for
    one of the two passes needed), ``csv.writer`` over the rows (1.5 s), big-integer carry
    tricks to find the cells (0.6-0.8 s: converting to and from ``int`` costs what the
    carries save).
    """
    reversed_text = (_TAB + text).replace("\n", "\t\n\t")[::-1]
    pieces = reversed_text.split(",")
    opened = ",".join(map(str.replace, pieces, repeat(_TAB), repeat(_QUOTED_TAB), repeat(1)))
    raw = opened[::-1].encode("utf-8")
    parts = raw.split(b",")
    closed = b",".join(map(bytes.replace, parts, repeat(b"\t"), repeat(b'"\t'), repeat(1)))
    # The leading '"\t' and trailing '"' come from the added first tab and the last one.
    return closed[2:-1].replace(b"\t", b",").replace(b",\n,", b"\n")


class TsvToCsv:
    """UTF-16 TSV bytes in, UTF-8 CSV bytes out, exactly as ``csv.reader(delimiter="\t")``
    then ``csv.writer(lineterminator="\n")`` would write them, without their per-row cost.

    Why: the csv round trip cost 4.5 s for a 300 MB export (a row list and a Python-level
    step per row), the bench's figure was 0.24 of a bare decode-and-write of the same bytes.
    In pure Python it was still 0.27 quiet, 0.36 busy (``nox -s bench -- --only zuora``,
    256 MiB, median of 5 pairs, 2026-12-01, a loaded shared 2-core machine): the gateway's
    child process spent 3.5-4.0 s of CPU against the bare's 0.3-0.4 s. The export is
    converted as it arrives (``download``), never written and read back.

    Where that CPU went, and why the 0.80 target of issue 12 is out of reach in Python: CPU
    seconds per 256 MiB of the bench's export, converted in 64 KiB blocks in one process
    (``time.process_time``): this class 2.9-3.0; a bare incremental decode + encode 0.19-0.21
    (decode 0.07, encode 0.01). The bench's baseline is bounded by the sandbox producing the
    export (0.85 s of CPU in another process), so the conversion would have to stay under
    about 1 s of CPU to reach 0.80; nearly all of the 2.9 s is the quoting of comma cells
    (``_quote_comma_cells``, 2.6-2.7). That export (Zuora's display format, ``4,615.54``,
    the same as the reporting API's "1,729.76") has a comma in 24% of its cells, 1.46 per
    row, and in every block, so "a block without characters that force quoting is a mere
    replace" never applies to it; the work is inherent to the comma cells, not to rare ones.
    Pure-Python costs measured for finding those cells (per 256 MiB): one pass of
    ``split(",")`` + ``map(replace, ..., 1)`` + ``join`` about 1.0 s (0.27 + 0.58 + 0.10;
    two are needed, one per quote side, plus two reversals), a regular expression with
    a literal replacement and a lookahead (``\t(?=[^\t,]*,)`` -> ``\t"``, one side only)
    2.1-2.4 s (about 130 ns per tab tried), ``re.sub`` with a group in the template (a
    Python call per match on 3.11) 16 s, ``csv.writer`` over one row of all cells of a
    block 4.1 s, ``operator.methodcaller`` instead of ``map(replace, repeat...)`` twice
    slower, one split with ``replace`` + ``rsplit`` + ``join`` per piece instead of the two
    passes 2.1 s against 2.5 s (not worth its extra edge cases). A plain C loop over the
    UTF-8 bytes (tab -> comma, a cell with a comma quoted; a ctypes prototype, not shipped)
    does the same in 0.34 s including the encode: the target needs native code, which is
    ``report_gateway_speedups`` (last paragraph), with ``_quote_comma_cells`` as fallback.

    The text is converted a block of whole lines at a time. A block with no quote is
    converted by ``str`` methods over the whole block: CR LF or lone CR -> LF, tab ->
    comma, and a cell holding a comma gets quotes (``_quote_comma_cells``); that is all
    the round trip does to such lines. From a quote on, lines are gathered until
    ``csv`` reads them as closed, then go through the round trip itself, so a quoted cell
    spanning blocks is never cut; a quote still open at the end is a
    ``ResultFormatError``. A block always ends on a line break; a CR at the end of the
    decoded text waits for the next text (it may be the CR of a CR LF). Decoding is strict
    (an ``IntegrityError`` names the reason) and the export must end on a line break.
    NUL characters are dropped (by ``Utf16Text``), as ``rows`` drops them. A quoted cell
    still open after about ``2 * MAX_ROW`` characters gathered is a ``ResultFormatError``
    (a row longer than ``MAX_ROW``), so memory stays bounded whatever the export holds.
    ``tests/gateway/test_tsv_to_csv.py`` pins the output to the round trip.

    The comma cells of a quote-free block are quoted by ``report_gateway_speedups`` (a C
    extension the Zuora plugin depends on, not this package) when it is importable, else by
    ``_quote_comma_cells``: same bytes (``tests/gateway/test_tsv_to_csv_speedups.py``).
    With it, this class spends about 0.05 s of CPU per 64 MiB of the bench's export (0.02 s
    of it in the C function) against 0.02 s for a bare decode + encode; the pure-Python
    quoting alone takes 0.6-0.7. The bench (``nox -s bench -- --only zuora``, 256 MiB,
    median of 5 pairs, 2026-12-01, shared 2-core machine) went from 0.26 quiet, 0.36 busy
    to 0.58 quiet, 0.78 busy with a first, cell-by-cell C loop, then with this one to 0.61
    and 0.93 (machine loaded by other jobs) and 0.81 and 1.35 (machine otherwise idle:
    1.05-1.16 s against 0.89-1.03 s quiet). What is left of the gap is outside the
    conversion: the default download is durable (fsync of file and folder) where the bare
    copy is not, as in the plain download's figures. (The bench's CPU columns, 1.1-1.5 s
    against 0.3-0.5, count the whole child, of which about 0.4 s is importing
    report-gateway and building the gateway before the clock starts.)
    """

    def __init__(self, out: BinaryIO, *, what: str) -> None:
        self._out = out
        self._what = what
        self.reset()

    def reset(self) -> None:
        """Forget everything fed (the body starts again from its first byte)."""
        self._text = Utf16Text(self._what)
        self._open: list[str] = []
        self._open_size = 0

    def feed(self, data: bytes | memoryview) -> None:
        """Convert the next bytes (any split); ``data`` may be a reused buffer's view."""
        block = self._text.feed(data)
        if block:
            self._block(block)

    def finish(self) -> None:
        """Flush what is left; refuse an export cut mid-row or with a quote left open."""
        block = self._text.finish()
        if block:
            self._block(block)
        if self._open:
            rows = self._rows("".join(self._open))
            if rows is None:
                raise ResultFormatError(
                    f"cannot read {self._what} as CSV: a quoted cell is still open at the end "
                    "of the file; the file is truncated or its quoting is broken"
                )
            self._write_rows(rows)

    def _block(self, text: str) -> None:
        if self._open or '"' in text:
            reread = not self._open or '"' in text  # no quote in it: it cannot close one
            self._open.append(text)
            self._open_size += len(text)
            rows = self._rows("".join(self._open)) if reread else None
            if rows is not None:
                self._open.clear()
                self._open_size = 0
                self._write_rows(rows)
            elif self._open_size > 2 * MAX_ROW:
                raise ResultFormatError(
                    f"cannot read {self._what} as CSV: a quoted cell is still open after "
                    f"{self._open_size} characters (a row may hold at most {MAX_ROW}, "
                    "MAX_ROW); refused"
                )
            return
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "," in text:
            # No quote in the block: a cell holding a comma is quoted as csv.writer would.
            if _native_quote_comma_cells is not None:
                self._out.write(_native_quote_comma_cells(text.encode("utf-8")))
            else:
                self._out.write(_quote_comma_cells(text))
        else:
            # bytes.replace: about 25% less than str.replace on the same text here.
            self._out.write(text.encode("utf-8").replace(b"\t", b","))

    def _rows(self, text: str) -> list[list[str]] | None:
        """The rows of whole lines, or None while a quoted cell is still open at their end."""
        import csv

        end = "\x00\n"  # NUL never starts a line of its own: read alone, the text was closed
        reader = csv.reader(itertools.chain(io.StringIO(text, newline=""), (end,)), delimiter="\t")
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise ResultFormatError(f"cannot read {self._what} as CSV: {exc}") from None
        if not rows or rows[-1] != ["\x00"]:
            return None
        return rows[:-1]

    def _write_rows(self, rows: list[list[str]]) -> None:
        import csv

        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        self._out.write(text.getvalue().encode("utf-8"))
