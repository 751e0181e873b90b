"""File helpers shared by the dataset loaders: the cache folder and atomic writes."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["cache_dir", "atomic_writer"]


def cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/chainrule/<name>``, by default ``~/.cache/chainrule/<name>``.

    The folder is not created here; writers create it when they first need it.
    """
    # The XDG spec says an empty XDG_CACHE_HOME counts as unset.
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "chainrule" / name


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success rename it to ``path``.

    Readers therefore see either no file or the complete file, never a half-written
    one, even if the process is killed mid-way. The temporary file lives in the same
    folder because ``os.replace`` is only atomic within one file system. If the ``with``
    block raises, the temporary file is deleted and ``path`` is left untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    # os.open with mode 0o666 lets the user's umask decide the permissions, as for any
    # ordinary file (tempfile would make it private, 0o600); O_EXCL never reuses a file.
    handle = os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb")
    try:
        with handle:
            yield handle
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
