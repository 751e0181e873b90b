"""File helpers shared by the dataset loaders: the cache folder, atomic writes, reading
(possibly gzipped) files and checking them, and the cache of parsed arrays (``.npz``)."""

from __future__ import annotations

import gzip
import hashlib
import os
import warnings
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from chainrule._atomic import atomic_writer

from .errors import CorruptFileError

__all__ = [
    "cache_dir",
    "atomic_writer",
    "read_maybe_gzipped",
    "check_digest",
    "parsed_cache_path",
    "read_npz",
    "write_npz",
]

_GZIP_SIGNATURE = b"\x1f\x8b"
_DIGEST_NAMES = {"md5": "MD5", "sha256": "SHA-256"}


def cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/chainrule/<name>``, by default ``~/.cache/chainrule/<name>``.

    The folder is not created here; writers create it when they first need it.
    """
    # The XDG spec says an empty XDG_CACHE_HOME counts as unset.
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "chainrule" / name


# --------------------------------------------------------------------------- reading
def read_maybe_gzipped(path: Path) -> bytes:
    """The file's bytes, decompressed if it is gzipped (told by its content, not its name).

    Raises:
        CorruptFileError: the name ends in ``.gz`` but the content is not gzip, or the
            gzip data is truncated or invalid.
    """
    raw = path.read_bytes()
    is_gzip = raw[:2] == _GZIP_SIGNATURE
    if path.suffix == ".gz" and not is_gzip:
        raise CorruptFileError(path, "not a gzip file although its name ends in .gz")
    if not is_gzip:
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as err:  # the stream stops before its end marker
        raise CorruptFileError(path, f"the gzip data is truncated ({err})") from err
    except (OSError, zlib.error) as err:  # bad header, bad CRC, garbled data
        raise CorruptFileError(path, f"the gzip data is invalid ({err})") from err


def check_digest(path: Path, content: bytes, expected: str, algorithm: str = "sha256") -> None:
    """Raise ``CorruptFileError`` unless ``content`` (the decompressed bytes of ``path``)
    has the hex digest ``expected``; ``algorithm`` is ``"sha256"`` or ``"md5"``.

    Checking the decompressed bytes makes one checksum serve every correct copy, however
    it was compressed.
    """
    # MD5 is fine here: it checks integrity against published sums, not security.
    digest = hashlib.new(algorithm, content, usedforsecurity=False).hexdigest()
    if digest != expected:
        raise CorruptFileError(
            path, f"{_DIGEST_NAMES[algorithm]} of the decompressed content is {digest}, "
                  f"expected {expected} (a byte was changed, or this is not the official "
                  "file)"
        )


# --------------------------------------------------------------------------- npz cache
def parsed_cache_path(name: str, stem: str, sources: Sequence[Path], version: int) -> Path:
    """Cache file ``<cache_dir(name)>/<stem>-<key>.npz`` for arrays parsed from ``sources``.

    The key hashes ``version`` (bump it when the layout changes) and each source's full
    path, size and modification time, so a different folder, or a file replaced since it
    was validated, can never be mistaken for the files that were.
    """
    key = hashlib.sha256(f"v{version}".encode())
    for source in sources:
        stat = source.stat()
        key.update(f"|{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_dir(name) / f"{stem}-{key.hexdigest()[:16]}.npz"


def read_npz(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The arrays ``keys`` of a cached ``.npz``, or None if it is absent or damaged.

    Only the members asked for are read. The caller still checks shapes and dtypes, and
    rebuilds the cache from the sources when they are not as expected.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in keys}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # a damaged cache file is simply rebuilt from the sources


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Save parsed arrays atomically; a cache that cannot be written only costs speed.

    A parsed copy (``<stem>-<key>.npz``, see ``parsed_cache_path``) replaces the older
    copies of the same stem: the cache holds one per dataset and split, however many
    data folders were read (each copy of MNIST's training set is 55 MB)."""
    try:
        with atomic_writer(path) as out:
            # Uncompressed on purpose: reading the bytes is faster than inflating them.
            np.savez(out, **arrays)
    except OSError as err:
        warnings.warn(f"could not write the cache file {path}: {err}", stacklevel=3)
        return
    _prune_older_copies(path)


def _prune_older_copies(path: Path) -> None:
    stem, _, key = path.stem.rpartition("-")
    if not stem or len(key) != 16:
        return
    for other in path.parent.glob(f"{stem}-{'?' * 16}.npz"):
        if other != path:
            try:
                other.unlink()
            except OSError:  # in use or already gone: it only costs disk space
                pass
