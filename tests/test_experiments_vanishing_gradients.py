"""The ``vanishing-gradients`` experiment (book 2, chapter 6): the gradient norm reaching
each time step of an RNN and an LSTM, and clipping, through the API and the CLI."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from click.testing import CliRunner

from chainrule import nn, plot
from chainrule.cli import main
from chainrule.experiments import (
    EXPERIMENTS,
    _gradient_by_distance,
    format_table,
    needs_data,
    run_experiment,
)

PNG = b"\x89PNG"
# enough for the unclipped run to diverge (with seed 0: iteration 41 on an Intel machine,
# 44 on an AMD EPYC, whose BLAS rounds differently) and for the clipped one to halve its
# loss (by iteration 60 on the Intel machine, about 110 on the AMD one)
ITERATIONS = 120


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run_experiment("vanishing-gradients", tmp_path_factory.mktemp("vg"),
                          iterations=ITERATIONS, seed=0)


def rows_by_run(result) -> dict:
    return {row["run"]: row for row in result.rows}


def test_the_small_scale_rnn_vanishes_the_large_one_explodes(result):
    rows = rows_by_run(result)
    small, large = rows["RNN, W_hh = 0.5·Q"], rows["RNN, W_hh = 2·Q"]
    assert small["d=49"] < 1e-3 * small["d=0"]
    assert small["d=0"] > small["d=10"] > small["d=25"] > small["d=49"]
    assert 0.3 < small["per step"] < 0.5  # about the scale, times tanh' ≤ 1
    assert large["d=49"] > 10 * large["d=0"]
    assert large["d=0"] < large["d=10"] < large["d=25"] < large["d=49"]
    assert 1.0 < large["per step"] < 2.0  # tanh's saturation keeps it below the scale


def test_the_lstm_curves_are_much_flatter(result):
    rows = rows_by_run(result)
    rnn, lstm = rows["RNN, W_hh = 0.5·Q"], rows["LSTM, PyTorch's init"]
    opened = rows["LSTM, forget bias 1+1"]
    assert lstm["d=49/d=0"] > 1e3 * rnn["d=49/d=0"]
    assert lstm["per step"] > rnn["per step"] + 0.1
    assert opened["d=49/d=0"] > 1e-2  # the open forget gate carries it back 49 steps
    assert opened["per step"] > 0.9
    assert "the mean f is 0.50" in " ".join(result.notes)  # σ(≈0) at PyTorch's initialisation


def test_clipping_trains_where_plain_sgd_diverges(result):
    rows = rows_by_run(result)
    plain, clipped = rows["training, no clipping"], rows["training, clip at 1"]
    assert clipped["iterations"] == ITERATIONS and math.isfinite(clipped["final loss"])
    # stopped where the gradient overflowed, its loss overflowed or astronomically high
    assert plain["iterations"] < ITERATIONS
    assert not math.isfinite(plain["final loss"]) or \
        plain["final loss"] > 1e6 * clipped["final loss"]
    assert clipped["max grad norm"] > 10  # before clipping: clipping really acted
    notes = " ".join(result.notes)
    assert f"at iteration {plain['iterations']}" in notes
    assert "where the run stops" in notes


def test_the_clipping_csv_holds_every_iteration_and_the_reported_maximum(result):
    path = next(p for p in result.files if p.name == "vanishing_gradients_clipping.csv")
    with open(path) as f:
        records = list(csv.DictReader(f))
    assert len(records) == ITERATIONS
    clipped = [float(r["training, clip at 1: grad norm"]) for r in records]
    losses = [float(r["training, clip at 1: loss"]) for r in records]
    assert max(clipped) == pytest.approx(rows_by_run(result)["training, clip at 1"]
                                         ["max grad norm"])
    assert np.mean(losses[-6:]) < 0.5 * losses[0]  # it trains
    stopped = [r["training, no clipping: loss"] for r in records]
    n = rows_by_run(result)["training, no clipping"]["iterations"]
    assert all(stopped[:n]) and not any(stopped[n:])  # the curve stops, no fake values


def test_the_gradient_per_step_matches_torch():
    torch = pytest.importorskip("torch")
    N, T, D, H = 3, 7, 4, 5
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, T, D))
    projection = rng.standard_normal((H, 1))
    for ours_cls, theirs_cls in ((nn.RNN, torch.nn.RNN), (nn.LSTM, torch.nn.LSTM)):
        torch.manual_seed(0)
        theirs = theirs_cls(D, H, batch_first=True).double()
        ours = ours_cls(D, H, batch_first=True, dtype=np.float64)
        ours.load_torch_state_dict(theirs.state_dict())
        inputs = torch.tensor(x, requires_grad=True)
        _, state = theirs(inputs)
        h_last = state[0] if isinstance(state, tuple) else state
        (h_last[0] @ torch.tensor(projection)).sum().backward()
        expected = inputs.grad.numpy()
        expected = np.linalg.norm(expected, axis=2).mean(axis=0)[::-1]
        np.testing.assert_allclose(_gradient_by_distance(ours, x, projection), expected,
                                   rtol=1e-10, err_msg=ours_cls.__name__)


def test_it_loads_no_dataset_and_the_seed_decides_everything(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("vanishing-gradients must not load a dataset")

    monkeypatch.setattr("chainrule.experiments.load_experiment_data", forbidden)
    monkeypatch.setattr("chainrule.experiments.load_data", forbidden)
    assert not needs_data("vanishing-gradients") and needs_data("init")
    small = {"iterations": 3, "steps": 8, "hidden_size": 4, "batch_size": 4}
    runs = [run_experiment("vanishing-gradients", tmp_path / str(seed), seed=seed,
                           **small).rows for seed in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert "d=7" in runs[0][0] and "d=4" in runs[0][0]  # distances follow the steps


def test_a_dataset_is_refused_for_it(tmp_path):
    with pytest.raises(ValueError, match="makes its own data"):
        run_experiment("vanishing-gradients", tmp_path, dataset="digits")
    with pytest.raises(ValueError, match="steps must be an int >= 2"):
        run_experiment("vanishing-gradients", tmp_path, steps=1)
    with pytest.raises(ValueError, match="unknown experiment"):
        needs_data("exploding")


def run(*args: str):
    return CliRunner().invoke(main, ["experiment", *args])


def test_the_cli_runs_it_and_writes_the_figure_and_tables(tmp_path):
    out = tmp_path / "out"
    result = run("vanishing-gradients", "--iterations", "3", "--seed", "2", "--out",
                 str(out))
    assert result.exit_code == 0, result.output
    assert "data: none needed" in result.output
    for word in ("RNN, W_hh = 0.5·Q", "LSTM, PyTorch's init", "training, clip at 1",
                 "d=49/d=0", "max grad norm", "forget gate"):
        assert word in result.output
    figure = out / "vanishing_gradients.png"
    assert figure.stat().st_size > 10_000 and figure.read_bytes()[:4] == PNG
    with open(out / "vanishing_gradients_by_distance.csv") as f:
        records = list(csv.DictReader(f))
    assert [int(r["distance"]) for r in records] == list(range(50))
    assert float(records[49]["RNN, W_hh = 0.5·Q"]) < 1e-3 * float(records[0]
                                                                   ["RNN, W_hh = 0.5·Q"])
    with open(out / "vanishing_gradients_clipping.csv") as f:
        assert len(list(csv.DictReader(f))) == 3


def test_the_cli_refuses_a_dataset_and_its_help_lists_it():
    result = run("vanishing-gradients", "--dataset", "digits")
    assert result.exit_code == 2 and "makes its own sequences" in result.output
    result = run("vanishing-gradients", "--help")
    assert result.exit_code == 0
    assert "vanishing-gradients" in result.output and "clipping" in result.output
    assert "vanishing-gradients" in EXPERIMENTS


def test_gradient_flow_draws_with_and_without_runs_and_checks_its_input(tmp_path):
    norms = {"a": 0.5 ** np.arange(10), "b": 1.2 ** np.arange(10)}
    runs = {"diverged": {"grad norm": [1.0, 10.0, np.inf], "loss": [1.0, 5.0, np.nan]},
            "fine": {"grad norm": [3.0, 2.0, 1.0], "loss": [1.0, 0.8, 0.5]}}
    for path in (plot.gradient_flow(norms, tmp_path / "a.png"),
                 plot.gradient_flow(norms, tmp_path / "b.png", runs=runs, max_norm=1.0)):
        assert path.read_bytes()[:4] == PNG
    with pytest.raises(ValueError, match="2 gradient norms but 3 losses"):
        plot.gradient_flow(norms, tmp_path / "c.png",
                           runs={"x": {"grad norm": [1, 2], "loss": [1, 2, 3]}})
    with pytest.raises(TypeError, match="'grad norm' and 'loss'"):
        plot.gradient_flow(norms, tmp_path / "c.png", runs={"x": {"loss": [1]}})
    with pytest.raises(TypeError, match="non-empty dict"):
        plot.gradient_flow({}, tmp_path / "c.png")


def test_format_table_right_aligns_numeric_columns_with_blank_cells():
    text = format_table(["run", "a", "b"], [{"run": "x", "a": 0.5},
                                            {"run": "longer", "b": 2}])
    assert text.splitlines() == ["run          a  b", "------  ------  -",
                                 "x       0.5000", "longer          2"]
