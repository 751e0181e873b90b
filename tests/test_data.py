"""Tests for chainrule.data: datasets, DataLoader, random_split, train_test_split."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.data import (
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    random_split,
    train_test_split,
)
from chainrule.tensor import Tensor


def make_data(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Inputs whose first column is the sample's index, so batches can be traced back."""
    X = np.stack([np.arange(n), -np.arange(n)], axis=1).astype(np.float32)
    y = np.arange(n, dtype=np.int64)
    return X, y


def epoch_indices(loader: DataLoader) -> list[int]:
    """Sample indices in the order one epoch delivers them (targets are the indices)."""
    return [int(i) for _, targets in loader for i in targets.data]


class SquaresDataset(Dataset):
    """A generic (non-TensorDataset) dataset, to exercise the np.stack fallback."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return np.array([index, index**2], dtype=np.float32), index


# --------------------------------------------------------------------------- datasets
def test_dataset_is_abstract() -> None:
    with pytest.raises(TypeError):
        Dataset()  # type: ignore[abstract]


def test_tensor_dataset_indexing_and_length() -> None:
    X, y = make_data(5)
    ds = TensorDataset(X, y)
    assert len(ds) == 5
    x3, y3 = ds[3]
    np.testing.assert_array_equal(x3, X[3])
    assert y3 == 3


def test_tensor_dataset_accepts_tensors() -> None:
    X, y = make_data(4)
    ds = TensorDataset(Tensor(X), Tensor(y))
    assert isinstance(ds.arrays[0], np.ndarray)
    np.testing.assert_array_equal(ds.arrays[1], y)


def test_tensor_dataset_length_mismatch_names_both_lengths() -> None:
    with pytest.raises(ValueError, match=r"150.*100"):
        TensorDataset(np.zeros((150, 2)), np.zeros(100))


def test_tensor_dataset_needs_an_array() -> None:
    with pytest.raises(ValueError):
        TensorDataset()


def test_subset() -> None:
    X, y = make_data(10)
    sub = Subset(TensorDataset(X, y), [7, 2])
    assert len(sub) == 2
    assert sub[0][1] == 7
    with pytest.raises(ValueError, match="10"):
        Subset(TensorDataset(X, y), [10])


# --------------------------------------------------------------------------- loader
def test_batches_are_tensors_with_dtypes_kept() -> None:
    X, y = make_data(10)
    inputs, targets = next(iter(DataLoader(TensorDataset(X, y), batch_size=4)))
    assert isinstance(inputs, Tensor) and isinstance(targets, Tensor)
    assert inputs.shape == (4, 2) and inputs.dtype == np.float32
    assert targets.shape == (4,) and targets.dtype == np.int64


def test_sequential_order_and_last_partial_batch() -> None:
    X, y = make_data(10)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    sizes = [len(t.data) for _, t in loader]
    assert sizes == [4, 4, 2]
    assert len(loader) == 3
    assert epoch_indices(loader) == list(range(10))


def test_drop_last() -> None:
    X, y = make_data(10)
    loader = DataLoader(TensorDataset(X, y), batch_size=4, drop_last=True)
    assert [len(t.data) for _, t in loader] == [4, 4]
    assert len(loader) == 2
    # When the size divides evenly nothing is dropped.
    assert len(DataLoader(TensorDataset(X, y), batch_size=5, drop_last=True)) == 2


def test_shuffle_visits_every_sample_once_and_reshuffles() -> None:
    X, y = make_data(50)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=1)
    first, second = epoch_indices(loader), epoch_indices(loader)
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert first != second
    assert first != list(range(50))


def test_same_seed_same_sequence_of_epochs() -> None:
    X, y = make_data(30)
    a = DataLoader(TensorDataset(X, y), batch_size=7, shuffle=True, seed=123)
    b = DataLoader(TensorDataset(X, y), batch_size=7, shuffle=True, seed=123)
    assert [epoch_indices(a) for _ in range(3)] == [epoch_indices(b) for _ in range(3)]
    c = DataLoader(TensorDataset(X, y), batch_size=7, shuffle=True, seed=124)
    assert epoch_indices(c) != epoch_indices(DataLoader(
        TensorDataset(X, y), batch_size=7, shuffle=True, seed=123))


def test_inputs_and_targets_stay_paired_when_shuffled() -> None:
    X, y = make_data(20)
    for inputs, targets in DataLoader(TensorDataset(X, y), batch_size=6, shuffle=True, seed=0):
        np.testing.assert_array_equal(inputs.data[:, 0], targets.data)


def test_state_dict_between_epochs_resumes_the_same_order() -> None:
    X, y = make_data(40)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=5)
    epoch_indices(loader)
    state = loader.state_dict()
    expected = [epoch_indices(loader) for _ in range(2)]

    fresh = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=999)
    fresh.load_state_dict(state)
    assert [epoch_indices(fresh) for _ in range(2)] == expected


def test_state_dict_mid_epoch_resumes_at_the_next_batch() -> None:
    X, y = make_data(40)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=5)
    epoch_indices(loader)
    seen, state = [], None
    for batch_number, (_, targets) in enumerate(loader):
        seen.extend(int(i) for i in targets.data)
        if batch_number == 1:
            state = loader.state_dict()  # checkpoint after two batches
            break
    assert state is not None and state["batches_done"] == 2
    # What an uninterrupted run would have produced for the rest of this epoch and the next.
    reference = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=5)
    epoch_indices(reference)
    full_epoch, next_epoch = epoch_indices(reference), epoch_indices(reference)

    resumed = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
    resumed.load_state_dict(state)
    assert resumed.state_dict()["batches_done"] == 2
    assert seen + epoch_indices(resumed) == full_epoch
    assert epoch_indices(resumed) == next_epoch


def test_load_state_dict_rejects_bad_state() -> None:
    loader = DataLoader(TensorDataset(*make_data(10)), batch_size=4)
    with pytest.raises(ValueError, match="rng_state"):
        loader.load_state_dict({"batches_done": 0})
    state = loader.state_dict()
    with pytest.raises(ValueError, match=r"0 to 3.*7"):
        loader.load_state_dict({**state, "batches_done": 7})


def test_subset_of_tensor_dataset_uses_the_subset_samples() -> None:
    X, y = make_data(20)
    train, _ = random_split(TensorDataset(X, y), [15, 5], seed=0)
    nested = Subset(train, [0, 1, 2])
    expected = [int(train.indices[i]) for i in range(3)]
    assert epoch_indices(DataLoader(nested, batch_size=2)) == expected
    assert sorted(epoch_indices(DataLoader(train, batch_size=4, shuffle=True, seed=0))) == sorted(
        train.indices.tolist())


def test_generic_dataset_is_collated_with_stack() -> None:
    loader = DataLoader(SquaresDataset(5), batch_size=2)
    batches = list(loader)
    assert len(batches) == 3
    inputs, targets = batches[0]
    np.testing.assert_array_equal(inputs.data, [[0, 0], [1, 1]])
    np.testing.assert_array_equal(targets.data, [0, 1])
    assert targets.data.dtype == np.int64


def test_single_array_samples_give_single_tensors() -> None:
    class Plain(Dataset):
        def __len__(self) -> int:
            return 3

        def __getitem__(self, index: int) -> np.ndarray:
            return np.full(2, index, dtype=np.float32)

    batch = next(iter(DataLoader(Plain(), batch_size=3)))
    assert isinstance(batch, Tensor) and batch.shape == (3, 2)


def test_tensor_dataset_subclass_with_getitem_goes_through_getitem() -> None:
    class Doubled(TensorDataset):
        def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
            return tuple(2 * a[index] for a in self.arrays)

    X, y = make_data(4)
    _, targets = next(iter(DataLoader(Doubled(X, y), batch_size=4)))
    np.testing.assert_array_equal(targets.data, [0, 2, 4, 6])


def test_tensor_dataset_batches_never_go_sample_by_sample(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = TensorDataset.__getitem__

    def counting_getitem(self: TensorDataset, index: object) -> tuple[np.ndarray, ...]:
        calls.append(index)
        return original(self, index)

    monkeypatch.setattr(TensorDataset, "__getitem__", counting_getitem)
    X, y = make_data(100)
    train, _ = random_split(TensorDataset(X, y), [0.5, 0.5], seed=0)
    for dataset in (TensorDataset(X, y), train):
        assert len(list(DataLoader(dataset, batch_size=16, shuffle=True, seed=0))) > 0
    assert calls == []


def test_empty_dataset() -> None:
    loader = DataLoader(TensorDataset(np.zeros((0, 2)), np.zeros(0)), batch_size=4)
    assert len(loader) == 0 and list(loader) == []


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8", None])
def test_bad_batch_size(bad: object) -> None:
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer, got"):
        DataLoader(TensorDataset(*make_data(4)), batch_size=bad)  # type: ignore[arg-type]


def test_bad_seed_and_dataset() -> None:
    with pytest.raises(ValueError, match=r"seed.*-3"):
        DataLoader(TensorDataset(*make_data(4)), seed=-3)
    with pytest.raises(TypeError, match="TensorDataset"):
        DataLoader(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- splits
def test_random_split_counts() -> None:
    X, y = make_data(10)
    a, b = random_split(TensorDataset(X, y), [7, 3], seed=0)
    assert (len(a), len(b)) == (7, 3)
    together = np.concatenate([a.indices, b.indices])
    assert sorted(together.tolist()) == list(range(10))
    a2, _ = random_split(TensorDataset(X, y), [7, 3], seed=0)
    np.testing.assert_array_equal(a.indices, a2.indices)


def test_random_split_fractions_distribute_the_remainder() -> None:
    parts = random_split(TensorDataset(*make_data(10)), [0.5, 0.25, 0.25], seed=0)
    assert [len(p) for p in parts] == [6, 2, 2]  # floor gives 5, 2, 2; one left over
    assert sum(len(p) for p in random_split(TensorDataset(*make_data(7)), [0.8, 0.2])) == 7


@pytest.mark.parametrize("lengths", [[5, 4], [0.5, 0.6], [-1, 11], [5, 0.5], []])
def test_random_split_bad_lengths(lengths: list) -> None:
    with pytest.raises(ValueError):
        random_split(TensorDataset(*make_data(10)), lengths)


def test_train_test_split_shapes_and_pairing() -> None:
    X, y = make_data(50)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
    assert X_train.shape == (40, 2) and X_test.shape == (10, 2)
    assert y_train.shape == (40,) and y_test.shape == (10,)
    np.testing.assert_array_equal(X_train[:, 0], y_train)
    assert sorted(np.concatenate([y_train, y_test]).tolist()) == list(range(50))
    again = train_test_split(X, y, test_size=0.2, seed=0)
    np.testing.assert_array_equal(again[3], y_test)
    assert len(train_test_split(X, y, test_size=7, seed=0)[1]) == 7


def test_train_test_split_stratified_keeps_class_proportions() -> None:
    y = np.repeat(np.arange(3), [50, 30, 20])
    X = np.arange(100, dtype=np.float32).reshape(100, 1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=3,
                                                        stratify=True)
    np.testing.assert_array_equal(np.bincount(y_test), [10, 6, 4])
    np.testing.assert_array_equal(np.bincount(y_train), [40, 24, 16])
    np.testing.assert_array_equal(y[X_test[:, 0].astype(int)], y_test)
    assert len(set(X_train[:, 0]) & set(X_test[:, 0])) == 0
    # One-hot labels are stratified by their argmax.
    one_hot = np.eye(3, dtype=np.float32)[y]
    *_, oh_test = train_test_split(X, one_hot, test_size=0.2, seed=3, stratify=True)
    np.testing.assert_array_equal(oh_test.sum(axis=0), [10, 6, 4])


@pytest.mark.parametrize("test_size", [0, 1.0, 1.5, -0.1, 0.001, 50, "half"])
def test_train_test_split_bad_test_size(test_size: object) -> None:
    X, y = make_data(50)
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(X, y, test_size=test_size)  # type: ignore[arg-type]


def test_train_test_split_length_mismatch() -> None:
    with pytest.raises(ValueError, match=r"\(5, 2\).*\(4,\)"):
        train_test_split(np.zeros((5, 2)), np.zeros(4))
