"""Winograd's minimal filtering for 3×3, stride-1 convolutions (Lavin & Gray, 2015).

A 3-tap correlation producing m outputs, y_i = Σ_k d_(i+k)·g_k, needs m·3 products
when done directly, but only m + 2 in Winograd's form

    y = Aᵀ [(G g) ⊙ (Bᵀ d)]

where d holds the m + 2 inputs the outputs read, ⊙ multiplies elementwise, and the
three small constant matrices transform the data (Bᵀ), the filter (G) and the
products back (Aᵀ). Nested in two dimensions, an m×m tile of outputs reads a
(m+2)×(m+2) tile of inputs:

    Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A.

For a whole convolution, the elementwise product at each of the (m+2)² transform
points ξ becomes a sum over the input channels, which is a matrix product:

    M[ξ] = U[ξ] · V[ξ]     U[ξ] (out_channels × in_channels): the transformed filters
                           V[ξ] (in_channels × tiles): the transformed input tiles

so a convolution is (m+2)² matrix products with (m+2)²/m² of im2col's multiplies per
output instead of 9: F(2×2, 3×3) does 16/4 = 4 per output (2.25× fewer), F(4×4, 3×3)
36/16 = 2.25 (4× fewer). See docs/convolution.md for the derivation beside im2col's.

The transform matrices are those of Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks" (CVPR 2016, arXiv:1509.09308), section 4, built from the points
0, ±1, ∞ (F(2, 3)) and 0, ±1, ±2, ∞ (F(4, 3)).

The backward passes are convolutions too:

* the input's gradient is the convolution of the (padded) output gradient with the
  flipped, transposed kernel: ``forward`` again, with gathers only;
* the weight's gradient is the adjoint of the forward computation: the output
  gradient's tiles are transformed by Aᵀ's transpose (dM = A dY Aᵀ), multiplied by the
  input tiles (dU[ξ] = dM[ξ]·V[ξ]ᵀ, summed over all tiles), and taken back through
  the filter transform (dW = Gᵀ dU G).

Every array here is stored channels-first and batch-innermost, (C, H, W, N) in memory,
the layout of ``ops/conv.py``; each slice taken below then has contiguous runs of N
values. Tiles are processed in bands of tile rows, each band's temporaries about
``BAND_BYTES`` (reused scratch buffers), so the transformed tiles are multiplied while
they are still in the cache and are never held for a whole batch.

float32 error: each output is a sum of (m+2)² transformed products per channel, and
the transforms mix inputs with coefficients up to 1 (F(2, 3)) or 5–8 (F(4, 3)), so
the rounding error is a small multiple of im2col's for F(2, 3) and a larger one for
F(4, 3); the measured errors and the bound the tests use are in docs/convolution.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from chainrule.ops import _parallel
from chainrule.ops._scratch import recycled

BAND_BYTES = 2 * 2**20  # the transformed input tiles of one band (measured: 1-2 MiB best)


class Transform(NamedTuple):
    """Winograd's F(m×m, 3×3): ``m`` outputs per tile side, tiles of t = m + 2 inputs."""

    m: int
    BT: np.ndarray  # (t, t): data transform, V = Bᵀ d B
    G: np.ndarray   # (t, 3): filter transform, U = G g Gᵀ
    AT: np.ndarray  # (m, t): output transform, Y = Aᵀ M A

    @property
    def t(self) -> int:
        return self.m + 2


# Lavin & Gray (2015), section 4.1: F(2, 3) from the points 0, 1, -1 and ∞.
F2x2 = Transform(
    2,
    BT=np.array([[1, 0, -1, 0],
                 [0, 1, 1, 0],
                 [0, -1, 1, 0],
                 [0, 1, 0, -1]], dtype=float),
    G=np.array([[1, 0, 0],
                [0.5, 0.5, 0.5],
                [0.5, -0.5, 0.5],
                [0, 0, 1]]),
    AT=np.array([[1, 1, 1, 0],
                 [0, 1, -1, -1]], dtype=float))

# Lavin & Gray (2015), section 4.2: F(4, 3) from the points 0, 1, -1, 2, -2 and ∞.
F4x4 = Transform(
    4,
    BT=np.array([[4, 0, -5, 0, 1, 0],
                 [0, -4, -4, 1, 1, 0],
                 [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0],
                 [0, 2, -1, -2, 1, 0],
                 [0, 4, 0, -5, 0, 1]], dtype=float),
    G=np.array([[1 / 4, 0, 0],
                [-1 / 6, -1 / 6, -1 / 6],
                [-1 / 6, 1 / 6, -1 / 6],
                [1 / 24, 1 / 12, 1 / 6],
                [1 / 24, -1 / 12, 1 / 6],
                [0, 0, 1]]),
    AT=np.array([[1, 1, 1, 1, 1, 0],
                 [0, 1, -1, 2, -2, 0],
                 [0, 1, 1, 4, 4, 0],
                 [0, 1, -1, 8, -8, 1]], dtype=float))


# --------------------------------------------------------------------------- helpers
def _combine(matrix: np.ndarray, pieces: list[np.ndarray], targets) -> None:
    """targets[a] = Σ_k matrix[a, k]·pieces[k], for every row a, written in place.

    The transforms' coefficients are mostly 0 and ±1, so each row is a few additions
    and subtractions of whole (strided) arrays; the first two terms are fused into one
    operation writing the target.
    """
    for row, target in zip(matrix, targets):
        terms = [(float(c), p) for c, p in zip(row, pieces) if c != 0]
        (c0, p0), rest = terms[0], terms[1:]
        if rest and abs(c0) == 1 and abs(rest[0][0]) == 1:
            c1, p1 = rest.pop(0)
            if c0 == c1:
                np.add(p0, p1, out=target)
                if c0 < 0:
                    np.negative(target, out=target)
            elif c0 > 0:
                np.subtract(p0, p1, out=target)
            else:
                np.subtract(p1, p0, out=target)
        elif c0 == 1:
            np.copyto(target, p0)
        else:
            np.multiply(p0, c0, out=target)
        for c, p in rest:
            if c == 1:
                np.add(target, p, out=target)
            elif c == -1:
                np.subtract(target, p, out=target)
            else:
                term = recycled(p.shape, target.dtype)
                np.multiply(p, c, out=term)
                np.add(target, term, out=target)


def _bands(count: int, row_bytes: int) -> list[tuple[int, int]]:
    """Split ``count`` tile rows into nearly equal bands of at most ``BAND_BYTES``."""
    per_band = max(1, BAND_BYTES // max(row_bytes, 1))
    bands = -(-count // per_band)
    size = -(-count // bands)
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def tile_counts(out_size: tuple[int, int], f: Transform) -> tuple[int, int]:
    """How many m×m output tiles cover an (OH, OW) output (the last may stick out)."""
    return -(-out_size[0] // f.m), -(-out_size[1] // f.m)


def pad_stored(x: np.ndarray, padding: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """``x`` (logical (N, C, H, W)) stored as (C, Hp, Wp, N) = ``size``, with ``padding``
    zero rows/columns on the top and left and zeros on the bottom and right up to
    ``size``. A recycled array (see ``_scratch``): only the border is zeroed, every value
    is written once."""
    n, c, h, w = x.shape
    (ph, pw), (hp, wp) = padding, size
    out = recycled((c, hp, wp, n), x.dtype)
    images = out.transpose(3, 0, 1, 2)  # (N, C, Hp, Wp), as x

    def fill(i: Any) -> None:  # all channels, or a share of them (see _parallel)
        part = images[i]
        part[:, :, :ph] = 0
        part[:, :, ph + h:] = 0
        part[:, :, ph:ph + h, :pw] = 0
        part[:, :, ph:ph + h, pw + w:] = 0
        part[:, :, ph:ph + h, pw:pw + w] = x[i]

    _parallel.over_channels(images.shape, fill)
    return out


def pad_input(x: np.ndarray, padding: tuple[int, int], out_size: tuple[int, int],
              f: Transform) -> np.ndarray:
    """``x`` zero-padded for tiling, stored as (C, Hp, Wp, N): ``padding`` on the top and
    left, and at the bottom and right as much as the output tiles read (the padding,
    plus one more row/column when OH/OW is odd for F(2×2, 3×3))."""
    ty, tx = tile_counts(out_size, f)
    return pad_stored(x, padding, (f.m * ty + 2, f.m * tx + 2))


def filter_transform(weight: np.ndarray, f: Transform) -> np.ndarray:
    """U[ξ] = (G g Gᵀ)[ξ] for every (out, in) channel pair, as (t², O, C) (computed in
    float64, so that it adds no error of its own beyond the final rounding)."""
    o, c = weight.shape[:2]
    u = np.einsum("ai,ocij,bj->aboc", f.G, weight.astype(np.float64), f.G)
    return np.ascontiguousarray(u.reshape(f.t * f.t, o, c), dtype=weight.dtype)


def _input_tiles(padded: np.ndarray, t0: int, t1: int, f: Transform) -> np.ndarray:
    """V = Bᵀ d B for the tiles of tile rows t0..t1: a scratch (t, t, C, rows, Tx, N)."""
    c, _, wp, n = padded.shape
    m, t, rows = f.m, f.t, t1 - t0
    tx = (wp - 2) // m
    # Bᵀ along the rows: tile row r reads padded rows m·r + k, k = 0..t-1
    half = recycled((t, c, rows, wp, n), padded.dtype)
    _combine(f.BT, [padded[:, m * t0 + k:m * (t1 - 1) + k + 1:m] for k in range(t)], half)
    # then along the columns: tile column s reads columns m·s + k
    v = recycled((t, t, c, rows, tx, n), padded.dtype)
    for a in range(t):
        _combine(f.BT, [half[a][:, :, k:m * (tx - 1) + k + 1:m] for k in range(t)], v[a])
    del half  # free for the next request
    return v


# --------------------------------------------------------------------------- the passes
def convolve(padded: np.ndarray, weight: np.ndarray, out_size: tuple[int, int],
             f: Transform = F2x2) -> np.ndarray:
    """The 3×3 convolution of ``padded`` (from ``pad_input``) with ``weight`` (O, C, 3, 3):
    Y = Aᵀ [U ⊙ V] A per tile, summed over channels by (t²) matrix products. Returns
    the output stored (O, OH, OW, N) (a view cropping the last tiles to OH, OW)."""
    c, hp, wp, n = padded.shape
    o, m, t = weight.shape[0], f.m, f.t
    ty, tx = (hp - 2) // m, (wp - 2) // m
    u = filter_transform(weight, f)                          # (t², O, C)
    y = recycled((o, ty, m, tx, m, n), padded.dtype)  # the output tiles, in place
    row_bytes = t * t * c * tx * n * padded.itemsize

    def bands(share: Sequence[tuple[int, int]]) -> None:
        for t0, t1 in share:
            v = _input_tiles(padded, t0, t1, f)
            products = recycled((t * t, o, (t1 - t0) * tx * n), padded.dtype)
            np.matmul(u, v.reshape(t * t, c, -1), out=products)  # M[ξ] = U[ξ]·V[ξ]
            products = products.reshape(t, t, o, t1 - t0, tx, n)
            # Y = Aᵀ M A: along the rows, then the columns straight into the output tiles
            half = recycled((m, t, o, t1 - t0, tx, n), padded.dtype)
            _combine(f.AT, list(products), half)
            for i in range(m):
                _combine(f.AT, list(half[i]), [y[:, t0:t1, i, :, j] for j in range(m)])
            del v, products, half  # their memory serves the next band

    _parallel.split(_bands(ty, row_bytes), bands)
    return y.reshape(o, ty * m, tx * m, n)[:, :out_size[0], :out_size[1]]


def weight_grad(padded: np.ndarray, g: np.ndarray, f: Transform = F2x2) -> np.ndarray:
    """dW (O, C, 3, 3) of ``convolve(padded, W)`` for the output gradient ``g`` stored
    (O, OH, OW, N): the adjoint of each step, dM = A dY Aᵀ, dU[ξ] = Σ_tiles dM[ξ]·V[ξ]ᵀ,
    dW = Gᵀ dU G."""
    c, hp, wp, n = padded.shape
    o, m, t = g.shape[0], f.m, f.t
    ty, tx = (hp - 2) // m, (wp - 2) // m
    if g.shape[1:3] != (ty * m, tx * m):  # outputs cropped off the last tiles: zero gradient
        full = np.zeros((o, ty * m, tx * m, n), dtype=g.dtype)
        full[:, :g.shape[1], :g.shape[2]] = g
        g = full
    g = g.reshape(o, ty, m, tx, m, n)
    row_bytes = t * t * c * tx * n * padded.itemsize
    a = f.AT.T  # (t, m): the transpose of the output transform

    def bands(share: Sequence[tuple[int, int]]) -> np.ndarray:
        du = np.zeros((t * t, o, c), dtype=padded.dtype)
        for t0, t1 in share:
            v = _input_tiles(padded, t0, t1, f)
            half = recycled((t, o, t1 - t0, tx, m, n), g.dtype)
            _combine(a, [g[:, t0:t1, i] for i in range(m)], half)
            dm = recycled((t, t, o, t1 - t0, tx, n), g.dtype)
            for r in range(t):
                _combine(a, [half[r][:, :, :, j] for j in range(m)], dm[r])
            du += np.matmul(dm.reshape(t * t, o, -1),
                            v.reshape(t * t, c, -1).transpose(0, 2, 1))
            del v, half, dm  # their memory serves the next band
        return du

    shares = _parallel.split(_bands(ty, row_bytes), bands)
    du = sum(shares[1:], shares[0])
    dw = np.einsum("ai,aboc,bj->ocij", f.G, du.reshape(t, t, o, c).astype(np.float64), f.G)
    return dw.astype(padded.dtype)
