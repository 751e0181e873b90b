"""MNIST and Fashion-MNIST: find, download, validate, cache and load.

Both datasets ship as the same four IDX files (60,000 training and 10,000 test images of
28x28 grey pixels, with labels 0-9), so one loader serves both; an ``IdxDatasetSpec``
holds what differs (mirrors, checksums, class names, folder names).

Loading ``split`` goes like this:

1. Find the split's two files (each may be gzipped) in the first folder holding both:
   ``data_dir`` if given, then ``$CHAINRULE_DATA`` (MNIST: the folder itself or its
   ``mnist/`` subfolder; Fashion-MNIST: its ``fashion-mnist/`` subfolder), then the cache
   ``$XDG_CACHE_HOME/chainrule/<name>`` (by default ``~/.cache/chainrule/<name>``).
2. If none has them and ``download=True``, download the ``.gz`` files into the cache,
   trying each mirror in turn and checking the published MD5.
3. If a parsed copy (``.npz``) of exactly these files is cached, load it: that is fast.
4. Otherwise read the IDX files, checking magic numbers, counts, 28x28 dimensions, byte
   sizes and (for MNIST) the SHA-256 of the decompressed content, then save the ``.npz``.

The ``.npz`` name contains a hash of the source files' full paths, sizes and modification
times, so a different ``data_dir``, or a file replaced since, can never be mistaken for
the files that were validated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ._files import atomic_writer, cache_dir
from .download import download_file
from .errors import CorruptFileError, DatasetNotFoundError, DownloadError
from .idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

__all__ = [
    "IdxDatasetSpec",
    "MNIST",
    "FASHION_MNIST",
    "MNIST_MIRRORS",
    "FASHION_MNIST_MIRRORS",
    "MNIST_CLASSES",
    "FASHION_MNIST_CLASSES",
    "mnist",
    "fashion_mnist",
    "load_idx_dataset",
    "format_images",
]

SPLITS = ("train", "test")
#: Uncompressed file names of each split: (images, labels). Either may end in ``.gz``.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
IMAGE_SIDE = 28
NUM_CLASSES = 10
# Bump when the .npz layout changes, so that old cache files are ignored.
_NPZ_VERSION = 1

#: Base URLs tried in order when downloading MNIST.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
#: Base URLs tried in order when downloading Fashion-MNIST.
FASHION_MNIST_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)

MNIST_CLASSES = tuple(str(digit) for digit in range(10))
#: Fashion-MNIST label i is FASHION_MNIST_CLASSES[i] (the official order).
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclasses.dataclass(frozen=True)
class IdxDatasetSpec:
    """Everything that distinguishes one MNIST-format dataset from another."""

    name: str  # folder name in the cache, e.g. "fashion-mnist"
    title: str  # for messages, e.g. "Fashion-MNIST"
    mirrors: tuple[str, ...]
    md5: Mapping[str, str]  # "<file>.gz" -> published MD5 of the archive
    raw_sha256: Mapping[str, str] | None  # "<file>" -> SHA-256 of the decompressed bytes
    class_names: tuple[str, ...]
    env_subdirs: tuple[str, ...]  # where to look inside $CHAINRULE_DATA ("" = itself)


MNIST = IdxDatasetSpec(
    name="mnist",
    title="MNIST",
    mirrors=MNIST_MIRRORS,
    md5={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    raw_sha256={
        "train-images-idx3-ubyte":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    class_names=MNIST_CLASSES,
    env_subdirs=("", "mnist"),
)

FASHION_MNIST = IdxDatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    mirrors=FASHION_MNIST_MIRRORS,
    md5={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    # No published checksum of the decompressed files; the MD5 guards downloads.
    raw_sha256=None,
    class_names=FASHION_MNIST_CLASSES,
    # Not $CHAINRULE_DATA itself: it may hold MNIST, whose files have the same names.
    env_subdirs=("fashion-mnist",),
)


# --------------------------------------------------------------------------- finding
def _search_dirs(spec: IdxDatasetSpec, data_dir: str | os.PathLike | None
                 ) -> list[tuple[Path, str]]:
    """The folders to look in, in order, each with where it came from (for messages)."""
    folders = []
    if data_dir is not None:
        folders.append((Path(data_dir).expanduser(), "data_dir"))
    env = os.environ.get("CHAINRULE_DATA")
    if env:
        for sub in spec.env_subdirs:
            folders.append((Path(env).expanduser() / sub, "$CHAINRULE_DATA"))
    folders.append((cache_dir(spec.name), "cache"))
    return folders


def _find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or else ``folder/name.gz``, whichever exists first."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _not_found_message(spec: IdxDatasetSpec, split: str, folders: list[tuple[Path, str]],
                       download_error: DownloadError | None) -> str:
    images, labels = SPLIT_FILES[split]
    searched = "\n".join(f"  - {folder}  ({origin})" for folder, origin in folders)
    if download_error is None:
        download_note = "Downloading was not attempted (download=False)."
    else:
        download_note = f"Downloading failed: {download_error}"
    return (
        f"{spec.title} {split!r} files not found.\n"
        f"Expected {images} and {labels} (each may also be gzipped, ending in .gz).\n"
        f"Searched:\n{searched}\n"
        f"{download_note}\n"
        f"To fix it, do one of:\n"
        f"  - pass data_dir='/path/to/folder' holding these files;\n"
        f"  - set the CHAINRULE_DATA environment variable to such a folder"
        f" (see the list above for the subfolders looked at);\n"
        f"  - call with download=True while online (the files go to "
        f"{cache_dir(spec.name)})."
    )


def _locate(spec: IdxDatasetSpec, split: str, data_dir: str | os.PathLike | None,
            download: bool) -> tuple[Path, Path]:
    """Paths of the split's (images, labels) files, downloading them if allowed."""
    names = SPLIT_FILES[split]
    folders = _search_dirs(spec, data_dir)
    for folder, _ in folders:
        found = [_find_file(folder, name) for name in names]
        if found[0] is not None and found[1] is not None:
            return found[0], found[1]
    if not download:
        raise DatasetNotFoundError(_not_found_message(spec, split, folders, None))

    target = cache_dir(spec.name)
    try:
        for name in names:
            if _find_file(target, name) is None:  # keep a file an earlier run fetched
                download_file(f"{name}.gz", spec.mirrors, spec.md5[f"{name}.gz"], target)
    except DownloadError as err:
        raise DatasetNotFoundError(_not_found_message(spec, split, folders, err)) from err
    images, labels = (_find_file(target, name) for name in names)
    assert images is not None and labels is not None
    return images, labels


# --------------------------------------------------------------------------- npz cache
def _npz_path(spec: IdxDatasetSpec, split: str, sources: tuple[Path, Path]) -> Path:
    """Cache file for the parsed arrays of these exact source files."""
    key = hashlib.sha256(f"v{_NPZ_VERSION}".encode())
    for source in sources:
        stat = source.stat()
        key.update(f"|{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_dir(spec.name) / f"{split}-{key.hexdigest()[:16]}.npz"


def _read_npz(path: Path, count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached (images, labels), or None if absent or not as expected."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # a damaged cache file is simply rebuilt from the sources
    if (images.shape != (count, IMAGE_SIDE, IMAGE_SIDE) or labels.shape != (count,)
            or images.dtype != np.uint8 or labels.dtype != np.uint8):
        return None
    return images, labels


def _write_npz(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Save the parsed arrays; a cache that cannot be written only costs speed."""
    try:
        with atomic_writer(path) as out:
            # Uncompressed on purpose: reading 47 MB is faster than inflating it.
            np.savez(out, images=images, labels=labels)
    except OSError as err:
        warnings.warn(f"could not write the cache file {path}: {err}", stacklevel=3)


def _load_split(spec: IdxDatasetSpec, split: str, data_dir: str | os.PathLike | None,
                download: bool) -> tuple[np.ndarray, np.ndarray]:
    """Raw uint8 ``images`` (N, 28, 28) and ``labels`` (N,) of one split."""
    sources = _locate(spec, split, data_dir, download)
    count = SPLIT_SIZES[split]
    npz_path = _npz_path(spec, split, sources)
    cached = _read_npz(npz_path, count)
    if cached is not None:
        return cached

    checksums = spec.raw_sha256 or {}
    image_name, label_name = SPLIT_FILES[split]
    images = read_idx(sources[0], IMAGES_MAGIC, (count, IMAGE_SIDE, IMAGE_SIDE),
                      checksums.get(image_name))
    labels = read_idx(sources[1], LABELS_MAGIC, (count,), checksums.get(label_name))
    if labels.max() >= NUM_CLASSES:
        raise CorruptFileError(sources[1], f"holds label {labels.max()}, expected 0 to 9")
    _write_npz(npz_path, images, labels)
    return images, labels


# --------------------------------------------------------------------------- public
def format_images(images: np.ndarray, labels: np.ndarray, max_value: int, normalize: bool,
                  flatten: bool, one_hot: bool, num_classes: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Turn raw (N, H, W) pixels and integer labels into what a model consumes.

    Pixels become float32 in [0, 1] (divided by ``max_value``) when ``normalize``, and
    (N, H*W) when ``flatten``, else (N, 1, H, W) with a channel axis for convolutions.
    Labels become int64, or float32 one-hot rows (N, num_classes) when ``one_hot``.
    """
    n = len(images)
    if normalize:
        out = images.astype(np.float32)
        out /= max_value  # in place: no second 188 MB temporary for MNIST's train set
        images = out
    images = images.reshape(n, -1) if flatten else images.reshape(n, 1, *images.shape[1:])
    labels = labels.astype(np.int64)
    if one_hot:
        labels = np.eye(num_classes, dtype=np.float32)[labels]
    return images, labels


def load_idx_dataset(spec: IdxDatasetSpec, split: str = "train", normalize: bool = True,
                     flatten: bool = True, one_hot: bool = False,
                     data_dir: str | os.PathLike | None = None, download: bool = True
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of an MNIST-format dataset described by ``spec``.

    See ``mnist`` for the arguments; ``fashion_mnist`` is the same with another spec.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images, labels = _load_split(spec, split, data_dir, download)
    return format_images(images, labels, 255, normalize, flatten, one_hot, NUM_CLASSES)


def mnist(split: str = "train", normalize: bool = True, flatten: bool = True,
          one_hot: bool = False, data_dir: str | os.PathLike | None = None,
          download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST handwritten digits: 60,000 training or 10,000 test images of 28x28.

    Args:
        split: ``'train'`` or ``'test'``.
        normalize: pixels as float32 in [0, 1]; otherwise uint8 in 0..255.
        flatten: images of shape (N, 784); otherwise (N, 1, 28, 28).
        one_hot: labels as float32 one-hot rows (N, 10); otherwise int64 (N,).
        data_dir: a folder holding the IDX files (searched first).
        download: fetch missing files into the cache from the public mirrors.

    Returns:
        ``(images, labels)`` as NumPy arrays.

    Raises:
        DatasetNotFoundError: the files are nowhere and could not be downloaded.
        CorruptFileError: a file is damaged (the message names it).
    """
    return load_idx_dataset(MNIST, split, normalize, flatten, one_hot, data_dir, download)


def fashion_mnist(split: str = "train", normalize: bool = True, flatten: bool = True,
                  one_hot: bool = False, data_dir: str | os.PathLike | None = None,
                  download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST: Zalando's 28x28 clothing images, a drop-in harder MNIST.

    Same arguments and return values as ``mnist``; label ``i`` is
    ``FASHION_MNIST_CLASSES[i]``. The cache folder is ``~/.cache/chainrule/fashion-mnist``
    and the subfolder of ``$CHAINRULE_DATA`` searched is ``fashion-mnist/``.
    """
    return load_idx_dataset(FASHION_MNIST, split, normalize, flatten, one_hot, data_dir,
                            download)
