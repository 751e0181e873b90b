"""The textbook's chapter-6 experiments: what makes training work.

Each experiment trains small networks under a few settings, returns its numbers as an
``ExperimentResult`` (a summary table and remarks), and writes figures and a CSV into
an output folder:

* ``optimizers``: SGD, Momentum, AdaGrad and Adam on the same network (loss curves);
* ``init``: weights drawn with std 0.01, Xavier or He: the activations of a 5-layer
  ReLU net (histograms) and the training loss;
* ``batchnorm``: training with and without batch normalisation for a range of
  weight scales (accuracy curves);
* ``overfit``: 300 training samples, a deep net, and how weight decay and dropout
  narrow the gap between training and test accuracy;
* ``hyperparams``: random search of learning rate and weight decay, judged on
  validation data split off the training data (never on the test data).

They run on MNIST when its files are on disk (``data_dir``, ``$CHAINRULE_DATA`` or the
cache; nothing is downloaded) and otherwise on the built-in 8x8 digits, and say which.
``chainrule experiment NAME`` is the command line for them.
"""

from __future__ import annotations

import csv
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import plot
from chainrule.runs import Data, RunConfig, load_data

__all__ = ["EXPERIMENTS", "ExperimentResult", "load_experiment_data", "run_experiment",
           "optimizers", "init", "batchnorm", "overfit", "hyperparams", "format_table"]


# --------------------------------------------------------------------------- results
@dataclass
class ExperimentResult:
    """What an experiment found: a summary table (``columns``, ``rows`` of dicts),
    remarks worth printing, and the files written."""

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    dataset: str = ""  # a sentence saying which data was used
    seconds: float = 0.0

    def table(self, max_rows: int | None = None) -> str:
        """The summary table as aligned text (the first ``max_rows`` rows if given)."""
        shown = self.rows if max_rows is None else self.rows[:max_rows]
        text = format_table(self.columns, shown)
        if len(shown) < len(self.rows):
            text += f"\n... and {len(self.rows) - len(shown)} more rows in the CSV file"
        return text


def format_table(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """Rows of dicts as an aligned text table: floats with 4 decimals, text left."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "nan"
            return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else \
                f"{value:.2e}"
        return str(value)

    cells = [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row.get(c), (int, float)) for row in rows) for c in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------- data
def load_experiment_data(dataset: str | None = None, data_dir: str | None = None,
                         seed: int = 0) -> tuple[Data, str]:
    """The data of an experiment and a sentence saying which it is.

    ``dataset`` None means MNIST if its files are found (in ``data_dir``,
    ``$CHAINRULE_DATA`` or the cache), else the built-in digits. Nothing is ever
    downloaded here: ``"mnist"`` without the files raises ``DatasetNotFoundError``,
    whose message says where the files were looked for and how to get them.
    """
    from chainrule.datasets import DatasetNotFoundError, mnist

    if dataset not in (None, "mnist", "digits"):
        raise ValueError(f"unknown dataset {dataset!r}; valid: mnist, digits")
    reason = ""
    if dataset in (None, "mnist"):
        try:
            mnist("test", data_dir=data_dir, download=False)  # found? (never downloads)
        except DatasetNotFoundError:
            if dataset == "mnist":
                raise
            reason = ("MNIST was not found (looked in --data-dir, $CHAINRULE_DATA and the "
                      "cache; `chainrule train --dataset mnist` downloads it once)")
        else:
            data = load_data(RunConfig(dataset="mnist", data_dir=data_dir, seed=seed))
            return data, (f"MNIST: {len(data.x_train):,} training and "
                          f"{len(data.x_test):,} test images of 28x28")
    data = load_data(RunConfig(dataset="digits", seed=seed))
    sentence = (f"the built-in 8x8 digits: {len(data.x_train):,} training and "
                f"{len(data.x_test):,} test images")
    return data, sentence + (f" ({reason})" if reason else "")


# --------------------------------------------------------------------------- training
@dataclass
class _Run:
    """The record of one training run."""

    losses: list[float] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)  # when the accuracies were measured
    accuracy: dict[str, list[float]] = field(default_factory=dict)  # at those epochs
    seconds: float = 0.0

    def final_loss(self) -> float:
        """The mean loss of the last 10% of iterations (one batch alone is noisy)."""
        tail = self.losses[-max(1, len(self.losses) // 10):]
        return float(np.mean(tail)) if tail else float("nan")

    def last(self, split: str) -> float:
        values = self.accuracy.get(split, [])
        return values[-1] if values else float("nan")


def _accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    from chainrule.train import accuracy, predict

    with np.errstate(all="ignore"):  # a diverged net gives NaN logits: accuracy ~ chance
        return accuracy(predict(model, x), y)


def _train(model: Any, optimizer: Any, x: np.ndarray, y: np.ndarray, iterations: int,
           batch_size: int, seed: int,
           evaluate_on: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
           max_evaluations: int = 50) -> _Run:
    """Train for exactly ``iterations`` mini-batches (shuffled epochs), recording every
    loss, and the accuracy on each of ``evaluate_on`` after every epoch and at the end
    (after every k-th epoch when there are more than ``max_evaluations`` epochs:
    measuring costs more than training when the training set is small).

    Unlike ``chainrule.train.fit`` this counts iterations, as the textbook's experiments
    do, and carries on after the loss has become NaN (recording it): a diverging
    setting is one of the outcomes to observe, not an error.
    """
    from chainrule.data import DataLoader, TensorDataset
    from chainrule.nn import CrossEntropyLoss

    loader = DataLoader(TensorDataset(x, y), batch_size=min(batch_size, len(x)),
                        shuffle=True, seed=seed)
    loss_fn = CrossEntropyLoss()
    run = _Run(accuracy={name: [] for name in evaluate_on or {}})
    every = max(1, math.ceil(iterations / len(loader) / max_evaluations))

    def evaluate() -> None:
        run.epochs.append(round(len(run.losses) / len(loader), 2))
        for name, (xs, ys) in (evaluate_on or {}).items():
            run.accuracy[name].append(_accuracy(model, xs, ys))

    started = time.perf_counter()
    epoch = 0
    with np.errstate(all="ignore"):  # overflow in a diverging run is recorded, not raised
        while len(run.losses) < iterations:
            model.train()
            for inputs, targets in loader:
                loss = loss_fn(model(inputs), targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                run.losses.append(float(loss.item()))
                if len(run.losses) == iterations:
                    break
            epoch += 1
            if evaluate_on and (epoch % every == 0 or len(run.losses) == iterations):
                evaluate()
    run.seconds = time.perf_counter() - started
    return run


def _mlp(data: Data, hidden: Sequence[int], seed: int, **options: Any) -> Any:
    from chainrule import nn

    n_in = int(np.prod(data.x_train.shape[1:]))
    return nn.MLP([n_in, *hidden, len(data.class_names)], activations="relu", seed=seed,
                  **options)


def _optimizer(name: str, model: Any, **options: Any) -> Any:
    from chainrule.optim import get_optimizer

    return get_optimizer(name, model.parameters(), **options)


def _std_init(std: float) -> Callable[..., Any]:
    """An initialiser drawing weights from N(0, std²): ``init=_std_init(0.01)``."""
    from chainrule.nn.init import normal_

    return functools.partial(normal_, std=float(std))


def _out(out_dir: str | Path, name: str) -> Path:
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _check_iterations(iterations: int) -> int:
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    return iterations


# --------------------------------------------------------------------------- experiments
def optimizers(data: Data, out_dir: str | Path, iterations: int = 2000, seed: int = 0,
               batch_size: int = 128) -> ExperimentResult:
    """SGD, Momentum, AdaGrad and Adam train the same 5-layer ReLU net (4 hidden layers
    of 100, He initialisation, identical starting weights) on mini-batches of 128.

    Learning rates as in the textbook: 0.01 for the first three, 0.001 for Adam.
    """
    settings = {"SGD": ("sgd", 0.01), "Momentum": ("momentum", 0.01),
                "AdaGrad": ("adagrad", 0.01), "Adam": ("adam", 0.001)}
    iterations = _check_iterations(iterations)
    runs, rows = {}, []
    for label, (name, lr) in settings.items():
        model = _mlp(data, [100] * 4, seed)
        runs[label] = run = _train(model, _optimizer(name, model, lr=lr), data.x_train,
                                   data.y_train, iterations, batch_size, seed)
        rows.append({"optimizer": label, "lr": lr, "final loss": run.final_loss(),
                     "test accuracy": _accuracy(model, data.x_test, data.y_test),
                     "seconds": run.seconds})
    figure = plot.loss_comparison({k: r.losses for k, r in runs.items()},
                                  _out(out_dir, "optimizers_loss.png"),
                                  title=f"optimisers: training loss ({iterations} "
                                        f"iterations, batch {batch_size})")
    table = _write_csv(_out(out_dir, "optimizers.csv"), ["iteration", *runs],
                       [{"iteration": i + 1, **{k: r.losses[i] for k, r in runs.items()}}
                        for i in range(iterations)])
    best = min(rows, key=lambda r: r["final loss"])
    return ExperimentResult(
        "optimizers", "SGD vs Momentum vs AdaGrad vs Adam",
        ["optimizer", "lr", "final loss", "test accuracy", "seconds"], rows,
        [f"lowest final loss (mean of the last 10% of iterations): {best['optimizer']}"],
        [figure, table])


def _layer_activations(init: Callable[..., Any], layers: int = 5, units: int = 100,
                       samples: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """The textbook's experiment: 1000 random inputs through ``layers`` ReLU layers of
    ``units`` units whose weights ``init`` draws; returns each layer's activations."""
    import chainrule.functional as F
    from chainrule import Tensor, no_grad
    from chainrule.nn import Linear

    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((samples, units)).astype(np.float32))
    activations = {}
    with no_grad():
        for i in range(layers):
            layer = Linear(units, units, init=init, rng=rng)
            x = F.relu(layer(x))
            activations[f"layer {i + 1}"] = x.data
    return activations


def init(data: Data, out_dir: str | Path, iterations: int = 2000, seed: int = 0,
         batch_size: int = 128) -> ExperimentResult:
    """Weight initialisation: std 0.01, Xavier (std √(2/(fan_in+fan_out))) and He
    (std √(2/fan_in)).

    First the activations of a 5-layer ReLU net of 100 units on random inputs: with std
    0.01 they shrink towards 0 layer after layer (gradients vanish), with Xavier they
    still fade (ReLU halves the variance), with He they keep their spread. Then a
    5-layer net (4 hidden layers of 100) trained with SGD lr 0.01 from each.
    """
    settings = {"std 0.01": _std_init(0.01), "Xavier": "xavier", "He": "he"}
    iterations = _check_iterations(iterations)
    histograms = {label: _layer_activations(chosen, seed=seed)
                  for label, chosen in settings.items()}
    runs, rows = {}, []
    for label, chosen in settings.items():
        model = _mlp(data, [100] * 4, seed, init=chosen)
        runs[label] = run = _train(model, _optimizer("sgd", model, lr=0.01), data.x_train,
                                   data.y_train, iterations, batch_size, seed)
        acts = histograms[label]
        rows.append({"init": label, "layer 1 std": float(np.std(acts["layer 1"])),
                     "layer 5 std": float(np.std(acts["layer 5"])),
                     "final loss": run.final_loss(),
                     "test accuracy": _accuracy(model, data.x_test, data.y_test)})
    files = [
        plot.activation_histograms(histograms, _out(out_dir, "init_activations.png"),
                                   title="activations of 5 ReLU layers (100 units, 1000 "
                                         "random inputs) by weight initialisation"),
        plot.loss_comparison({k: r.losses for k, r in runs.items()},
                             _out(out_dir, "init_loss.png"),
                             title="training loss by weight initialisation (SGD lr 0.01)"),
        _write_csv(_out(out_dir, "init.csv"), ["iteration", *runs],
                   [{"iteration": i + 1, **{k: r.losses[i] for k, r in runs.items()}}
                    for i in range(iterations)]),
    ]
    return ExperimentResult(
        "init", "weight initialisation: std 0.01 vs Xavier vs He",
        ["init", "layer 1 std", "layer 5 std", "final loss", "test accuracy"], rows,
        ["std 0.01 makes the activations (and so the gradients) vanish: its loss hardly "
         "moves; He keeps the spread of ReLU activations layer after layer"], files)


def batchnorm(data: Data, out_dir: str | Path, iterations: int = 200, seed: int = 0,
              batch_size: int = 100, scales: Sequence[float] | None = None,
              train_samples: int = 1000) -> ExperimentResult:
    """Batch normalisation on and off for weights drawn with several standard deviations
    (``scales``, by default 8 from 1 down to 0.0001): a 6-layer ReLU net (5 hidden
    layers of 100) trained with SGD lr 0.01 on ``train_samples`` samples.

    Without batch norm most scales do not train at all; with it most do, and faster.
    (At the very smallest scales the batch variance falls below BatchNorm's ε = 1e-5,
    so normalising can no longer undo the scale.)
    """
    iterations = _check_iterations(iterations)
    scales = list(np.logspace(0, -4, 8) if scales is None else scales)
    x, y = data.x_train[:train_samples], data.y_train[:train_samples]
    panels, rows, curves = {}, [], []
    for scale in scales:
        panel = {}
        row: dict[str, Any] = {"weight std": float(scale)}
        for label, on in (("batch norm", True), ("no batch norm", False)):
            model = _mlp(data, [100] * 5, seed, init=_std_init(scale), batch_norm=on)
            run = _train(model, _optimizer("sgd", model, lr=0.01), x, y, iterations,
                         batch_size, seed, evaluate_on={"train": (x, y)})
            panel[label] = run.accuracy["train"]
            row[f"train acc ({label})"] = run.last("train")
            row[f"test acc ({label})"] = _accuracy(model, data.x_test, data.y_test)
            curves.extend({"weight std": float(scale), "batch norm": on, "epoch": e,
                           "train accuracy": a}
                          for e, a in zip(run.epochs, run.accuracy["train"]))
            epochs = run.epochs
        panels[f"weight std {scale:.2g}"] = panel
        rows.append(row)
    files = [
        plot.line_panels(panels, _out(out_dir, "batchnorm_accuracy.png"), x=epochs,
                         ylabel="train accuracy", ylim=(0.0, 1.02),
                         styles={"no batch norm": "--"},
                         title=f"training accuracy with and without batch norm "
                               f"({epochs[-1]:g} epochs of {len(x):,} samples, SGD lr 0.01)"),
        _write_csv(_out(out_dir, "batchnorm.csv"),
                   ["weight std", "batch norm", "epoch", "train accuracy"], curves),
    ]
    wins = sum(r["train acc (batch norm)"] > r["train acc (no batch norm)"] for r in rows)
    columns = ["weight std", "train acc (batch norm)", "train acc (no batch norm)",
               "test acc (batch norm)", "test acc (no batch norm)"]
    return ExperimentResult(
        "batchnorm", "batch normalisation across weight scales", columns, rows,
        [f"batch norm reached the higher training accuracy for {wins} of {len(rows)} "
         "weight scales"], files)


def overfit(data: Data, out_dir: str | Path, iterations: int = 600, seed: int = 0,
            batch_size: int = 100, train_samples: int = 300,
            test_samples: int = 1000) -> ExperimentResult:
    """Overfitting: a 7-layer ReLU net (6 hidden layers of 100) learns
    ``train_samples`` samples by heart (SGD lr 0.01); weight decay λ=0.1 and dropout
    0.2 each narrow the gap between training and test accuracy. The test accuracy is
    measured on the first ``test_samples`` test images after every epoch."""
    iterations = _check_iterations(iterations)
    x, y = data.x_train[:train_samples], data.y_train[:train_samples]
    x_test, y_test = data.x_test[:test_samples], data.y_test[:test_samples]
    settings = {"no regularisation": {}, "weight decay 0.1": {"weight_decay": 0.1},
                "dropout 0.2": {"dropout": 0.2}}
    panels, rows, curves = {}, [], []
    for label, options in settings.items():
        decay = options.get("weight_decay", 0.0)
        model = _mlp(data, [100] * 6, seed, dropout=options.get("dropout", 0.0))
        run = _train(model, _optimizer("sgd", model, lr=0.01, weight_decay=decay), x, y,
                     iterations, batch_size, seed,
                     evaluate_on={"train": (x, y), "test": (x_test, y_test)})
        panels[label] = {"train": run.accuracy["train"], "test": run.accuracy["test"]}
        rows.append({"setting": label, "train accuracy": run.last("train"),
                     "test accuracy": run.last("test"),
                     "gap": run.last("train") - run.last("test")})
        curves.extend({"setting": label, "epoch": e, "train accuracy": a,
                       "test accuracy": b}
                      for e, a, b in zip(run.epochs, run.accuracy["train"],
                                         run.accuracy["test"]))
        epochs = run.epochs
    files = [
        plot.line_panels(panels, _out(out_dir, "overfit_accuracy.png"), x=epochs,
                         max_columns=3, ylim=(0.0, 1.02), styles={"test": "--"},
                         title=f"overfitting {len(x)} training samples ({epochs[-1]:g} "
                               f"epochs; test: {len(x_test):,} images)"),
        _write_csv(_out(out_dir, "overfit.csv"),
                   ["setting", "epoch", "train accuracy", "test accuracy"], curves),
    ]
    plain = rows[0]["gap"]
    narrower = [r["setting"] for r in rows[1:] if r["gap"] < plain]
    return ExperimentResult(
        "overfit", "overfitting, weight decay and dropout",
        ["setting", "train accuracy", "test accuracy", "gap"], rows,
        [f"gap between training and test accuracy without regularisation: {plain:.3f}; "
         + (f"narrower with {' and '.join(narrower)}" if narrower else
            "regularisation did not narrow it in this short run")], files)


def hyperparams(data: Data, out_dir: str | Path, iterations: int = 200, seed: int = 0,
                batch_size: int = 100, trials: int = 20, train_samples: int = 500,
                lr_range: tuple[float, float] = (-6.0, -2.0),
                weight_decay_range: tuple[float, float] = (-8.0, -4.0),
                best: int = 5) -> ExperimentResult:
    """Random search: ``trials`` pairs (learning rate, weight decay) drawn log-uniformly
    from 10^``lr_range`` and 10^``weight_decay_range``, each training a 6-layer ReLU net
    (SGD) on 80% of ``train_samples`` samples and judged on the other 20% (validation
    data: choosing with the test data would make the test accuracy optimistic)."""
    from chainrule.data import train_test_split

    iterations = _check_iterations(iterations)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive int, got {trials!r}")
    x, y = data.x_train[:train_samples], data.y_train[:train_samples]
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, seed=seed)
    rng = np.random.default_rng(seed)
    rows, curves, epochs = [], {}, [1.0]
    for trial in range(1, trials + 1):
        lr = float(10 ** rng.uniform(*lr_range))
        decay = float(10 ** rng.uniform(*weight_decay_range))
        model = _mlp(data, [100] * 5, seed + trial)
        run = _train(model, _optimizer("sgd", model, lr=lr, weight_decay=decay), x_train,
                     y_train, iterations, batch_size, seed + trial,
                     evaluate_on={"val": (x_val, y_val)})
        curves[trial], epochs = run.accuracy["val"], run.epochs
        rows.append({"trial": trial, "lr": lr, "weight decay": decay,
                     "val accuracy": run.last("val"), "final loss": run.final_loss()})
    rows.sort(key=lambda r: (-r["val accuracy"], r["final loss"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    top = rows[:best]
    files = [
        plot.hyperparameter_scatter([r["lr"] for r in rows], [r["weight decay"] for r in rows],
                                    [r["val accuracy"] for r in rows],
                                    _out(out_dir, "hyperparams_search.png")),
        plot.line_panels({f"best {r['rank']}: lr {r['lr']:.1e}, wd {r['weight decay']:.1e}":
                          {"validation accuracy": curves[r["trial"]]} for r in top},
                         _out(out_dir, "hyperparams_best.png"), x=epochs,
                         max_columns=min(len(top), 5),
                         ylabel="val accuracy", ylim=(0.0, 1.02),
                         title="validation accuracy of the best trials"),
        _write_csv(_out(out_dir, "hyperparams.csv"),
                   ["rank", "trial", "lr", "weight decay", "val accuracy", "final loss"],
                   rows),
    ]
    notes = [f"best {len(top)} of {trials} trials (validation accuracy on "
             f"{len(x_val)} held-out training samples):"]
    notes += [f"  {r['rank']}. lr {r['lr']:.2e}, weight decay {r['weight decay']:.2e}: "
              f"val accuracy {r['val accuracy']:.3f}" for r in top]
    lrs, decays = [r["lr"] for r in top], [r["weight decay"] for r in top]
    notes.append(f"the best {len(top)} used lr {min(lrs):.1e} to {max(lrs):.1e} and weight "
                 f"decay {min(decays):.1e} to {max(decays):.1e}: narrow the search to these "
                 "ranges and search again")
    for name, value, (low, high) in (("learning rate", rows[0]["lr"], lr_range),
                                     ("weight decay", rows[0]["weight decay"],
                                      weight_decay_range)):
        position = (math.log10(value) - low) / (high - low)
        if position > 0.9 or position < 0.1:  # the optimum may lie outside the range
            edge = "upper" if position > 0.9 else "lower"
            notes.append(f"the best {name} lies at the {edge} edge of the searched range "
                         f"(10^{low:g} to 10^{high:g}): extend the range beyond it")
    return ExperimentResult(
        "hyperparams", "random search of learning rate and weight decay",
        ["rank", "trial", "lr", "weight decay", "val accuracy", "final loss"], rows,
        notes, files)


# --------------------------------------------------------------------------- running
EXPERIMENTS: dict[str, Callable[..., ExperimentResult]] = {
    "optimizers": optimizers,
    "init": init,
    "batchnorm": batchnorm,
    "overfit": overfit,
    "hyperparams": hyperparams,
}


def run_experiment(name: str, out_dir: str | Path, dataset: str | None = None,
                   data_dir: str | None = None, iterations: int | None = None,
                   seed: int = 0, announce: Callable[[str], Any] | None = None,
                   **options: Any) -> ExperimentResult:
    """Run the experiment called ``name`` (see ``EXPERIMENTS``) on the data chosen by
    ``load_experiment_data`` and write its files into ``out_dir``. ``iterations``
    (training iterations per run) and ``options`` override the experiment's defaults.
    ``announce``, if given, is called with the sentence naming the data before the
    (possibly long) training starts."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}")
    started = time.perf_counter()
    data, sentence = load_experiment_data(dataset, data_dir, seed)
    if announce is not None:
        announce(sentence)
    if iterations is not None:
        options["iterations"] = iterations
    result = EXPERIMENTS[name](data, out_dir, seed=seed, **options)
    result.dataset = sentence
    result.seconds = time.perf_counter() - started
    return result
