"""A file that appears at its target only once it is complete: ``download``'s way, for any writer.

``Gateway.download`` owns the temporary-file discipline (a private ``0600`` temporary beside
the target, locked while alive, the target's mode carried over, fsync, ``os.replace``, the
folder synced, abandoned temporaries of killed processes removed). ``atomic_file`` opens that
same discipline to the data tools (Parquet, JSON lines), so there is one atomic writer, not
two: it calls ``download``'s helpers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .download import (
    _new_temporary,
    _refuse_non_file,
    _remove_abandoned_temporaries,
    _replace,
    _replaced_mode,
    _settle_mode,
    _sync_folder,
    _Temporaries,
)
from .errors import DownloadError

__all__ = ["atomic_file"]


@contextlib.contextmanager
def atomic_file(
    target: str | os.PathLike[str], *, overwrite: bool = True, durable: bool = True
) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``target`` when the block ends without an error.

    On any exception the temporary is removed and an existing target is left untouched;
    ``overwrite=False`` refuses an existing target before anything is written, and keeps
    one that appears while the block runs (the ``DownloadError`` then comes at its end);
    ``durable`` as for ``download`` (fsync of the file and the folder). A device node, FIFO, socket
    or folder at ``target`` is refused, never replaced (``download.not_a_file``). A
    file-system failure is a ``DownloadError`` naming the target (the CLI's exit 7, with
    the command to resume).
    """
    path = Path(target)
    folder = path.parent
    try:
        _refuse_non_file(path)
        # As in ``download``: with no regular file to replace (``fresh``) the temporary is
        # created with a new file's mode, else private until it takes the replaced one's.
        fresh = _replaced_mode(path) is None
        # ``lexists``: a link to nothing is there too, and the rename would replace it.
        if not overwrite and os.path.lexists(path):
            raise DownloadError(f"{path} exists (pass overwrite=True to replace it)")
        _remove_abandoned_temporaries(folder)
        temporaries = _Temporaries()
        try:
            written, fd = _new_temporary(
                folder, path.name, temporaries, mode=0o666 if fresh else 0o600
            )
            with open(fd, "wb") as out:
                yield out
                out.flush()
                # The mode first, through the open descriptor: the fsync then covers it.
                _settle_mode(out.fileno(), written, path, folder, temporaries, fresh=fresh)
                if durable:
                    os.fsync(out.fileno())
            _replace(written, path, overwrite=overwrite)
            temporaries.remove(written)
            if durable:
                _sync_folder(folder)
        finally:
            temporaries.discard()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise DownloadError(f"writing {str(path)!r} failed: {reason}") from exc
