"""Tests for chainrule.data.BPTTLoader: a token stream as consecutive windows of rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chainrule.data import BPTTLoader
from chainrule.serialization import load, save
from chainrule.tensor import Tensor

# 103 distinct ids in a shuffled order, so that every position of the stream is
# recognisable and "the next token" is never simply "id + 1".
IDS = np.random.default_rng(0).permutation(103) + 1000
N, T = 4, 5
L = len(IDS) // N  # 25 tokens a row; the last 3 tokens of the stream are left out


def windows(loader: BPTTLoader) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(inputs.data, targets.data) for inputs, targets in loader]


def zaremba_windows(ids: np.ndarray, batch_size: int, num_steps: int
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The reference: ``ptb_iterator`` of Zaremba et al.'s TensorFlow code (which drops
    the last short window)."""
    batch_len = len(ids) // batch_size
    data = np.zeros([batch_size, batch_len], dtype=np.int64)
    for i in range(batch_size):
        data[i] = ids[batch_len * i:batch_len * (i + 1)]
    epoch_size = (batch_len - 1) // num_steps
    return [(data[:, i * num_steps:(i + 1) * num_steps],
             data[:, i * num_steps + 1:(i + 1) * num_steps + 1]) for i in range(epoch_size)]


def test_windows_match_the_zaremba_layout() -> None:
    loader = BPTTLoader(IDS, batch_size=N, bptt=T, drop_last=True)
    got, expected = windows(loader), zaremba_windows(IDS, N, T)
    assert len(loader) == len(got) == len(expected) == (L - 1) // T == 4
    for (inputs, targets), (x, y) in zip(got, expected, strict=True):
        assert inputs.shape == targets.shape == (N, T)
        assert inputs.dtype == targets.dtype == np.int64
        np.testing.assert_array_equal(inputs, x)
        np.testing.assert_array_equal(targets, y)


def test_rows_continue_from_window_to_window_and_cover_the_stream() -> None:
    loader = BPTTLoader(IDS, batch_size=N, bptt=T)  # keeps the short last window
    got = windows(loader)
    assert len(loader) == len(got) == 5
    assert [inputs.shape[1] for inputs, _ in got] == [5, 5, 5, 5, 4]  # (L - 1) % T == 4
    for inputs, targets in got:
        # Targets are the inputs shifted by one token along time.
        np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    for k in range(len(got) - 1):
        # Row b of window k+1 starts with the token that row b of window k predicted last.
        np.testing.assert_array_equal(got[k + 1][0][:, 0], got[k][1][:, -1])
    # Laid end to end, the windows are the rows: row b starts at offset b*L, and every
    # token of the first N*L is an input, a target or both.
    all_inputs = np.concatenate([inputs for inputs, _ in got], axis=1)
    all_targets = np.concatenate([targets for _, targets in got], axis=1)
    rows = IDS[:N * L].reshape(N, L)
    np.testing.assert_array_equal(all_inputs, rows[:, :-1])
    np.testing.assert_array_equal(all_targets, rows[:, 1:])
    for b in range(N):
        assert all_inputs[b, 0] == IDS[b * L]


def test_carried_state_sees_each_row_as_one_text() -> None:
    """A toy 'model' whose state is the running sum of its inputs, carried between
    windows: at the end of the epoch it holds each whole row's sum."""
    state = np.zeros(N, dtype=np.int64)
    for inputs, _ in BPTTLoader(IDS, batch_size=N, bptt=3):
        state = state + inputs.data.sum(axis=1)
    np.testing.assert_array_equal(state, IDS[:N * L].reshape(N, L)[:, :-1].sum(axis=1))


def test_time_major_windows_are_the_transposes() -> None:
    batch_first = windows(BPTTLoader(IDS, batch_size=N, bptt=T))
    time_major = windows(BPTTLoader(IDS, batch_size=N, bptt=T, batch_first=False))
    assert len(time_major) == len(batch_first)
    for (x, y), (xt, yt) in zip(batch_first, time_major, strict=True):
        assert xt.shape == (x.shape[1], N)
        np.testing.assert_array_equal(xt, x.T)
        np.testing.assert_array_equal(yt, y.T)


def test_inputs_of_any_integer_kind_give_int64_tensors_and_epochs_repeat() -> None:
    loader = BPTTLoader(Tensor(IDS.astype(np.int32)), batch_size=N, bptt=T)
    inputs, targets = next(iter(loader))
    assert isinstance(inputs, Tensor) and inputs.dtype == np.int64
    assert not inputs.requires_grad
    inputs.data[:] = -1  # a window is a copy: changing it leaves later epochs alone
    first, second = windows(loader), windows(loader)
    for (x1, y1), (x2, y2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert (first[0][0] >= 1000).all()
    assert len(BPTTLoader(list(range(10)), batch_size=2, bptt=4)) == 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"1-D integer array.*\(2, 3\)"):
        BPTTLoader(np.zeros((2, 3), dtype=np.int64), 1, 1)
    with pytest.raises(ValueError, match="float"):
        BPTTLoader(np.zeros(10), 1, 1)
    with pytest.raises(ValueError, match="bptt must be a positive integer"):
        BPTTLoader(IDS, 4, 0)
    with pytest.raises(ValueError, match=r"103 tokens in 60 rows leave 1 token.*smaller"):
        BPTTLoader(IDS, batch_size=60, bptt=5)


# --------------------------------------------------------------------------- resuming
def test_resume_in_the_middle_of_an_epoch() -> None:
    full = windows(BPTTLoader(IDS, batch_size=N, bptt=T))
    loader = BPTTLoader(IDS, batch_size=N, bptt=T)
    assert loader.state_dict() == {"batches_done": 0}
    iterator = iter(loader)
    next(iterator), next(iterator)
    state = json.loads(json.dumps(loader.state_dict()))  # plain JSON-able data
    assert state == {"batches_done": 2}

    fresh = BPTTLoader(IDS, batch_size=N, bptt=T)
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state  # loaded, not iterated yet: the same position
    rest = windows(fresh)
    assert len(rest) == len(full) - 2
    for (x, y), (x_full, y_full) in zip(rest, full[2:], strict=True):
        np.testing.assert_array_equal(x, x_full)
        np.testing.assert_array_equal(y, y_full)
    # The epoch after the resumed one is whole again.
    assert fresh.state_dict() == {"batches_done": 0}
    assert len(windows(fresh)) == len(full)


def test_state_survives_a_checkpoint_file(tmp_path) -> None:
    loader = BPTTLoader(IDS, batch_size=N, bptt=T)
    iterator = iter(loader)
    for _ in range(3):
        next(iterator)
    save({"loaders": [loader.state_dict()]}, tmp_path / "checkpoint.npz")
    fresh = BPTTLoader(IDS, batch_size=N, bptt=T)
    fresh.load_state_dict(load(tmp_path / "checkpoint.npz")["loaders"][0])
    np.testing.assert_array_equal(next(iter(fresh))[0].data,
                                  windows(BPTTLoader(IDS, N, T))[3][0])


def test_bad_states_are_rejected() -> None:
    loader = BPTTLoader(IDS, batch_size=N, bptt=T)
    with pytest.raises(ValueError, match="missing 'batches_done'"):
        loader.load_state_dict({"rng_state": {}})
    with pytest.raises(ValueError, match=r"from 0 to 5.*got 6"):
        loader.load_state_dict({"batches_done": 6})
    with pytest.raises(ValueError, match="got True"):
        loader.load_state_dict({"batches_done": True})
