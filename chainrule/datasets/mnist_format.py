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
   trying each mirror in turn and checking the published MD5. (Steps 1 and 2 are
   ``chainrule.datasets._locate``, shared with the Penn Treebank.)
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
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from chainrule._progress import progress_bar

from ._files import parsed_cache_path, read_maybe_gzipped, read_npz, write_npz
from ._locate import DatasetSource, locate
from .errors import CorruptFileError
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
class IdxDatasetSpec(DatasetSource):
    """Everything that distinguishes one MNIST-format dataset from another: where its
    files are (name, title, mirrors, ``md5`` of each ``<file>.gz``, env_subdirs, as for
    any ``DatasetSource``), plus what is checked and named after reading them."""

    raw_sha256: Mapping[str, str] | None  # "<file>" -> SHA-256 of the decompressed bytes
    class_names: tuple[str, ...]


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


# --------------------------------------------------------------------------- loading
def _valid_cache(cached: dict[str, np.ndarray] | None, count: int
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached (images, labels) if they have the expected shapes and dtypes."""
    if cached is None:
        return None
    images, labels = cached["images"], cached["labels"]
    if (images.shape != (count, IMAGE_SIDE, IMAGE_SIDE) or labels.shape != (count,)
            or images.dtype != np.uint8 or labels.dtype != np.uint8):
        return None
    return images, labels


def _load_split(spec: IdxDatasetSpec, split: str, data_dir: str | os.PathLike | None,
                download: bool) -> tuple[np.ndarray, np.ndarray]:
    """Raw uint8 ``images`` (N, 28, 28) and ``labels`` (N,) of one split."""
    sources = locate(spec, SPLIT_FILES[split], data_dir, download, f"{split!r} files")
    count = SPLIT_SIZES[split]
    npz_path = parsed_cache_path(spec.name, split, sources, _NPZ_VERSION)
    cached = _valid_cache(read_npz(npz_path, ("images", "labels")), count)
    if cached is not None:
        return cached

    # the first read of a split takes seconds on a busy machine: a bar on a terminal
    with progress_bar(len(sources), f"checking {spec.title} {split}", "file") as bar:
        if spec.raw_sha256 is None:  # no checksum of the content: check them as published
            for source in sources:
                _check_published_file(spec, source)
        checksums = spec.raw_sha256 or {}
        image_name, label_name = SPLIT_FILES[split]
        images = read_idx(sources[0], IMAGES_MAGIC, (count, IMAGE_SIDE, IMAGE_SIDE),
                          checksums.get(image_name))
        bar.update(1)
        labels = read_idx(sources[1], LABELS_MAGIC, (count,), checksums.get(label_name))
        bar.update(1)
    if labels.max() >= NUM_CLASSES:
        raise CorruptFileError(sources[1], f"holds label {labels.max()}, expected 0 to 9")
    write_npz(npz_path, {"images": images, "labels": labels})
    return images, labels


def _check_published_file(spec: IdxDatasetSpec, path: Path) -> None:
    """For a dataset known only by the MD5s of its published .gz files (Fashion-MNIST):
    a .gz file found on disk must have its published MD5, and no file may be MNIST's
    file of the same name (both datasets name their files alike, so a --data-dir of
    MNIST's files would otherwise train "Fashion-MNIST" on digits)."""
    raw = path.read_bytes()
    if path.name in spec.md5 and \
            hashlib.md5(raw, usedforsecurity=False).hexdigest() == spec.md5[path.name]:
        return
    plain_name = path.name.removesuffix(".gz")
    if MNIST.raw_sha256 and plain_name in MNIST.raw_sha256 and \
            hashlib.sha256(read_maybe_gzipped(path)).hexdigest() == MNIST.raw_sha256[plain_name]:
        raise CorruptFileError(path, f"this is MNIST's {plain_name}, not {spec.title}'s",
                               f"Point to a folder of {spec.title}'s files instead (the two "
                               "datasets name their files alike).")
    if path.name in spec.md5:
        raise CorruptFileError(path, f"its MD5 is not the published {spec.md5[path.name]} of "
                                     f"{spec.title}'s file (if you compressed it yourself, "
                                     "store it decompressed)")


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
