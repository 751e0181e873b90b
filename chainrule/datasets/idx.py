"""Reading the IDX file format used by MNIST and Fashion-MNIST.

An IDX file is a tiny header followed by the raw numbers of one n-dimensional array:

* 4 bytes of "magic number": two zero bytes, a type code (0x08 = unsigned byte) and
  the number of dimensions. Images (3 dimensions) start with 0x00000803 = 2051, labels
  (1 dimension) with 0x00000801 = 2049.
* one 4-byte big-endian integer per dimension (e.g. 60000, 28, 28);
* the values themselves, row by row, big-endian.

The files are usually distributed gzipped; both forms are accepted here. Every check
that fails raises ``CorruptFileError`` naming the file: a damaged file must never turn
into a silently wrong array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._files import check_digest, read_maybe_gzipped
from .errors import CorruptFileError

__all__ = ["read_idx", "parse_idx", "IMAGES_MAGIC", "LABELS_MAGIC"]

IMAGES_MAGIC = 2051  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # unsigned bytes, 1 dimension

# Type code (third byte of the magic number) -> big-endian NumPy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(content: bytes, path: Path | str = "<bytes>",
              expected_magic: int | None = None) -> np.ndarray:
    """Decode the (decompressed) bytes of an IDX file into an array of native byte order.

    ``path`` is only used in error messages.
    """
    if len(content) < 4:
        raise CorruptFileError(path, f"only {len(content)} bytes, too short for an IDX header")
    magic = int.from_bytes(content[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise CorruptFileError(
            path, f"wrong magic number {magic} (expected {expected_magic}); not this IDX file"
        )
    type_code, ndim = content[2], content[3]
    if content[:2] != b"\x00\x00" or type_code not in _IDX_DTYPES or ndim == 0:
        raise CorruptFileError(path, f"magic number {magic:#010x} is not a valid IDX header")
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise CorruptFileError(path, f"the header is cut short ({len(content)} bytes)")
    shape = tuple(
        int.from_bytes(content[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)
    )
    dtype = _IDX_DTYPES[type_code]
    expected_size = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(content) != expected_size:
        raise CorruptFileError(
            path, f"size is {len(content)} bytes but the header (shape {shape}) implies "
                  f"{expected_size}"
        )
    array = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)
    # astype copies: the result owns writable memory in the machine's byte order.
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: Path | str, expected_magic: int | None = None,
             expected_shape: tuple[int, ...] | None = None,
             sha256: str | None = None) -> np.ndarray:
    """Read an IDX file (gzipped or not) and check it.

    Args:
        path: the file.
        expected_magic: e.g. ``IMAGES_MAGIC``; checked before anything else.
        expected_shape: the array's shape, e.g. ``(10000, 28, 28)``.
        sha256: SHA-256 hex digest of the *decompressed* content, which is the same for
            every correct copy however it was compressed.

    Raises:
        CorruptFileError: bad gzip, wrong magic, size not matching the header, wrong
            shape, or wrong checksum.
    """
    path = Path(path)
    content = read_maybe_gzipped(path)
    array = parse_idx(content, path, expected_magic)
    if expected_shape is not None and array.shape != tuple(expected_shape):
        raise CorruptFileError(
            path, f"holds an array of shape {array.shape}, expected {tuple(expected_shape)}"
        )
    if sha256 is not None:
        check_digest(path, content, sha256, "sha256")
    return array
