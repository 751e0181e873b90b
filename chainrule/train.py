"""The training loop: the four steps of learning, repeated.

1. draw a mini-batch (the ``DataLoader``);
2. compute the loss and its gradient by backpropagation (``loss.backward()``);
3. update the parameters (``optimizer.step()``);
4. repeat, epoch after epoch, keeping a ``History``.

``fit`` also guards the run: a NaN or infinite loss stops it with advice, and with a
``checkpoint_dir`` the complete state (model, optimiser, schedule, random generators,
history) is saved atomically after every epoch, so ``fit(..., resume=path)`` continues a
killed run exactly where it stopped.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule._atomic import atomic_writer
from chainrule._progress import progress_bar
from chainrule.optim.clip import clip_grad_norm_
from chainrule.optim.lr_scheduler import LRScheduler
from chainrule.tensor import Tensor, as_tensor, no_grad

__all__ = ["History", "TrainingDiverged", "CheckpointError", "Callback", "EarlyStopping",
           "fit", "evaluate", "predict", "accuracy", "perplexity", "confusion_matrix",
           "CHECKPOINT_NAME", "METRICS"]

CHECKPOINT_NAME = "checkpoint.npz"


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite: training cannot recover from that."""


#: A run whose epoch loss stays above ``DIVERGED_FACTOR`` × its first batch's loss for
#: ``divergence_patience`` epochs, or ever exceeds ``EXPLODED_FACTOR`` × it, has
#: diverged: at lr 1e6 the loss of a digits net reached 1e29 with chance accuracy.
DIVERGED_FACTOR = 10.0
EXPLODED_FACTOR = 1e6


class CheckpointError(ValueError):
    """A checkpoint cannot be resumed from: unreadable (truncated, not a checkpoint), or
    made for another model or optimiser than the ones given."""


# --------------------------------------------------------------------------- metrics
def _class_predictions(output: np.ndarray) -> np.ndarray:
    """Predicted classes: the arg-max over classes, or output > 0.5 for one output unit
    (read as a probability, as after a sigmoid)."""
    if output.ndim >= 2 and output.shape[-1] > 1:
        return output.argmax(axis=-1)
    return (output.reshape(output.shape[0], -1)[:, 0] > 0.5).astype(np.int64)


def _class_labels(target: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Class labels from integer targets, one-hot rows, or 0/1 targets of one unit."""
    if target.dtype.kind in "iu":
        return target.reshape(-1) if target.ndim > 1 and target.shape[-1] == 1 else target
    if output.ndim >= 2 and output.shape[-1] > 1 and target.shape == output.shape:
        return target.argmax(axis=-1)
    return (target.reshape(target.shape[0], -1)[:, 0] > 0.5).astype(np.int64)


METRICS = ("accuracy", "perplexity")


def perplexity(mean_loss: float) -> float:
    """exp(mean cross-entropy per token): the number of equally likely words a language
    model is as unsure as (a uniform guess over V words has perplexity V)."""
    return math.exp(mean_loss) if mean_loss < 700 else math.inf  # (exp overflows past 709)


def _predictions_counted(output: Tensor) -> int:
    """How many predictions a batch's output holds: one per row of an (N, C) output, one
    per position of an (N, T, V) sequence output."""
    shape = output.shape
    return int(np.prod(shape[:-1])) if len(shape) > 2 else shape[0]


def _reset_state(model: Any) -> None:
    """A model that carries state from batch to batch (a language model's hidden state,
    ``reset_state()``) starts every pass over the data afresh."""
    reset = getattr(model, "reset_state", None)
    if reset is not None:
        reset()


def accuracy(output: Any, target: Any) -> float:
    """Fraction of samples whose predicted class equals the target class."""
    out = output.data if isinstance(output, Tensor) else np.asarray(output)
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    return float(np.mean(_class_predictions(out) == _class_labels(t, out)))


def confusion_matrix(predicted: np.ndarray, actual: np.ndarray,
                     num_classes: int | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of true class i predicted as class j."""
    predicted = np.asarray(predicted, dtype=np.int64)
    actual = np.asarray(actual, dtype=np.int64)
    n = num_classes or int(max(predicted.max(initial=0), actual.max(initial=0)) + 1)
    return np.bincount(actual * n + predicted, minlength=n * n).reshape(n, n)


# --------------------------------------------------------------------------- history
@dataclass
class History:
    """What happened during training.

    ``iteration_loss`` holds the loss of every mini-batch; ``epochs`` one record per
    epoch (``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``,
    ``val_accuracy``, ``lr``, ``seconds``). Train loss and accuracy are averages over
    the epoch's mini-batches (in training mode); validation runs in evaluation mode.
    """

    iteration_loss: list[float] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)

    def __getattr__(self, name: str) -> np.ndarray:
        """``history.val_accuracy`` and friends: one column of ``epochs`` as an array."""
        if name.startswith("__") or name in ("iteration_loss", "epochs"):
            raise AttributeError(name)
        epochs = self.__dict__.get("epochs", [])
        if epochs and name in epochs[0]:
            return np.array([row.get(name, np.nan) for row in epochs], dtype=np.float64)
        raise AttributeError(f"History has no column {name!r}; columns: "
                             f"{sorted(epochs[0]) if epochs else []}")

    def to_dict(self) -> dict[str, Any]:
        return {"iteration_loss": list(self.iteration_loss), "epochs": list(self.epochs)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls([float(v) for v in data.get("iteration_loss", [])],
                   [dict(row) for row in data.get("epochs", [])])

    def to_json(self, path: str | os.PathLike) -> None:
        """Write everything (per-iteration losses too) as JSON, atomically."""
        _write_atomic(Path(path), json.dumps(self.to_dict(), indent=1).encode())

    def to_csv(self, path: str | os.PathLike) -> None:
        """Write the per-epoch table as CSV, atomically."""
        from io import StringIO

        buffer = StringIO()
        columns = list(self.epochs[0]) if self.epochs else ["epoch"]
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.epochs)
        _write_atomic(Path(path), buffer.getvalue().encode())

    def plot(self, path: str | os.PathLike, **kwargs: Any) -> Path:
        """Save learning curves (loss per iteration, accuracy per epoch) to ``path``."""
        from chainrule.plot import learning_curves

        return learning_curves(self, path, **kwargs)


def _write_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically: never a half-written file."""
    with atomic_writer(path) as f:
        f.write(payload)


# --------------------------------------------------------------------------- callbacks
class Callback:
    """Hooks into ``fit``. ``on_epoch_end`` may return True to stop training."""

    def on_batch_end(self, iteration: int, loss: float) -> None:
        """Called after every optimiser step."""

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> bool | None:
        """Called with the epoch's record (the row added to ``History.epochs``); it may
        add entries to it (a metric measured its own way), which are saved with the
        history and the checkpoint."""
        return None


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", patience: int = 3,
                 mode: str | None = None) -> None:
        self.monitor, self.patience = monitor, patience
        self.mode = mode or ("max" if "accuracy" in monitor else "min")
        self.best = -math.inf if self.mode == "max" else math.inf
        self.waited = 0

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> bool:
        if self.monitor not in record:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which is not in the "
                             f"epoch record {sorted(record)}")
        value = record[self.monitor]
        better = value > self.best if self.mode == "max" else value < self.best
        if better:
            self.best, self.waited = value, 0
            return False
        self.waited += 1
        return self.waited >= self.patience


# --------------------------------------------------------------------------- evaluation
def _forward(model: Callable[..., Tensor], inputs: Sequence[Any]) -> Tensor:
    """The model's output for the inputs of a batch: every field but the last (the
    targets), so a batch (questions, answers_in, answers_out) calls model(questions,
    answers_in)."""
    out = model(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"the model must return a Tensor, got {type(out).__name__}")
    return out


def _set_mode(model: Any, training: bool) -> None:
    if hasattr(model, "train"):
        model.train(training)


def evaluate(model: Any, loader: Iterable[Any], loss_fn: Callable[..., Tensor] | None = None,
             num_classes: int | None = None, metrics: Sequence[str] = ("accuracy",),
             progress: bool | None = None) -> dict[str, Any]:
    """Loss, accuracy and confusion matrix over a loader, in eval mode, without a graph.
    A progress bar shows on a terminal unless ``progress=False``.

    Returns a dict with ``loss`` (when ``loss_fn`` is given; the mean per prediction),
    ``accuracy`` and ``confusion_matrix`` (when ``metrics`` includes accuracy),
    ``perplexity`` (when it includes perplexity) and ``samples`` (predictions counted:
    tokens for a sequence model).
    """
    was_training = getattr(model, "training", False)
    _set_mode(model, False)
    _reset_state(model)
    total_loss = 0.0
    count = 0
    predicted, actual = [], []
    bar = progress_bar(len(loader) if hasattr(loader, "__len__") else None, "evaluating",
                       "batch", progress)
    try:
        with no_grad():
            for *inputs, targets in loader:
                bar.update(1)
                out = _forward(model, inputs)
                n = _predictions_counted(out)
                if loss_fn is not None:
                    total_loss += float(loss_fn(out, targets).item()) * n
                if "accuracy" in metrics:
                    t = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
                    predicted.append(_class_predictions(out.data))
                    actual.append(_class_labels(t, out.data))
                count += n
    finally:
        bar.close()
        _set_mode(model, was_training)
    result: dict[str, Any] = {"samples": count}
    if loss_fn is not None:
        result["loss"] = total_loss / max(count, 1)
        if "perplexity" in metrics:
            result["perplexity"] = perplexity(result["loss"])
    if "accuracy" in metrics and count:
        p, a = np.concatenate(predicted), np.concatenate(actual)
        result["accuracy"] = float(np.mean(p == a))
        result["confusion_matrix"] = confusion_matrix(p, a, num_classes)
    return result


def predict(model: Any, inputs: Any, batch_size: int = 1000,
            progress: bool | None = False) -> np.ndarray:
    """The model's outputs for ``inputs`` (an array or Tensor), in eval mode, batched.
    No bar by default (it is called inside training loops); ``progress=None`` shows one
    on a terminal (``chainrule eval`` of a convnet takes a while)."""
    data = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
    was_training = getattr(model, "training", False)
    _set_mode(model, False)
    starts = range(0, len(data), batch_size)
    try:
        with no_grad(), progress_bar(len(starts), "predicting", "batch", progress) as bar:
            outputs = []
            for i in starts:
                outputs.append(_forward(model, [as_tensor(data[i:i + batch_size])]).data)
                bar.update(1)
    finally:
        _set_mode(model, was_training)
    return np.concatenate(outputs) if outputs else np.empty((0,))


# --------------------------------------------------------------------------- checkpoints
def _generators(model: Any, loaders: Sequence[Any]) -> dict[str, np.random.Generator]:
    """Every NumPy random generator that training draws from, by a stable name."""
    found = {f"model.{name}": g for name, g in model.named_generators()} \
        if hasattr(model, "named_generators") else {}
    for i, loader in enumerate(loaders):
        for attr, value in vars(loader).items():
            if isinstance(value, np.random.Generator):
                found[f"loader{i}.{attr}"] = value
    return found


def save_checkpoint(path: str | os.PathLike, model: Any, optimizer: Any, epoch: int,
                    history: History, scheduler: Any = None,
                    loaders: Sequence[Any] = ()) -> Path:
    """Save everything needed to continue training after ``epoch`` (atomically)."""
    from chainrule.serialization import save

    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "loaders": [loader.state_dict() if hasattr(loader, "state_dict") else {}
                    for loader in loaders],
        "generators": {name: json.dumps(g.bit_generator.state)
                       for name, g in _generators(model, loaders).items()},
        "history": json.dumps(history.to_dict()),
    }
    path = Path(path)
    save(state, path)
    return path


def _restore_schedule(scheduler: Any, saved: dict[str, Any]) -> None:
    """Restore where the schedule was (its epoch, its starting rates); its shape (a
    cosine's ``T_max``, a step's ``step_size``...) stays the one it was built with. For
    the same settings that is the saved schedule exactly; for a run extended to more
    epochs, the schedule of the new length goes on from the epochs done (a cosine
    neither restarts at the full rate nor stays at 0)."""
    if not isinstance(scheduler, LRScheduler):
        scheduler.load_state_dict(saved)
        return
    position = ("last_epoch", "base_lrs", "_last_lr")
    shape = {k: v for k, v in scheduler.state_dict().items() if k not in position}
    scheduler.load_state_dict({**saved, **shape})
    scheduler.last_epoch -= 1
    scheduler.step()  # the rate of the current epoch under this shape


def load_checkpoint(path: str | os.PathLike, model: Any, optimizer: Any,
                    scheduler: Any = None, loaders: Sequence[Any] = ()
                    ) -> tuple[int, History]:
    """Restore what ``save_checkpoint`` saved; returns (epoch, history).

    Raises ``CheckpointError`` when the file cannot be read or does not fit ``model``
    and ``optimizer``.
    """
    from chainrule.serialization import load

    try:
        state = load(path)
        epoch, saved_history = int(state["epoch"]), str(state["history"])
        model.load_state_dict(state["model"])
    except (ValueError, KeyError, TypeError, FileNotFoundError) as error:
        raise CheckpointError(f"{path}: {error}") from error
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path}: the optimiser's state does not fit: {error}"
                              ) from error
    if scheduler is not None and state.get("scheduler"):
        _restore_schedule(scheduler, state["scheduler"])
    for loader, loader_state in zip(loaders, state.get("loaders", [])):
        if loader_state and hasattr(loader, "load_state_dict"):
            loader.load_state_dict(loader_state)
    generators = _generators(model, loaders)
    for name, saved in state.get("generators", {}).items():
        if name in generators:
            generators[name].bit_generator.state = json.loads(str(saved))
    return epoch, History.from_dict(json.loads(saved_history))


# --------------------------------------------------------------------------- fit
def fit(model: Any, loss_fn: Callable[..., Tensor], optimizer: Any, train_loader: Any,
        epochs: int, val_loader: Any = None, scheduler: Any = None,
        metrics: Sequence[str] = ("accuracy",), callbacks: Sequence[Callback] = (),
        progress: bool | None = None, checkpoint_dir: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None, clip_grad_norm: float | None = None,
        divergence_patience: int | None = 3) -> History:
    """Train ``model`` for ``epochs`` epochs; returns the ``History``.

    Each iteration: forward, ``loss_fn(output, target)``, ``optimizer.zero_grad()``,
    ``loss.backward()``, ``optimizer.step()``; a batch is ``(inputs..., targets)``, so a
    model of several inputs (a sequence-to-sequence one) gets them all. The scheduler
    (if any) steps once per epoch. ``metrics`` may contain ``"accuracy"``
    (classification), ``"perplexity"`` (language models: exp of the mean loss per token)
    or be empty (regression). The progress bar shows on a terminal unless
    ``progress=False``. ``clip_grad_norm``
    rescales the gradients to at most that joint norm before every step (as
    ``optim.clip_grad_norm_``). A model with a ``reset_state()`` method (a language
    model carrying its hidden state from window to window) is reset at the start of
    every epoch and every evaluation.

    A NaN or infinite loss raises ``TrainingDiverged``; so does a loss that diverges:
    an epoch's mean loss above ``DIVERGED_FACTOR`` (10) times the first batch's loss
    for ``divergence_patience`` epochs in a row, or above ``EXPLODED_FACTOR`` (10⁶)
    times it once (``divergence_patience=None`` checks only for NaN and inf). With
    ``checkpoint_dir``, a checkpoint is written atomically after every epoch;
    ``resume`` takes such a file (or its folder) and continues from the epoch after it,
    up to ``epochs`` in all. The scheduler given keeps its shape and takes the saved
    position: resuming a cosine schedule built for more epochs than the saved one
    continues along the longer cosine from the epochs done (``CosineAnnealingLR(opt,
    T_max=4)`` resumed after 2 epochs of a 2-epoch run gives epoch 3 the rate
    lr·(1 + cos(2π/4))/2).
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; available: {list(METRICS)}")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"clip_grad_norm must be a positive number, got {clip_grad_norm!r}")
    loaders = [train_loader] + ([val_loader] if val_loader is not None else [])
    history = History()
    start_epoch = 1
    if resume is not None:
        resume_path = Path(resume)
        if resume_path.is_dir():
            resume_path = resume_path / CHECKPOINT_NAME
        done, history = load_checkpoint(resume_path, model, optimizer, scheduler, loaders)
        start_epoch = done + 1
    iteration = len(history.iteration_loss)
    track_accuracy = "accuracy" in metrics

    for epoch in range(start_epoch, epochs + 1):
        started = time.perf_counter()
        _set_mode(model, True)
        _reset_state(model)
        bar = progress_bar(len(train_loader), f"epoch {epoch}/{epochs}", "batch", progress)
        loss_sum = 0.0
        correct = 0
        seen = 0
        try:
            for *inputs, targets in train_loader:
                output = _forward(model, inputs)
                loss = loss_fn(output, targets)
                loss_value = float(loss.item())
                iteration += 1
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(
                        f"the loss became {loss_value} at iteration {iteration} (epoch "
                        f"{epoch}): " + _advice(optimizer))
                optimizer.zero_grad()
                loss.backward()
                if clip_grad_norm is not None:
                    clip_grad_norm_(model.parameters(), clip_grad_norm)
                optimizer.step()
                n = _predictions_counted(output)
                loss_sum += loss_value * n
                seen += n
                if track_accuracy:
                    t = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
                    correct += int(np.sum(_class_predictions(output.data)
                                          == _class_labels(t, output.data)))
                history.iteration_loss.append(loss_value)
                for callback in callbacks:
                    callback.on_batch_end(iteration, loss_value)
                bar.update(1)
                if iteration % 10 == 0:
                    bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
        finally:
            bar.close()
        record: dict[str, float] = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1)}
        if track_accuracy:
            record["train_accuracy"] = correct / max(seen, 1)
        if "perplexity" in metrics:
            record["train_perplexity"] = perplexity(record["train_loss"])
        if val_loader is not None:
            result = evaluate(model, val_loader, loss_fn, metrics=metrics, progress=progress)
            record["val_loss"] = result["loss"]
            for name in metrics:
                record[f"val_{name}"] = result[name]
        record["lr"] = _current_lr(optimizer)
        if scheduler is not None:
            scheduler.step()
        record["seconds"] = time.perf_counter() - started
        history.epochs.append(record)
        _check_divergence(history, divergence_patience, optimizer)
        # before the checkpoint: what a callback adds to the record is saved with it
        stop = [callback.on_epoch_end(epoch, record) for callback in callbacks]
        if checkpoint_dir is not None:
            save_checkpoint(Path(checkpoint_dir) / CHECKPOINT_NAME, model, optimizer,
                            epoch, history, scheduler, loaders)
        if any(stop):
            break
    return history


def _advice(optimizer: Any) -> str:
    return (f"training diverged. Try a smaller learning rate (lr={_current_lr(optimizer)} "
            "now), gradient clipping (chainrule.optim.clip_grad_norm_), or normalised "
            "inputs.")


def _check_divergence(history: History, patience: int | None, optimizer: Any) -> None:
    """Raise ``TrainingDiverged`` when the epoch losses have run away from the first
    batch's loss (see ``fit``)."""
    if patience is None or not history.iteration_loss or not history.epochs:
        return
    start = abs(history.iteration_loss[0])
    losses = [row["train_loss"] for row in history.epochs]
    if start == 0:
        return
    latest = history.epochs[-1]
    if losses[-1] > EXPLODED_FACTOR * start:
        why = f"more than {EXPLODED_FACTOR:g} times"
    elif len(losses) >= patience and all(loss > DIVERGED_FACTOR * start
                                         for loss in losses[-patience:]):
        why = f"the last {patience} epochs all more than {DIVERGED_FACTOR:g} times"
    else:
        return
    raise TrainingDiverged(f"the mean loss reached {losses[-1]:.4g} in epoch "
                           f"{latest['epoch']}, {why} the first batch's loss "
                           f"({start:.4g}): " + _advice(optimizer))


def _current_lr(optimizer: Any) -> float:
    groups = getattr(optimizer, "param_groups", None)
    return float(groups[0]["lr"]) if groups else float("nan")
