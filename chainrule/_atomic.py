"""Writing a file atomically: the one mechanism behind ``chainrule.save``, the training
history and checkpoints, and the dataset cache."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_writer", "TEMPORARY_SUFFIX", "remove_temporary_files"]

#: Temporary files are named ``.<name>.<random>.tmp`` beside their target.
TEMPORARY_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success flush it to disk and rename it
    to ``path``.

    Readers therefore see either no file or the complete file, never a half-written
    one, even if the process is killed mid-way. The temporary file lives in the same
    folder because ``os.replace`` is only atomic within one file system. If the ``with``
    block raises, the temporary file is deleted and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"
    # os.open with mode 0o666 lets the user's umask decide the permissions, as for any
    # ordinary file (tempfile.mkstemp would make it private, 0o600); O_EXCL never
    # reuses a file.
    handle = os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb")
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def remove_temporary_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files ``atomic_writer`` left in ``folder`` when a process
    was killed mid-write (SIGKILL gives it no chance to clean up); returns them."""
    removed = []
    for leftover in Path(folder).glob(f".*{TEMPORARY_SUFFIX}"):
        if leftover.is_file():
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
            removed.append(leftover)
    return removed
