"""Feeding data to a model: datasets, mini-batches and train/test splits.

A ``Dataset`` is anything with a length and an indexing operation returning one sample.
A ``DataLoader`` walks a dataset in mini-batches of ``Tensor``s, optionally in a fresh
random order every epoch. A ``BPTTLoader`` walks one long token stream (a text) in
consecutive windows, for recurrent language models. The helpers ``random_split`` and
``train_test_split`` hold data back for validation.

Typical use::

    train = TensorDataset(X_train, y_train)
    loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)
    for epoch in range(10):
        for inputs, targets in loader:
            ...

Speed matters here: a training loop asks for thousands of batches. For a
``TensorDataset`` (and ``Subset``s of one) a batch is cut out of the whole arrays with a
single fancy index per array, never a Python loop over samples.
"""

from __future__ import annotations

import copy
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "Dataset",
    "TensorDataset",
    "Subset",
    "DataLoader",
    "BPTTLoader",
    "random_split",
    "train_test_split",
]


# --------------------------------------------------------------------------- helpers
def _as_array(value: Any) -> np.ndarray:
    """Return the NumPy array behind ``value`` (a Tensor's ``.data``, or ``np.asarray``)."""
    if isinstance(value, np.ndarray):
        return value
    # Duck-typed so that this module does not need to import chainrule.tensor. The
    # ndarray check above comes first because an ndarray also has a ``.data`` (a buffer).
    data = getattr(value, "data", None)
    if isinstance(data, np.ndarray):
        return data
    return np.asarray(value)


def _check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise a ValueError saying what is allowed."""
    # bool is an int subclass, but ``batch_size=True`` is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_seed(seed: Any) -> int | None:
    """Seeds are None (fresh entropy from the OS) or a non-negative integer."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be None or a non-negative integer, got {seed!r}")
    return int(seed)


# --------------------------------------------------------------------------- datasets
class Dataset(ABC):
    """A collection of samples: ``len(dataset)`` and ``dataset[i]``.

    Subclasses implement ``__len__`` and ``__getitem__``. ``__getitem__`` usually
    returns a tuple such as ``(input, target)``; the DataLoader stacks each position of
    the tuple into one batch array.
    """

    @abstractmethod
    def __len__(self) -> int:
        """Number of samples."""

    @abstractmethod
    def __getitem__(self, index: int) -> Any:
        """The sample at position ``index`` (usually a tuple of arrays)."""


class TensorDataset(Dataset):
    """Samples are the rows of one or more arrays of equal length.

    ``TensorDataset(X, y)[i]`` is ``(X[i], y[i])``. Arrays may be NumPy arrays or
    Tensors (their ``.data`` is used; the dataset stores NumPy arrays).
    """

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset needs at least one array, got none")
        self.arrays: tuple[np.ndarray, ...] = tuple(_as_array(a) for a in arrays)
        for position, array in enumerate(self.arrays):
            if array.ndim == 0:
                raise ValueError(
                    f"TensorDataset: array {position} is a scalar; every array needs a "
                    "first dimension that indexes the samples"
                )
        n = len(self.arrays[0])
        for position, array in enumerate(self.arrays[1:], start=1):
            if len(array) != n:
                raise ValueError(
                    f"TensorDataset: array 0 has {n} samples but array {position} has "
                    f"{len(array)}; all arrays must have the same first dimension"
                )

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> tuple[np.ndarray, ...]:
        return tuple(array[index] for array in self.arrays)


class Subset(Dataset):
    """The samples of ``dataset`` at the given ``indices`` (what ``random_split`` returns)."""

    def __init__(self, dataset: Dataset, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= n):
            raise ValueError(
                f"Subset indices must lie in [0, {n}) for a dataset of {n} samples, got "
                f"values from {self.indices.min()} to {self.indices.max()}"
            )

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: Any) -> Any:
        return self.dataset[self.indices[index]]


def _array_source(dataset: Dataset) -> tuple[tuple[np.ndarray, ...], np.ndarray | None] | None:
    """For a TensorDataset, or Subsets of one, return its arrays and the index map.

    The DataLoader uses this to cut whole batches out of the arrays. Returns None for any
    other dataset, including subclasses that override ``__getitem__`` (they may transform
    samples, e.g. augmentation, so they must be asked sample by sample).
    """
    index_map: np.ndarray | None = None
    while isinstance(dataset, Subset) and type(dataset).__getitem__ is Subset.__getitem__:
        # Subset(Subset(T, outer), inner)[k] = T[outer[inner[k]]]: compose the maps.
        index_map = dataset.indices if index_map is None else dataset.indices[index_map]
        dataset = dataset.dataset
    if isinstance(dataset, TensorDataset) and (
        type(dataset).__getitem__ is TensorDataset.__getitem__
    ):
        return dataset.arrays, index_map
    return None


def _collate(samples: list[Any]) -> Any:
    """Stack a list of samples into a batch: a tuple of arrays, or one array."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        # strict: every sample must have the same number of fields.
        fields_by_position = zip(*samples, strict=True)
        return tuple(np.stack([_as_array(f) for f in fields]) for fields in fields_by_position)
    return np.stack([_as_array(sample) for sample in samples])


# --------------------------------------------------------------------------- loader
class DataLoader:
    """Iterate over a dataset in mini-batches of Tensors.

    Args:
        dataset: a ``Dataset`` (anything with ``__len__`` and ``__getitem__``).
        batch_size: samples per batch.
        shuffle: visit the samples in a new random order every epoch (without
            replacement: each sample exactly once per epoch).
        drop_last: drop the final batch when it is smaller than ``batch_size``
            (by default it is kept).
        seed: seeds the loader's own random generator, created once. Epoch 2 is
            shuffled differently from epoch 1, yet the whole sequence of epochs is the
            same every time the program runs with the same seed.

    Each batch is a tuple with one Tensor per array of the dataset, e.g.
    ``(inputs, targets)`` for ``TensorDataset(X, y)``. A dataset whose samples are single
    arrays (not tuples) gives a single Tensor per batch. ``len(loader)`` is the number
    of batches per epoch.

    Resuming a run exactly: ``state = loader.state_dict()`` captures the random
    generator and, when called in the middle of an epoch, how many batches of that epoch
    have been handed out. After ``loader.load_state_dict(state)`` (on this or a freshly
    built loader with the same dataset and settings) the next ``for`` loop continues
    with exactly the batches that would have come next. The state is a plain dict of
    ints and strings, so it can be stored alongside the model's weights.
    """

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None) -> None:
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"DataLoader needs a dataset with __len__ and __getitem__, got "
                f"{type(dataset).__name__}; wrap arrays with TensorDataset(X, y)"
            )
        self.dataset = dataset
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = _check_seed(seed)
        self._rng = np.random.default_rng(self.seed)
        # For state_dict(): the generator state from just before the current epoch drew
        # its order, and how many of that epoch's batches have been handed out.
        self._epoch_start_state: dict[str, Any] | None = None
        self._batches_done = 0
        # Set by load_state_dict() to resume in the middle of an epoch.
        self._resume_batches = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        # Imported here, not at module level, so that datasets work without the autograd
        # core (and importing chainrule.data stays cheap).
        from chainrule.tensor import as_tensor

        n = len(self.dataset)
        start_state = self._rng.bit_generator.state
        order = self._rng.permutation(n) if self.shuffle else np.arange(n)
        skip, self._resume_batches = self._resume_batches, 0
        self._epoch_start_state, self._batches_done = start_state, skip

        fetch = self._batch_fetcher()
        for batch_number in range(skip, len(self)):
            indices = order[batch_number * self.batch_size:(batch_number + 1) * self.batch_size]
            batch = fetch(indices)
            # Counted before the yield: once the caller holds batch k, k+1 are done.
            self._batches_done = batch_number + 1
            if isinstance(batch, tuple):
                yield tuple(as_tensor(array) for array in batch)
            else:
                yield as_tensor(batch)
        self._epoch_start_state, self._batches_done = None, 0

    def _batch_fetcher(self) -> Any:
        """Return a function mapping an index array to one batch of NumPy arrays."""
        source = _array_source(self.dataset)
        if source is None:
            dataset = self.dataset
            return lambda indices: _collate([dataset[i] for i in indices.tolist()])
        arrays, index_map = source
        if index_map is not None:
            return lambda indices: tuple(array[index_map[indices]] for array in arrays)
        return lambda indices: tuple(array[indices] for array in arrays)

    # ----------------------------------------------------------------- resuming
    def state_dict(self) -> dict[str, Any]:
        """The loader's position: random generator state and batches done this epoch.

        Between epochs ``batches_done`` is 0 and ``rng_state`` is the generator's current
        state. Inside an epoch ``rng_state`` is the state from before that epoch drew its
        order, so that a restored loader draws the same order and skips the batches
        already handed out.
        """
        if self._epoch_start_state is not None:
            return {"rng_state": copy.deepcopy(self._epoch_start_state),
                    "batches_done": self._batches_done}
        if self._resume_batches:  # loaded but not iterated yet: hand the same state back
            return {"rng_state": self._rng.bit_generator.state,
                    "batches_done": self._resume_batches}
        return {"rng_state": self._rng.bit_generator.state, "batches_done": 0}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by ``state_dict``; the next epoch continues from it."""
        missing = {"rng_state", "batches_done"} - set(state)
        if missing:
            raise ValueError(
                f"DataLoader state is missing {sorted(missing)}; expected the dict "
                "returned by DataLoader.state_dict()"
            )
        batches_done = state["batches_done"]
        if (isinstance(batches_done, bool) or not isinstance(batches_done, numbers.Integral)
                or not 0 <= batches_done <= len(self)):
            raise ValueError(
                f"batches_done must be an integer from 0 to {len(self)} (the batches per "
                f"epoch), got {batches_done!r}"
            )
        self._rng.bit_generator.state = state["rng_state"]
        self._resume_batches = int(batches_done)
        self._epoch_start_state, self._batches_done = None, 0

    def __repr__(self) -> str:
        return (f"DataLoader(samples={len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})")


# --------------------------------------------------------------------------- BPTT
class BPTTLoader:
    """Truncated back-propagation through time: one long token stream as consecutive
    windows of ``batch_size`` parallel rows, for recurrent language models.

    The stream is cut into ``batch_size`` equal rows, side by side (the layout of
    Zaremba et al. 2014 and of the book "Deep Learning from Scratch 2"): with
    ``L = len(ids) // batch_size``, row ``b`` is ``ids[b*L:(b+1)*L]``, so it starts at
    offset ``b*L``; the last ``len(ids) % batch_size`` tokens are left out. Window ``k``
    holds the next ``bptt`` steps of every row, and its targets are its inputs shifted
    by one token::

        inputs[b, t]  = ids[b*L + k*bptt + t]
        targets[b, t] = ids[b*L + k*bptt + t + 1]

    So row ``b`` of window ``k + 1`` continues exactly where row ``b`` of window ``k``
    ended, and a model may carry its hidden state from one window to the next: it then
    sees each row as one long text, while the gradient flows back only ``bptt`` steps.
    **The carried state must be detached between windows** (``h = h.detach()``):
    otherwise every backward pass runs back through all earlier windows, and the graph,
    with its memory, grows for the whole epoch. Start each epoch from a fresh (zero)
    state: the rows start over at their beginnings.

    Args:
        ids: the token ids, a 1-D integer array (or Tensor or list), e.g. from
            ``chainrule.datasets.ptb``.
        batch_size: the number of parallel rows (``N``).
        bptt: time steps per window (``T``), how far back the gradient flows.
        drop_last: drop the final window when it is shorter than ``bptt`` (by default
            it is kept, with ``(L - 1) % bptt`` steps).
        batch_first: windows of shape (N, T); otherwise time-major (T, N).

    Each window is ``(inputs, targets)``, two int64 Tensors; ``len(loader)`` is the number
    of windows per epoch. Every epoch yields the same windows in the same order.

    Typical use::

        loader = BPTTLoader(train_ids, batch_size=20, bptt=35)
        for epoch in range(epochs):
            state = None                               # each row starts afresh
            for inputs, targets in loader:             # (20, 35) each
                logits, state = model(inputs, state)
                state = tuple(s.detach() for s in state)   # carry values, not graphs
                loss = F.cross_entropy(logits.reshape(-1, vocab_size),
                                       targets.reshape(-1))
                ...

    Resuming works as for ``DataLoader``: ``state_dict()`` records how many windows of
    the current epoch have been handed out, and after ``load_state_dict`` the next
    ``for`` loop continues with the window that would have come next. (The model's
    carried hidden state is not the loader's: unless saved too, it restarts at zero.)
    """

    def __init__(self, ids: Any, batch_size: int, bptt: int, drop_last: bool = False,
                 batch_first: bool = True) -> None:
        ids = _as_array(ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise ValueError(
                f"BPTTLoader needs a 1-D integer array of token ids, got shape {ids.shape} "
                f"of {ids.dtype}"
            )
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.bptt = _check_positive_int("bptt", bptt)
        self.drop_last = bool(drop_last)
        self.batch_first = bool(batch_first)
        self.num_tokens = len(ids)
        row_length = len(ids) // self.batch_size
        if row_length < 2:
            raise ValueError(
                f"{len(ids)} tokens in {self.batch_size} rows leave {row_length} token(s) "
                "a row, but a row needs at least 2 (an input and its target); use a "
                "smaller batch_size or a longer text"
            )
        # (N, L) rows, copied as int64: the windows are cut out of this one array.
        rows = ids[:self.batch_size * row_length].reshape(self.batch_size, row_length)
        rows = rows.astype(np.int64)
        # Time-major windows are slices of the transposed rows: store them that way.
        self._rows = rows if self.batch_first else np.ascontiguousarray(rows.T)
        self._steps = row_length - 1  # input positions a row has (its last is only a target)
        # How many windows of the epoch under way were handed out (None: no epoch under
        # way), and how many to skip when the next epoch starts (set by load_state_dict).
        self._batches_done: int | None = None
        self._resume_batches = 0

    def __len__(self) -> int:
        if self.drop_last:
            return self._steps // self.bptt
        return math.ceil(self._steps / self.bptt)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        from chainrule.tensor import from_numpy  # here, as in DataLoader.__iter__

        skip, self._resume_batches = self._resume_batches, 0
        self._batches_done = skip
        for window in range(skip, len(self)):
            start = window * self.bptt
            stop = min(start + self.bptt, self._steps)
            if self.batch_first:
                inputs = self._rows[:, start:stop]
                targets = self._rows[:, start + 1:stop + 1]
            else:
                inputs = self._rows[start:stop]
                targets = self._rows[start + 1:stop + 1]
            self._batches_done = window + 1  # counted before the yield, as in DataLoader
            # Copies: a caller changing a window in place must not change later epochs.
            yield from_numpy(inputs.copy()), from_numpy(targets.copy())
        self._batches_done = None

    def state_dict(self) -> dict[str, Any]:
        """``{"batches_done": k}``: windows of the current epoch handed out (0 between
        epochs)."""
        if self._batches_done is not None:
            return {"batches_done": self._batches_done}
        return {"batches_done": self._resume_batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by ``state_dict``; the next epoch continues from it."""
        if "batches_done" not in state:
            raise ValueError("BPTTLoader state is missing 'batches_done'; expected the dict "
                             "returned by BPTTLoader.state_dict()")
        batches_done = state["batches_done"]
        if (isinstance(batches_done, bool) or not isinstance(batches_done, numbers.Integral)
                or not 0 <= batches_done <= len(self)):
            raise ValueError(
                f"batches_done must be an integer from 0 to {len(self)} (the windows per "
                f"epoch), got {batches_done!r}"
            )
        self._resume_batches = int(batches_done)
        self._batches_done = None

    def __repr__(self) -> str:
        return (f"BPTTLoader(tokens={self.num_tokens}, batch_size={self.batch_size}, "
                f"bptt={self.bptt}, drop_last={self.drop_last}, "
                f"batch_first={self.batch_first})")


# --------------------------------------------------------------------------- splits
def random_split(dataset: Dataset, lengths: Sequence[int | float],
                 seed: int | None = None) -> list[Subset]:
    """Split ``dataset`` at random into non-overlapping ``Subset``s.

    ``lengths`` are either sample counts summing to ``len(dataset)``, e.g. ``[800, 200]``,
    or fractions summing to 1, e.g. ``[0.8, 0.2]``. Fractions are turned into counts by
    rounding down and handing the leftover samples out one each, first split first.
    """
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split needs at least one length, got an empty list")
    is_count = [isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in lengths]
    if all(is_count):
        counts = [int(x) for x in lengths]
        if any(c < 0 for c in counts) or sum(counts) != n:
            raise ValueError(
                f"random_split lengths {counts} must be non-negative and sum to the dataset "
                f"size {n} (they sum to {sum(counts)}); or give fractions summing to 1"
            )
    elif all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in lengths):
        fractions = [float(x) for x in lengths]
        if any(not 0.0 <= f <= 1.0 for f in fractions) or not math.isclose(
                sum(fractions), 1.0, abs_tol=1e-6):
            raise ValueError(
                f"random_split fractions {fractions} must each be in [0, 1] and sum to 1 "
                f"(they sum to {sum(fractions):g}); or give counts summing to {n}"
            )
        counts = [math.floor(n * f) for f in fractions]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        raise ValueError(f"random_split lengths must be all ints or all floats, got {lengths}")

    order = np.random.default_rng(_check_seed(seed)).permutation(n)
    bounds = np.cumsum([0, *counts])
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _test_count(test_size: float | int, n: int) -> int:
    """Turn ``test_size`` (a fraction in (0, 1) or a count) into a number of samples."""
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        if not 1 <= test_size <= n - 1:
            raise ValueError(
                f"test_size={test_size} as a count must be from 1 to {n - 1} for {n} samples"
            )
        return int(test_size)
    if isinstance(test_size, numbers.Real) and not isinstance(test_size, bool):
        count = round(float(test_size) * n)
        if not 0.0 < test_size < 1.0 or not 1 <= count <= n - 1:
            raise ValueError(
                f"test_size={test_size} must be a fraction in (0, 1) leaving at least one "
                f"sample on each side (or a count from 1 to {n - 1}) for {n} samples"
            )
        return count
    raise ValueError(f"test_size must be a fraction or a count, got {test_size!r}")


def _stratified_test_indices(labels: np.ndarray, n_test: int,
                             rng: np.random.Generator) -> np.ndarray:
    """Pick ``n_test`` indices so that every class keeps its share in the test set."""
    _, class_of, counts = np.unique(labels, return_inverse=True, return_counts=True)
    ideal = counts * n_test / len(labels)
    per_class = np.floor(ideal).astype(np.int64)
    # Largest-remainder rounding: the classes closest to earning one more sample get
    # it, so the total is exactly n_test. A stable sort keeps ties deterministic.
    leftover = n_test - per_class.sum()
    per_class[np.argsort(-(ideal - per_class), kind="stable")[:leftover]] += 1
    chosen = [rng.permutation(np.flatnonzero(class_of == c))[:k]
              for c, k in enumerate(per_class)]
    return np.concatenate(chosen)


def train_test_split(X: Any, y: Any, test_size: float | int = 0.2, seed: int | None = None,
                     stratify: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split ``(X, y)`` into ``X_train, X_test, y_train, y_test`` (NumPy arrays).

    Args:
        X, y: arrays (or Tensors) with the same first dimension.
        test_size: fraction of the samples for the test set, e.g. 0.2, or a count.
        seed: makes the split reproducible.
        stratify: keep each class's proportion the same in both parts (``y`` holds
            class labels; one-hot rows are read with ``argmax``).
    """
    X, y = _as_array(X), _as_array(y)
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
        raise ValueError(
            f"train_test_split: X and y need the same first dimension, got shapes "
            f"{X.shape} and {y.shape}"
        )
    n = len(X)
    n_test = _test_count(test_size, n)
    rng = np.random.default_rng(_check_seed(seed))
    if stratify:
        labels = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(n, -1)[:, 0]
        test_idx = _stratified_test_indices(labels, n_test, rng)
        is_test = np.zeros(n, dtype=bool)
        is_test[test_idx] = True
        # Shuffle both parts so they are not ordered class by class.
        test_idx = rng.permutation(test_idx)
        train_idx = rng.permutation(np.flatnonzero(~is_test))
    else:
        order = rng.permutation(n)
        test_idx, train_idx = order[:n_test], order[n_test:]
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]
