"""Saving a result to a file that exists only when it is complete and verified.

The bytes go to a temporary file in the target's folder (same file system, so the final
``os.replace`` is atomic), are checked against the announced size (and checksum when the
provider gives one), optionally unpacked (ZIP) or decoded (Zuora's UTF-16 tab-separated
export to UTF-8 CSV), flushed to disk, and only then renamed over the target. On any failure
the temporary files are removed and an existing target is left untouched.

The temporary file is private (0600) while it fills, but ``os.replace`` would carry that
mode over; so just before the rename it gets the mode of the target it replaces, or the mode
a plainly created file would get in that folder (``0o666`` less the umask).

Plain CSV takes the fast path: 1 MiB chunks written as they arrive, no per-byte work.

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
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TextIO

from .errors import DownloadError, IntegrityError
from .models import CONTENT_TSV_UTF16, CONTENT_ZIP, ReportRun
from .provider import ResultResponse
from .transfer import CHUNK_SIZE, ResultBody

__all__ = ["DownloadProgress", "download", "utf16_encoding"]

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
) -> Path:
    """Write ``run``'s result to ``path`` atomically and return the final path.

    ``path`` may be an existing folder: the provider's file name (or ``<run id>.csv``) is
    used inside it. ``unzip`` unpacks a ZIP result to its CSV; ``raw`` keeps the provider's
    bytes as they are (no UTF-16 decoding); ``overwrite=False`` refuses an existing target.
    ``durable=False`` skips the fsyncs (the file is still complete and atomically renamed,
    but a power loss right after may lose it): for scratch files only.
    """
    result = run.result
    if result is None:
        raise DownloadError(f"{run.provider} run {run.id} has no result ({run.raw_status})")
    target = Path(path)
    if target.is_dir():
        target = target / (result.filename or f"{run.id}.{_extension(result.content_type)}")
    if target.exists() and not overwrite:
        raise DownloadError(f"{target} exists (pass overwrite=True to replace it)")
    folder = target.parent
    if not folder.is_dir():
        raise DownloadError(f"folder {folder} does not exist")

    body = ResultBody(
        open_result,
        expected_size=result.size,
        description=f"{run.provider} run {run.id} result",
    )
    temporaries: list[Path] = []
    try:
        fetched, fd = _new_temporary(folder, target.name, temporaries)
        unpack = unzip and result.content_type == CONTENT_ZIP
        decode = result.content_type == CONTENT_TSV_UTF16 and not raw
        with open(fd, "wb") as out:
            _copy(
                body,
                out,
                on_progress,
                early_writeback=durable and not (unpack or decode or result.checksum),
            )
        if result.checksum:
            _verify_checksum(fetched, result.checksum, body.description)
        final = fetched
        if unpack:
            final, fd = _new_temporary(folder, target.name, temporaries)
            with open(fd, "wb") as unpacked:
                _unzip(fetched, unpacked)
        elif decode:
            final, fd = _new_temporary(folder, target.name, temporaries)
            with open(fd, "w", encoding="utf-8", newline="") as converted:
                _tsv_utf16_to_csv(fetched, converted)
        os.chmod(final, _final_mode(target, folder, temporaries))
        if durable:
            with final.open("r+b") as fh:
                os.fsync(fh.fileno())
        os.replace(final, target)
        temporaries.remove(final)
        if durable:
            _sync_folder(folder)
    finally:
        for leftover in temporaries:
            with contextlib.suppress(OSError):
                leftover.unlink()
    return target


def _extension(content_type: str) -> str:
    return "zip" if content_type == CONTENT_ZIP else "csv"


def _new_temporary(
    folder: Path, name: str, registry: list[Path], *, mode: int = 0o600
) -> tuple[Path, int]:
    """A fresh hidden file beside the target, registered for cleanup, and its open descriptor.

    ``mode`` goes through the umask like any ``open()``; ``O_EXCL`` makes the name ours. The
    caller writes through the descriptor (``open(fd, ...)``) rather than reopening the path:
    no second lookup of a name in a shared folder, and no truncation (see the module notes).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        path = folder / f".{name}.{secrets.token_hex(4)}.part"
        try:
            fd = os.open(path, flags, mode)
        except FileExistsError:
            continue
        registry.append(path)
        return path, fd
    raise DownloadError(f"cannot create a temporary file in {folder}")


def _final_mode(target: Path, folder: Path, registry: list[Path]) -> int:
    """Permission bits for the finished file: the replaced target's, else a fresh file's.

    A fresh file's bits come from really creating one (the umask cannot be read without
    changing it for every thread of the process, and the folder may add its own rules).
    """
    with contextlib.suppress(FileNotFoundError):
        return stat.S_IMODE(os.stat(target).st_mode)
    probe, fd = _new_temporary(folder, target.name, registry, mode=0o666)
    os.close(fd)
    try:
        return stat.S_IMODE(os.stat(probe).st_mode)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
            registry.remove(probe)


#: Dirty bytes allowed to pile up before asking the kernel to start writing them out.
WRITEBACK_WINDOW = 16 << 20


def _copy(
    body: ResultBody, out: BinaryIO, on_progress: DownloadProgress | None, *, early_writeback: bool
) -> None:
    """Write the chunks as they come; optionally start disk writeback along the way.

    The final fsync would otherwise wait for the whole file to reach the disk at the end;
    asking for writeback every few MiB (``posix_fadvise(DONTNEED)`` starts it without
    waiting) overlaps disk and network, so a durable download costs about what a bare copy
    costs. Only for files not read back afterwards (the advice also drops clean pages).
    """
    write = out.write
    advise = getattr(os, "posix_fadvise", None) if early_writeback else None
    if advise is None and on_progress is None:
        for chunk in body.chunks():
            write(chunk)
        return
    fd = out.fileno()
    written = flushed = 0
    for chunk in body.chunks():
        write(chunk)
        written += len(chunk)
        if advise is not None and written - flushed >= WRITEBACK_WINDOW:
            out.flush()
            with contextlib.suppress(OSError):
                advise(fd, flushed, written - flushed, os.POSIX_FADV_DONTNEED)
            flushed = written
        if on_progress is not None:
            on_progress(body.received, body.total)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where folders cannot be opened."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _verify_checksum(path: Path, checksum: str, description: str) -> None:
    """Compare with ``"<hashlib algorithm>:<hex digest>"`` (a bare digest means sha256)."""
    import hashlib

    algorithm, _, expected = checksum.rpartition(":")
    algorithm = (algorithm or "sha256").lower().replace("-", "")
    try:
        digest = hashlib.new(algorithm)
    except ValueError:
        raise DownloadError(f"{description}: unknown checksum algorithm {algorithm!r}") from None
    with path.open("rb") as fh:
        while block := fh.read(CHUNK_SIZE):
            digest.update(block)
    if digest.hexdigest().lower() != expected.strip().lower():
        raise IntegrityError(f"{description}: {algorithm} checksum does not match")


def _unzip(archive: Path, destination: BinaryIO) -> None:
    """Extract the report's CSV: the only member, else the first ``.csv`` member."""
    import shutil
    import zipfile

    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            csvs = [m for m in members if m.filename.lower().endswith(".csv")]
            chosen = members[0] if len(members) == 1 else (csvs[0] if csvs else None)
            if chosen is None:
                names = ", ".join(m.filename for m in members) or "nothing"
                raise DownloadError(f"ZIP result holds no single CSV file (found {names})")
            with zf.open(chosen) as src:
                shutil.copyfileobj(src, destination, CHUNK_SIZE)
    except zipfile.BadZipFile as exc:
        raise IntegrityError(f"result is not a valid ZIP file: {exc}") from None


def utf16_encoding(head: bytes) -> str:
    """The codec for a UTF-16 export: its BOM decides, little-endian without one."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-16-le"


def _tsv_utf16_to_csv(source: Path, destination: TextIO) -> None:
    """Zuora's UTF-16 tab-separated export as UTF-8 comma-separated CSV (cells unchanged)."""
    import csv

    with source.open("rb") as peek:
        encoding = utf16_encoding(peek.read(2))
    with source.open("r", encoding=encoding, errors="replace", newline="") as src:
        try:
            csv.writer(destination, lineterminator="\n").writerows(
                csv.reader(src, dialect="excel-tab")
            )
        except csv.Error as exc:
            raise DownloadError(f"cannot convert the tab-separated export: {exc}") from None
