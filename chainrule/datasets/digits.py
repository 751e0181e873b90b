"""The small 8x8 handwritten digits bundled with scikit-learn (no download needed).

1,797 images with 17 grey levels (0-16), ten classes: a quick stand-in for MNIST that
trains in seconds.
"""

from __future__ import annotations

import numpy as np

from .mnist_format import format_images

__all__ = ["digits", "DIGITS_CLASSES"]

DIGITS_CLASSES = tuple(str(digit) for digit in range(10))
_MAX_VALUE = 16  # pixels are counts of "on" pixels in 4x4 blocks of a 32x32 bitmap


def digits(split: str | None = None, normalize: bool = True, flatten: bool = True,
           one_hot: bool = False, test_size: float = 0.2, seed: int = 0
           ) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as ``(images, labels)``.

    Args:
        split: ``None`` for all 1,797 samples, or ``'train'`` / ``'test'`` for one side
            of a stratified split (every digit in the same proportion on both sides).
            The split depends only on ``test_size`` and ``seed``, so the two calls
            ``digits('train')`` and ``digits('test')`` never overlap.
        normalize: pixels as float32 in [0, 1] (divided by 16); otherwise uint8 0..16.
        flatten: images of shape (N, 64); otherwise (N, 1, 8, 8).
        one_hot: labels as float32 one-hot rows (N, 10); otherwise int64 (N,).
        test_size: fraction held out for the test split.
        seed: seed of the split.
    """
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
    # Imported here because importing scikit-learn takes about a second, which every
    # `import chainrule` would otherwise pay.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)  # stored as float64 holding integers 0..16
    labels = bunch.target.astype(np.int64)
    if split is not None:
        from chainrule.data import train_test_split

        train_x, test_x, train_y, test_y = train_test_split(
            images, labels, test_size=test_size, seed=seed, stratify=True
        )
        images, labels = (train_x, train_y) if split == "train" else (test_x, test_y)
    return format_images(images, labels, _MAX_VALUE, normalize, flatten, one_hot, 10)
