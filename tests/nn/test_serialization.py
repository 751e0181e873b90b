"""save/load: round trips, nesting, atomic writes, clear errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from chainrule import nn
from chainrule.serialization import load, save


def test_model_round_trip(tmp_path):
    model = nn.MLP([3, 5, 2], activations="relu", batch_norm=True, seed=0)
    model(np.random.default_rng(0).standard_normal((4, 3)))  # move the running stats
    path = tmp_path / "model.npz"
    save(model.state_dict(), path)
    other = nn.MLP([3, 5, 2], activations="relu", batch_norm=True, seed=1)
    other.load_state_dict(load(path))
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[key], value)
        counter = key.endswith("num_batches_tracked")  # BatchNorm's int64 batch count
        assert other.state_dict()[key].dtype == (np.int64 if counter else np.float32)
    save(model, tmp_path / "direct.npz")  # a module is saved as its state dict
    assert set(load(tmp_path / "direct.npz")) == set(model.state_dict())


def test_nested_dicts_numbers_and_strings(tmp_path):
    model = nn.Linear(2, 3, seed=0)
    path = tmp_path / "checkpoint.npz"
    save({"model": model.state_dict(), "epoch": 7, "lr": 0.1, "name": "run-1",
          "done": True, "file": np.arange(3)}, path)
    state = load(path)
    assert state["epoch"] == 7 and state["lr"] == 0.1 and state["name"] == "run-1"
    assert state["done"] is True
    np.testing.assert_array_equal(state["file"], np.arange(3))
    np.testing.assert_array_equal(state["model"]["weight"], model.weight.data)
    nn.Linear(2, 3).load_state_dict(load(path, prefix="model"))
    with pytest.raises(KeyError, match="no entry 'optimizer'"):
        load(path, prefix="optimizer")


def test_lists_tuples_int_keys_and_none_round_trip(tmp_path):
    """An optimiser's state dict has a list of groups and int-keyed state."""
    state = {"param_groups": [{"lr": 0.1, "params": [0, 1], "betas": (0.9, 0.999)}],
             "state": {0: {"step": 3, "exp_avg": np.ones((2, 2), np.float32)}, 1: {}},
             "note": None}
    save(state, tmp_path / "opt.npz")
    loaded = load(tmp_path / "opt.npz")
    assert loaded["param_groups"] == [{"lr": 0.1, "params": [0, 1], "betas": (0.9, 0.999)}]
    assert loaded["state"][0]["step"] == 3 and loaded["state"][1] == {}
    assert loaded["state"][0]["exp_avg"].dtype == np.float32
    assert loaded["note"] is None
    with np.load(tmp_path / "opt.npz") as raw:  # arrays stay readable with plain NumPy
        assert "state/0/exp_avg" in raw.files


def test_unsavable_values_are_named(tmp_path):
    with pytest.raises(TypeError, match="'bad'.*without pickle"):
        save({"bad": object()}, tmp_path / "x.npz")
    assert not os.listdir(tmp_path)


def test_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    save({"w": np.ones(3)}, path)
    calls = []
    real_write = np.lib.format.write_array

    def failing_write(member, array, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second array: part of the new file is written
            raise OSError("disk full")
        return real_write(member, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(OSError, match="disk full"):
        save({"w": np.zeros(3), "b": np.zeros(2)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(load(path)["w"], np.ones(3))  # the old file survives
    assert os.listdir(tmp_path) == ["model.npz"]  # and no temporary file is left


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at"):
        load(tmp_path / "absent.npz")
    broken = tmp_path / "broken.npz"
    save({"w": np.ones(100)}, broken)
    broken.write_bytes(broken.read_bytes()[:150])  # truncated
    with pytest.raises(ValueError, match="not a valid chainrule save file"):
        load(broken)
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(ValueError, match="single array"):
        load(single)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a valid chainrule save file"):
        load(pickled)


def test_loading_a_file_that_does_not_fit_names_keys_and_shapes(tmp_path):
    path = tmp_path / "small.npz"
    save(nn.TwoLayerNet(4, 3, 2, seed=0).state_dict(), path)
    with pytest.raises(ValueError) as info:
        nn.TwoLayerNet(4, 5, 2, seed=0).load_state_dict(load(path))
    message = str(info.value)
    assert "fc1.weight" in message and "(4, 3)" in message and "(4, 5)" in message
    assert "fc2.weight" in message
