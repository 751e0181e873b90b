"""The textbooks' chapter-6 experiments: what makes training work (book 1) and how
gradients travel through time (book 2).

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
  validation data split off the training data (never on the test data);
* ``vanishing-gradients``: the gradient norm reaching each time step of a plain RNN
  (vanishing, exploding) and an LSTM, and SGD on an exploding RNN with and without
  gradient clipping.

The first five run on MNIST when its files are on disk (``data_dir``,
``$CHAINRULE_DATA`` or the cache; nothing is downloaded) and otherwise on the built-in
8x8 digits, and say which; ``vanishing-gradients`` makes its own random sequences and
loads nothing (``needs_data``). ``chainrule experiment NAME`` is the command line for
them.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import plot
from chainrule._atomic import atomic_writer
from chainrule._progress import progress_bar
from chainrule.runs import Data, RunConfig, load_data

__all__ = ["EXPERIMENTS", "ExperimentResult", "load_experiment_data", "run_experiment",
           "needs_data", "optimizers", "init", "batchnorm", "overfit", "hyperparams",
           "vanishing_gradients", "format_table"]


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
    # a column is numeric (right-aligned) when every row that fills it holds a number
    numeric = [all(isinstance(row[c], (int, float)) for row in rows if c in row)
               for c in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> Path:
    """Written atomically: workers of one study may write the same summary at once."""
    with atomic_writer(path) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        writer = csv.DictWriter(text, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        text.flush()
        text.detach()  # atomic_writer syncs and closes the file itself
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
           max_evaluations: int = 50, label: str = "training",
           after_evaluation: Callable[[int, dict[str, float]], Any] | None = None) -> _Run:
    """Train for exactly ``iterations`` mini-batches (shuffled epochs), recording every
    loss, and the accuracy on each of ``evaluate_on`` after every epoch and at the end
    (after every k-th epoch when there are more than ``max_evaluations`` epochs:
    measuring costs more than training when the training set is small). A progress
    bar named ``label`` shows on a terminal (see ``chainrule._progress``).
    ``after_evaluation(epoch, {name: accuracy})``, if given, is called after each
    evaluation (epochs counted from 1); an exception it raises ends the training.

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
    with np.errstate(all="ignore"), \
            progress_bar(iterations, label, "iteration") as bar:  # overflow: recorded
        while len(run.losses) < iterations:
            model.train()
            for inputs, targets in loader:
                loss = loss_fn(model(inputs), targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                run.losses.append(float(loss.item()))
                bar.update(1)
                if len(run.losses) == iterations:
                    break
            epoch += 1
            if evaluate_on and (epoch % every == 0 or len(run.losses) == iterations):
                evaluate()
                if after_evaluation is not None:
                    after_evaluation(epoch, {name: values[-1]
                                             for name, values in run.accuracy.items()})
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
                                   data.y_train, iterations, batch_size, seed, label=label)
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
                                   data.y_train, iterations, batch_size, seed, label=label)
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
                         batch_size, seed, evaluate_on={"train": (x, y)},
                         label=f"{label}, scale {scale:g}")
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
                     evaluate_on={"train": (x, y), "test": (x_test, y_test)}, label=label)
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
                best: int = 5, storage: str | None = None, study: str | None = None,
                prune: bool = True, prune_startup_trials: int = 5,
                prune_warmup_epochs: int = 5) -> ExperimentResult:
    """Random search as an Optuna study: pairs (learning rate, weight decay) drawn
    log-uniformly from 10^``lr_range`` and 10^``weight_decay_range``, each training a
    6-layer ReLU net (SGD) on 80% of ``train_samples`` samples and judged on the other
    20% (validation data: choosing with the test data would make the test accuracy
    optimistic).

    ``storage`` (a database URL: ``sqlite:///hpo.db``, ``postgresql://...``) holds the
    study ``study`` (default "hyperparams"); any number of processes, on any machines,
    started with the same storage, study name and settings share its trials until it
    has ``trials`` of them (see ``chainrule.hpo.run_trials``), and each summarises the
    whole study. Without ``storage`` the study lives in memory: the textbook's search,
    trial k drawing the k-th pair of the stream seeded by ``seed`` either way.

    With ``prune`` a trial whose validation accuracy falls below the median of the
    earlier trials' at the same epoch is stopped (recorded as pruned), once
    ``prune_startup_trials`` trials have completed and after ``prune_warmup_epochs``
    epochs. Needs Optuna (``pip install -e ".[distributed]"``)."""
    from chainrule import hpo
    from chainrule.data import train_test_split

    iterations = _check_iterations(iterations)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive int, got {trials!r}")
    if study is not None and storage is None:
        raise ValueError("study names a study in a storage: give storage too (without "
                         "it the study lives in this process's memory)")
    x, y = data.x_train[:train_samples], data.y_train[:train_samples]
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, seed=seed)
    name = study or "hyperparams"
    # what makes two workers' trials comparable: the same data, split and training
    settings = {"data": f"{x.shape} crc32 {zlib.crc32(np.ascontiguousarray(x).tobytes())}"
                        f" {zlib.crc32(np.ascontiguousarray(y).tobytes())}",
                "iterations": iterations, "seed": seed, "batch_size": batch_size,
                "lr_range": list(lr_range), "weight_decay_range": list(weight_decay_range),
                "prune": [prune, prune_startup_trials, prune_warmup_epochs] if prune else False}
    the_study = hpo.open_study(storage, name if storage else None, seed, settings, prune,
                               prune_startup_trials, prune_warmup_epochs,
                               parameter_names=("lr", "weight_decay"))

    def objective(trial: Any) -> float:
        lr = trial.suggest_float("lr", 10.0 ** lr_range[0], 10.0 ** lr_range[1], log=True)
        decay = trial.suggest_float("weight_decay", 10.0 ** weight_decay_range[0],
                                    10.0 ** weight_decay_range[1], log=True)
        number = trial.number + 1  # the textbook counts trials from 1 (and seeds by it)

        def report(epoch: int, accuracy: dict[str, float]) -> None:
            trial.report(accuracy["val"], epoch)
            if trial.should_prune():
                trial.set_user_attr("pruned at epoch", epoch)
                raise hpo.TrialPruned(f"validation accuracy {accuracy['val']:.3f} at epoch "
                                      f"{epoch} is below the median of earlier trials")

        model = _mlp(data, [100] * 5, seed + number)
        run = _train(model, _optimizer("sgd", model, lr=lr, weight_decay=decay), x_train,
                     y_train, iterations, batch_size, seed + number,
                     evaluate_on={"val": (x_val, y_val)}, label=f"trial {number}/{trials}",
                     after_evaluation=report)
        trial.set_user_attr("final loss", run.final_loss())
        trial.set_user_attr("epochs", run.epochs)
        return run.last("val")

    ran = hpo.run_trials(the_study, objective, trials)
    return _search_summary(the_study, out_dir, ran, best, len(x_val), lr_range,
                           weight_decay_range, storage, name)


def _search_summary(study: Any, out_dir: str | Path, ran: int, best: int, validation: int,
                    lr_range: tuple[float, float], weight_decay_range: tuple[float, float],
                    storage: str | None, name: str) -> ExperimentResult:
    """The result of the ``hyperparams`` study: every complete trial, whichever worker
    ran it, in the table, the CSV and the scatter picture; the best as curves."""
    from chainrule.hpo import TrialState, redacted_url

    states = [t.state for t in study.get_trials(deepcopy=False)]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pruned, running = states.count(TrialState.PRUNED), states.count(TrialState.RUNNING)
    columns = ["rank", "trial", "lr", "weight decay", "val accuracy", "final loss"]
    rows = [{"trial": t.number + 1, "lr": t.params["lr"],
             "weight decay": t.params["weight_decay"], "val accuracy": float(t.value),
             "final loss": float(t.user_attrs.get("final loss", math.nan)),
             "curve": [t.intermediate_values[step] for step in sorted(t.intermediate_values)],
             "epochs": t.user_attrs.get("epochs", [])} for t in complete]
    rows.sort(key=lambda r: (-r["val accuracy"], r["final loss"], r["trial"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    where = f"study {name!r} in {redacted_url(storage)}" if storage else "the study"
    notes = [f"{where}: {len(complete)} complete, {pruned} pruned"
             + (f", {running} still running on other workers" if running else "")
             + f"; this process ran {ran}"]
    if pruned:
        notes.append(f"pruned: {pruned} trial{'s' if pruned > 1 else ''} stopped early, "
                     "validation accuracy below the median of earlier trials at the same "
                     "epoch")
    if not rows:
        notes.append("no trial has completed yet: run again with the same storage and "
                     "study to see the summary")
        return ExperimentResult("hyperparams", "random search of learning rate and weight "
                                "decay", columns, rows, notes, [])
    top = rows[:best]
    files = [
        plot.hyperparameter_scatter([r["lr"] for r in rows], [r["weight decay"] for r in rows],
                                    [r["val accuracy"] for r in rows],
                                    _out(out_dir, "hyperparams_search.png")),
        plot.line_panels({f"best {r['rank']}: lr {r['lr']:.1e}, wd {r['weight decay']:.1e}":
                          {"validation accuracy": r["curve"]} for r in top},
                         _out(out_dir, "hyperparams_best.png"), x=top[0]["epochs"],
                         max_columns=min(len(top), 5),
                         ylabel="val accuracy", ylim=(0.0, 1.02),
                         title="validation accuracy of the best trials"),
        _write_csv(_out(out_dir, "hyperparams.csv"), columns, rows),
    ]
    notes += [f"best {len(top)} of {len(rows)} trials (validation accuracy on "
              f"{validation} held-out training samples):"]
    notes += [f"  {r['rank']}. lr {r['lr']:.2e}, weight decay {r['weight decay']:.2e}: "
              f"val accuracy {r['val accuracy']:.3f}" for r in top]
    lrs, decays = [r["lr"] for r in top], [r["weight decay"] for r in top]
    notes.append(f"the best {len(top)} used lr {min(lrs):.1e} to {max(lrs):.1e} and weight "
                 f"decay {min(decays):.1e} to {max(decays):.1e}: narrow the search to these "
                 "ranges and search again")
    for label, value, (low, high) in (("learning rate", rows[0]["lr"], lr_range),
                                      ("weight decay", rows[0]["weight decay"],
                                       weight_decay_range)):
        position = (math.log10(value) - low) / (high - low)
        if position > 0.9 or position < 0.1:  # the optimum may lie outside the range
            edge = "upper" if position > 0.9 else "lower"
            notes.append(f"the best {label} lies at the {edge} edge of the searched range "
                         f"(10^{low:g} to 10^{high:g}): extend the range beyond it")
    return ExperimentResult(
        "hyperparams", "random search of learning rate and weight decay", columns, rows,
        notes, files)


# --------------------------------------------------------------------------- through time
def _synthetic_data(sentence: str) -> Callable[[Callable[..., ExperimentResult]],
                                               Callable[..., ExperimentResult]]:
    """Declare that an experiment makes its own data (``sentence`` says which):
    ``run_experiment`` then calls it without a ``data`` argument and loads nothing."""
    def declare(experiment: Callable[..., ExperimentResult]) -> Callable[..., ExperimentResult]:
        experiment.synthetic_data = sentence  # type: ignore[attr-defined]
        return experiment
    return declare


def _orthogonal(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random orthogonal matrix (QR of a Gaussian one, signs fixed so that it is
    uniformly distributed): every singular value is 1, so c·Q scales every direction
    by exactly c."""
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    return q * np.sign(np.diag(r))


def _gradient_by_distance(model: Any, x: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """‖∂L/∂x_t‖ (mean over the batch) against the distance T − t, for the loss
    L = Σ_n h_T[n]·v that sees only the last hidden state (v = ``projection``)."""
    from chainrule import Tensor

    inputs = Tensor(x, requires_grad=True)
    _, state = model(inputs)  # h_n (RNN) or (h_n, c_n) (LSTM), shape (1, N, H)
    h_last = state[0] if isinstance(state, tuple) else state
    (h_last[0] @ Tensor(projection)).sum().backward()
    per_step = np.linalg.norm(inputs.grad.data, axis=2).mean(axis=0)  # (T,): t = 1..T
    return per_step[::-1]  # index = distance T − t


def _mean_forget_gate(lstm: Any, x: np.ndarray) -> float:
    """The mean forget gate f = σ(x·W_if + b_if + h·W_hf + b_hf) over the batch and
    the steps of ``x`` (batch-first), i.e. the factor the cell-state path multiplies by."""
    from chainrule import no_grad

    H = lstm.hidden_size
    with no_grad():
        output, _ = lstm(x)
    h_prev = np.concatenate([np.zeros_like(output.data[:, :1]), output.data[:, :-1]], 1)
    forget = slice(H, 2 * H)  # gate order i, f, g, o
    a = (x @ lstm.weight_ih_l0.data[:, forget] + lstm.bias_ih_l0.data[forget]
         + h_prev @ lstm.weight_hh_l0.data[:, forget] + lstm.bias_hh_l0.data[forget])
    return float(np.mean(1.0 / (1.0 + np.exp(-a))))


def _noisy_sines(rng: np.random.Generator, batch_size: int, steps: int,
                 noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A batch of the next-value task: sine waves of random frequency (0.1 to 0.4
    radians per step) and phase plus Gaussian noise; inputs (N, T, 1) and targets, the
    same sequences one step ahead."""
    frequency = rng.uniform(0.1, 0.4, (batch_size, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (batch_size, 1))
    waves = np.sin(frequency * np.arange(steps + 1) + phase)
    waves += noise * rng.standard_normal(waves.shape)
    waves = waves[..., None].astype(np.float32)
    return waves[:, :-1], waves[:, 1:]


def _train_sequences(model: Any, head: Any, rng: np.random.Generator, iterations: int,
                     lr: float, max_norm: float | None, batch_size: int,
                     steps: int, label: str = "training") -> dict[str, list[float]]:
    """SGD on fresh batches of ``_noisy_sines`` (MSE of the next-value predictions at
    every step), clipping the gradient norm to ``max_norm`` unless it is None.

    Records the loss and the gradient norm before clipping of every iteration, and
    stops after the first one where either is no longer finite: the run has diverged
    and every later step would only propagate inf and NaN."""
    from chainrule import Tensor
    from chainrule.nn import MSELoss
    from chainrule.optim import SGD, clip_grad_norm_

    params = [*model.parameters(), *head.parameters()]
    optimizer, loss_fn = SGD(params, lr=lr), MSELoss()
    record: dict[str, list[float]] = {"loss": [], "grad norm": []}
    with np.errstate(all="ignore"), \
            progress_bar(iterations, label, "iteration") as bar:  # overflow: recorded
        for _ in range(iterations):
            bar.update(1)
            x, y = _noisy_sines(rng, batch_size, steps)
            output, _ = model(Tensor(x))
            loss = loss_fn(head(output), Tensor(y))
            optimizer.zero_grad()
            loss.backward()
            # max_norm inf measures the norm without rescaling: one code path for both runs
            norm = clip_grad_norm_(params, math.inf if max_norm is None else max_norm)
            record["loss"].append(float(loss.item()))
            record["grad norm"].append(norm)
            if not (math.isfinite(record["loss"][-1]) and math.isfinite(norm)):
                break
            optimizer.step()
    return record


@_synthetic_data("none needed: random input sequences (gradients through time) and "
                 "noisy sine waves (clipping), all drawn from the seed")
def vanishing_gradients(out_dir: str | Path, iterations: int = 300, seed: int = 0,
                        batch_size: int = 32, steps: int = 50, hidden_size: int = 32,
                        small_scale: float = 0.5, large_scale: float = 2.0,
                        forget_bias: float = 1.0, input_scale: float = 0.1,
                        lr: float = 0.1, max_norm: float = 1.0) -> ExperimentResult:
    """Vanishing and exploding gradients in recurrent networks, and gradient clipping
    (book 2, chapter 6).

    **Through time.** A batch of ``batch_size`` random sequences x (N, T, D), T =
    ``steps``, D = H = ``hidden_size``, entries N(0, ``input_scale``²), is a leaf that
    requires grad; the loss L = Σ_n h_T[n]·v (v a fixed random projection) sees only
    the last hidden state. After backward, ‖∂L/∂x_t‖ (mean over the batch) is recorded
    for every step t against its distance T − t from the loss. The gradient reaching
    step t has been multiplied by T − t Jacobians ∂h_s/∂h_{s-1} = diag(1 − h_s²)·W_hhᵀ
    on its way back, so it changes geometrically with the distance. Four networks see
    the same inputs:

    * a tanh RNN whose W_hh is ``small_scale``·Q, Q a random orthogonal matrix (every
      singular value ``small_scale``): the gradient vanishes, by about that factor per
      step;
    * the same RNN with W_hh = ``large_scale``·Q: it explodes. With small inputs tanh
      starts near its linear range; as h grows, diag(1 − h²) shrinks the factor below
      ``large_scale``, but it stays above 1;
    * an LSTM with PyTorch's initialisation (every weight and bias from U(−1/√H, 1/√H)):
      along the cell state c_t = f_t·c_{t−1} + i_t·g_t the gradient is multiplied only
      by the forget gate f, about σ(0) = 0.5 here, so it vanishes too, though more
      slowly than through the RNN's saturating tanh and weight matrix;
    * the same LSTM with the forget-gate biases b_ih and b_hh set to ``forget_bias``
      each (σ(2) ≈ 0.88 for the default 1 + 1), the usual remedy: the gradient now
      reaches the first steps almost undiminished.

    **Clipping.** The exploding RNN (``large_scale``·Q, input size 1) with a linear
    read-out learns to predict the next value of noisy sine waves (MSE at every step,
    fresh batches of ``batch_size`` sequences of ``steps``), trained with SGD lr ``lr``
    for ``iterations`` iterations, once as it is and once with
    ``clip_grad_norm_(params, max_norm)``, which rescales g to g·max_norm/‖g‖ when
    ‖g‖ > max_norm. Both start from the same weights and see the same batches. The
    unclipped run's first steps are lr·‖g‖ long, with ‖g‖ in the hundreds: it diverges,
    and its curves stop at the first iteration whose loss or gradient norm is inf or
    NaN. Clipping bounds every step by lr·max_norm and the run trains.
    """
    from chainrule import nn

    iterations = _check_iterations(iterations)
    for name, value in (("batch_size", batch_size), ("steps", steps),
                        ("hidden_size", hidden_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{name} must be an int >= 2, got {value!r}")
    rng = np.random.default_rng(seed)
    N, T, H = batch_size, steps, hidden_size
    x = input_scale * rng.standard_normal((N, T, H))
    projection = rng.standard_normal((H, 1)) / math.sqrt(H)
    q = _orthogonal(H, rng)

    # float64: these are measurements down to 1e-16, not training
    rnn = nn.RNN(H, H, batch_first=True, rng=rng, dtype=np.float64)
    lstm = nn.LSTM(H, H, batch_first=True, rng=rng, dtype=np.float64)
    labels = {"small": f"RNN, W_hh = {small_scale:g}·Q", "large":
              f"RNN, W_hh = {large_scale:g}·Q", "lstm": "LSTM, PyTorch's init",
              "forget": f"LSTM, forget bias {forget_bias:g}+{forget_bias:g}"}
    norms, forget_gates = {}, {}
    for key, scale in (("small", small_scale), ("large", large_scale)):
        rnn.weight_hh_l0.data[...] = scale * q
        norms[labels[key]] = _gradient_by_distance(rnn, x, projection)
    forget_gates[labels["lstm"]] = _mean_forget_gate(lstm, x)
    norms[labels["lstm"]] = _gradient_by_distance(lstm, x, projection)
    for bias in (lstm.bias_ih_l0, lstm.bias_hh_l0):
        bias.data[H:2 * H] = forget_bias  # gate order i, f, g, o
    forget_gates[labels["forget"]] = _mean_forget_gate(lstm, x)
    norms[labels["forget"]] = _gradient_by_distance(lstm, x, projection)

    distances = sorted({0, T // 5, T // 2, T - 1})
    columns = ["run", *(f"d={d}" for d in distances), f"d={T - 1}/d=0", "per step",
               "iterations", "final loss", "max grad norm"]
    rows: list[dict[str, Any]] = []
    for label, g in norms.items():
        ratio = float(g[T - 1] / g[0])
        rows.append({"run": label, **{f"d={d}": float(g[d]) for d in distances},
                     f"d={T - 1}/d=0": ratio, "per step": ratio ** (1.0 / (T - 1))})

    # clipping: identical starting weights and batches for both runs
    initial = nn.RNN(1, H, batch_first=True, rng=rng).state_dict()
    initial["weight_hh_l0"] = (large_scale * q).astype(np.float32)
    head_initial = nn.Linear(H, 1, rng=rng).state_dict()
    batch_seed = int(rng.integers(2**31))
    runs = {}
    for max_norm_used in (None, max_norm):
        model, head = nn.RNN(1, H, batch_first=True), nn.Linear(H, 1)
        model.load_state_dict(initial)
        head.load_state_dict(head_initial)
        label = (f"training, clip at {max_norm:g}" if max_norm_used else
                 "training, no clipping")
        runs[label] = record = _train_sequences(
            model, head, np.random.default_rng(batch_seed), iterations, lr, max_norm_used,
            N, T, label=label)
        losses = record["loss"]
        rows.append({"run": label, "iterations": len(losses),
                     "final loss": losses[-1] if not math.isfinite(losses[-1]) else
                     float(np.mean(losses[-max(1, len(losses) // 10):])),
                     "max grad norm": float(np.nanmax(record["grad norm"]))})

    files = [
        plot.gradient_flow(norms, _out(out_dir, "vanishing_gradients.png"), runs=runs,
                           max_norm=max_norm,
                           title=f"gradients through {T} steps (H = {H}), and clipping "
                                 f"(SGD lr {lr:g})"),
        _write_csv(_out(out_dir, "vanishing_gradients_by_distance.csv"),
                   ["distance", *norms],
                   [{"distance": d, **{k: float(g[d]) for k, g in norms.items()}}
                    for d in range(T)]),
        _write_csv(_out(out_dir, "vanishing_gradients_clipping.csv"),
                   ["iteration", *(f"{k}: {s}" for k in runs for s in ("loss", "grad norm"))],
                   [{"iteration": i + 1, **{f"{k}: {s}": r[s][i] for k, r in runs.items()
                                            for s in ("loss", "grad norm") if i < len(r[s])}}
                    for i in range(iterations)]),
    ]
    return ExperimentResult("vanishing-gradients", "vanishing and exploding gradients "
                            "through time, and gradient clipping", columns, rows,
                            _vanishing_notes(rows, forget_gates, runs, T, iterations,
                                             forget_bias, max_norm, lr), files)


def _vanishing_notes(rows: list[dict[str, Any]], forget_gates: dict[str, float],
                     runs: dict[str, dict[str, list[float]]], steps: int,
                     iterations: int, forget_bias: float, max_norm: float,
                     lr: float) -> list[str]:
    """What the table shows, in a few sentences with its numbers."""
    small, large, lstm, opened, plain, clipped = rows
    plain_run, clipped_run = runs[plain["run"]], runs[clipped["run"]]
    T = steps
    ratio = f"d={T - 1}/d=0"
    f_lstm, f_opened = forget_gates[lstm["run"]], forget_gates[opened["run"]]
    notes = [
        f"d = T − t: how many steps back from the loss (on h_T) step t lies; d=k is the "
        f"mean ‖∂L/∂x_t‖ there, 'per step' the factor per step, ({ratio})^(1/{T - 1}).",
        f"Through the RNN the gradient is multiplied at every step by diag(1 − h²)·W_hhᵀ: "
        f"{small['run']} shrinks it by {small['per step']:.2f} per step "
        f"({small[ratio]:.0e} after {T - 1} steps), {large['run']} grows it by "
        f"{large['per step']:.2f} per step ({large[ratio]:.0e}; tanh's saturation keeps "
        f"the factor below the scale).",
        f"Along the LSTM's cell state it is multiplied only by the forget gate: at "
        f"PyTorch's init the mean f is {f_lstm:.2f} and the gradient still vanishes "
        f"({lstm['per step']:.2f} per step, {lstm[ratio]:.0e}), though more slowly "
        f"than through {small['run']}; with the forget gate opened (biases b_ih and b_hh "
        f"of f set to {forget_bias:g} each, mean f {f_opened:.2f}) it falls by only "
        f"{opened['per step']:.3f} per step and the first steps still receive "
        f"{opened[ratio]:.0%} of it.",
    ]
    losses, norms = plain_run["loss"], plain_run["grad norm"]
    first, peak = norms[0], float(np.nanmax(norms))
    if not (math.isfinite(losses[-1]) and math.isfinite(norms[-1])):
        what, value = ("loss", losses[-1]) if not math.isfinite(losses[-1]) else \
            ("gradient norm", norms[-1])
        notes.append(f"Without clipping (SGD lr {lr:g}) every step is lr·‖g‖ long: ‖g‖ "
                     f"was {first:.3g} at the first iteration, the steps overshot, ‖g‖ "
                     f"reached {peak:.1e} and the {what} was {value} at iteration "
                     f"{len(losses)}, where the run stops (the curves end with ×).")
    else:
        notes.append(f"Without clipping (SGD lr {lr:g}) the run did not diverge in "
                     f"{iterations} iterations: its largest gradient norm was {peak:.1e}, "
                     f"so its largest step was lr·‖g‖ = {lr * peak:.2g} (final loss "
                     f"{plain['final loss']:.3g}).")
    notes.append(f"Clipping rescales g to g·{max_norm:g}/‖g‖ whenever ‖g‖ > {max_norm:g} "
                 f"(here up to {max(clipped_run['grad norm']):.1e}), so no step is longer "
                 f"than lr·{max_norm:g} = {lr * max_norm:.2g}: final loss "
                 f"{clipped['final loss']:.3g} (mean of the last 10% of iterations; "
                 f"always predicting 0 scores about 0.51).")
    return notes


# --------------------------------------------------------------------------- running
EXPERIMENTS: dict[str, Callable[..., ExperimentResult]] = {
    "optimizers": optimizers,
    "init": init,
    "batchnorm": batchnorm,
    "overfit": overfit,
    "hyperparams": hyperparams,
    "vanishing-gradients": vanishing_gradients,
}


def _experiment(name: str) -> Callable[..., ExperimentResult]:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def needs_data(name: str) -> bool:
    """Whether the experiment ``name`` trains on a dataset (MNIST or the digits); False
    for those that make their own synthetic data, such as ``vanishing-gradients``."""
    return getattr(_experiment(name), "synthetic_data", None) is None


def run_experiment(name: str, out_dir: str | Path, dataset: str | None = None,
                   data_dir: str | None = None, iterations: int | None = None,
                   seed: int = 0, announce: Callable[[str], Any] | None = None,
                   **options: Any) -> ExperimentResult:
    """Run the experiment called ``name`` (see ``EXPERIMENTS``) on the data chosen by
    ``load_experiment_data`` and write its files into ``out_dir``. ``iterations``
    (training iterations per run) and ``options`` override the experiment's defaults.
    ``announce``, if given, is called with the sentence naming the data before the
    (possibly long) training starts.

    An experiment that makes its own data (``needs_data(name)`` is False) loads none,
    and giving it ``dataset`` or ``data_dir`` is an error."""
    experiment = _experiment(name)
    started = time.perf_counter()
    sentence = getattr(experiment, "synthetic_data", None)
    inputs: tuple[Any, ...] = ()
    if sentence is None:
        data, sentence = load_experiment_data(dataset, data_dir, seed)
        inputs = (data,)
    elif dataset is not None or data_dir is not None:
        raise ValueError(f"the {name} experiment makes its own data: dataset and "
                         f"data_dir do not apply to it (got dataset={dataset!r}, "
                         f"data_dir={data_dir!r})")
    if announce is not None:
        announce(sentence)
    if iterations is not None:
        options["iterations"] = iterations
    result = experiment(*inputs, out_dir, seed=seed, **options)
    result.dataset = sentence
    result.seconds = time.perf_counter() - started
    return result
