"""Finding a dataset's files: where they are looked for, downloading them once, and the
message when they are nowhere. MNIST, Fashion-MNIST and the Penn Treebank all use it.

The files are looked for in the first folder holding all of them, in this order:

1. ``data_dir``, if given;
2. ``$CHAINRULE_DATA``: the folder itself and/or a subfolder, as the dataset says;
3. the cache ``$XDG_CACHE_HOME/chainrule/<name>`` (by default ``~/.cache/chainrule/<name>``).

Each file may be plain or gzipped (``<file>`` or ``<file>.gz``). If no folder holds them
all and ``download=True``, the missing ones are downloaded into the cache from the
dataset's mirrors, each checked against its published MD5.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._files import cache_dir
from .download import download_file
from .errors import DatasetNotFoundError, DownloadError

__all__ = ["DatasetSource", "search_dirs", "find_file", "locate"]


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """Where one dataset's files are looked for and downloaded from."""

    name: str  # folder name in the cache, e.g. "fashion-mnist"
    title: str  # for messages, e.g. "Fashion-MNIST"
    mirrors: tuple[str, ...]  # base URLs tried in order
    # File name on the mirrors -> its published MD5. For a needed file ``x``, ``x.gz`` is
    # downloaded when listed here, else ``x``.
    md5: Mapping[str, str]
    env_subdirs: tuple[str, ...]  # where to look inside $CHAINRULE_DATA ("" = itself)


def search_dirs(source: DatasetSource, data_dir: str | os.PathLike | None
                ) -> list[tuple[Path, str]]:
    """The folders to look in, in order, each with where it came from (for messages)."""
    folders = []
    if data_dir is not None:
        folders.append((Path(data_dir).expanduser(), "data_dir"))
    env = os.environ.get("CHAINRULE_DATA")
    if env:
        for sub in source.env_subdirs:
            folders.append((Path(env).expanduser() / sub, "$CHAINRULE_DATA"))
    folders.append((cache_dir(source.name), "cache"))
    return folders


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or else ``folder/name.gz``, whichever exists first."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _listing(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _not_found_error(source: DatasetSource, what: str, names: Sequence[str],
                     folders: list[tuple[Path, str]],
                     download_error: DownloadError | None) -> DatasetNotFoundError:
    """The error, worded for Python and for the command line."""
    python = _not_found_message(source, what, names, folders, download_error)
    searched = "\n".join(f"  - {folder}  ({'--data-dir' if origin == 'data_dir' else origin})"
                         for folder, origin in folders)
    download_note = ("Downloading was not attempted." if download_error is None
                     else f"Downloading failed: {download_error}")
    command_line = (
        f"{source.title} {what} not found.\n"
        f"Expected {_listing(names)} (each may also be gzipped, ending in .gz).\n"
        f"Searched:\n{searched}\n"
        f"{download_note}\n"
        f"To fix it, do one of:\n"
        f"  - give --data-dir /path/to/folder holding these files;\n"
        f"  - set the CHAINRULE_DATA environment variable to such a folder"
        f" (see the list above for the subfolders looked at);\n"
        f"  - run again while online (the files are downloaded to "
        f"{cache_dir(source.name)})."
    )
    return DatasetNotFoundError(python, for_command_line=command_line)


def _not_found_message(source: DatasetSource, what: str, names: Sequence[str],
                       folders: list[tuple[Path, str]],
                       download_error: DownloadError | None) -> str:
    searched = "\n".join(f"  - {folder}  ({origin})" for folder, origin in folders)
    if download_error is None:
        download_note = "Downloading was not attempted (download=False)."
    else:
        download_note = f"Downloading failed: {download_error}"
    return (
        f"{source.title} {what} not found.\n"
        f"Expected {_listing(names)} (each may also be gzipped, ending in .gz).\n"
        f"Searched:\n{searched}\n"
        f"{download_note}\n"
        f"To fix it, do one of:\n"
        f"  - pass data_dir='/path/to/folder' holding these files;\n"
        f"  - set the CHAINRULE_DATA environment variable to such a folder"
        f" (see the list above for the subfolders looked at);\n"
        f"  - call with download=True while online (the files go to "
        f"{cache_dir(source.name)})."
    )


def _download_name(source: DatasetSource, name: str) -> str:
    """The file to fetch from the mirrors for the needed file ``name``."""
    return f"{name}.gz" if f"{name}.gz" in source.md5 else name


def locate(source: DatasetSource, names: Sequence[str], data_dir: str | os.PathLike | None,
           download: bool, what: str = "files") -> tuple[Path, ...]:
    """Paths of the files ``names``, all from one folder, downloading them if allowed.

    ``what`` names the files in the error message, e.g. ``"'train' files"``.

    Raises:
        DatasetNotFoundError: no folder holds them all and they could not be downloaded;
            the message lists the files, every folder searched and how to fix it.
    """
    folders = search_dirs(source, data_dir)
    for folder, _ in folders:
        found = [find_file(folder, name) for name in names]
        if all(path is not None for path in found):
            return tuple(found)  # type: ignore[arg-type]
    if not download:
        raise _not_found_error(source, what, names, folders, None)

    target = cache_dir(source.name)
    try:
        for name in names:
            if find_file(target, name) is None:  # keep a file an earlier run fetched
                remote = _download_name(source, name)
                download_file(remote, source.mirrors, source.md5[remote], target)
    except DownloadError as err:
        raise _not_found_error(source, what, names, folders, err) from err
    found = [find_file(target, name) for name in names]
    assert all(path is not None for path in found)
    return tuple(found)  # type: ignore[arg-type]
