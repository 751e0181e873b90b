"""Pictures of training: learning curves, confusion matrices, weights, activations.

Every function draws one figure, saves it to ``path`` (the format follows the suffix:
``.png``, ``.pdf``, ``.svg``) and returns the ``Path`` written. Nothing is ever shown
on screen, so the functions work the same in scripts, tests and on servers without a
display.

matplotlib is imported inside the functions, not at the top of the module: importing
it takes a noticeable fraction of a second, which ``import chainrule`` should not pay.
Figures are drawn on matplotlib's Agg canvas directly (``Figure`` rather than
``pyplot``), so no global plotting state is touched and no window can open.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule._atomic import atomic_writer

__all__ = [
    "moving_average",
    "learning_curves",
    "confusion_matrix",
    "misclassified",
    "first_layer_weights",
    "filters",
    "activation_histograms",
    "loss_comparison",
    "line_panels",
    "hyperparameter_scatter",
    "gradient_flow",
    "attention",
]

PathLike = str | os.PathLike


# --------------------------------------------------------------------------- helpers
def _figure(width: float, height: float) -> Any:
    """A new figure on the Agg canvas (never shown, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf", ".svg", ".jpg", ".jpeg"):
        raise ValueError(f"cannot tell the image format of {str(path)!r}: give a file name "
                         "ending in .png, .pdf, .svg or .jpg")
    with atomic_writer(path) as f:  # never a half-written picture, whoever else writes it
        fig.savefig(f, format=path.suffix.lower().lstrip(".").replace("jpg", "jpeg"))
    return path


def _array(value: Any, name: str) -> np.ndarray:
    """``value`` (a Tensor, Parameter, list or array) as a float64 NumPy array."""
    data = getattr(value, "data", value)
    try:
        array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers (an array, list or Tensor), got "
                        f"{type(value).__name__}") from None
    return array


def moving_average(values: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average: point i is the mean of the last ``window`` values up to
    i (fewer at the start, so the curve begins at the first value, not after a gap)."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or values.size == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def _window(smooth: int | None, n: int) -> int:
    """The smoothing window: ``smooth`` itself, or by default about 2% of the curve."""
    if smooth is None:
        return max(1, n // 50)
    if isinstance(smooth, bool) or not isinstance(smooth, (int, np.integer)) or smooth < 0:
        raise ValueError(f"smooth must be a whole number of iterations >= 0 (0 or 1: no "
                         f"smoothing) or None (automatic), got {smooth!r}")
    return int(smooth)


def _grid(count: int, max_columns: int) -> tuple[int, int]:
    """Rows and columns of an almost square grid holding ``count`` cells."""
    columns = max(1, min(max_columns, math.ceil(math.sqrt(count))))
    return math.ceil(count / columns), columns


def _image_axes(fig: Any, rows: int, columns: int) -> list[Any]:
    axes = fig.subplots(rows, columns, squeeze=False).ravel().tolist()
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    return axes


def _as_image(flat: np.ndarray, image_shape: tuple[int, ...]) -> tuple[np.ndarray, str | None]:
    """One sample as something ``imshow`` draws, and the colour map: (H, W) grey,
    (1, H, W) grey, (3, H, W) or (H, W, 3) colour."""
    image = flat.reshape(image_shape)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.moveaxis(image, 0, -1)  # channels last, as imshow wants
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return image, ("gray_r" if image.ndim == 2 else None)


def _check_image_shape(image_shape: Any, size: int, what: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in image_shape)
    except TypeError:
        raise TypeError(f"image_shape must be a tuple like (28, 28), got "
                        f"{image_shape!r}") from None
    if not 2 <= len(shape) <= 3 or math.prod(shape) != size:
        raise ValueError(f"image_shape {shape} does not fit {what} of {size} values: give "
                         f"(height, width) or (channels, height, width) with "
                         f"{size} values in all (e.g. {_square_hint(size)})")
    return shape


def _square_hint(size: int) -> str:
    side = math.isqrt(size)
    return f"({side}, {side})" if side * side == size else f"(1, {size})"


# --------------------------------------------------------------------------- learning curves
def _history_parts(history: Any) -> tuple[list[float], list[dict[str, float]]]:
    """Per-iteration losses and per-epoch records of a ``History`` or its ``to_dict()``."""
    if isinstance(history, Mapping):
        losses, epochs = history.get("iteration_loss", []), history.get("epochs", [])
    elif hasattr(history, "iteration_loss") and hasattr(history, "epochs"):
        losses, epochs = history.iteration_loss, history.epochs
    else:
        raise TypeError(f"learning_curves needs a chainrule.train.History (or its "
                        f"to_dict()), got {type(history).__name__}")
    return list(losses), list(epochs)


def learning_curves(history: Any, path: PathLike, smooth: int | None = None,
                    title: str | None = None) -> Path:
    """The loss of every iteration with its moving average (left) and the accuracy per
    epoch on training and validation data (right).

    ``history`` is a ``chainrule.train.History`` (or its ``to_dict()``); ``smooth`` is
    the moving-average window in iterations (None: about 2% of the run; 0 or 1: none).
    A language model's history shows its perplexity per epoch instead (on a log
    scale), and a regression's, without either, the per-epoch losses.
    """
    losses, epochs = _history_parts(history)
    if not losses and not epochs:
        raise ValueError("the history is empty: train for at least one iteration first")
    has_accuracy = any("train_accuracy" in row or "val_accuracy" in row for row in epochs)
    has_perplexity = not has_accuracy and any(
        "train_perplexity" in row or "val_perplexity" in row for row in epochs)
    metric = "accuracy" if has_accuracy else "perplexity" if has_perplexity else "loss"
    per_epoch = (f"train_{metric}", f"val_{metric}")
    panels = 2 if epochs else 1
    fig = _figure(5.2 * panels, 3.8)
    axes = fig.subplots(1, panels, squeeze=False)[0]

    ax = axes[0]
    if losses:
        iterations = np.arange(1, len(losses) + 1)
        window = _window(smooth, len(losses))
        # Faint when a moving average is drawn over it, solid when it is the only line.
        ax.plot(iterations, losses, color="tab:blue", alpha=0.25 if window > 1 else 1.0,
                linewidth=0.8 if window > 1 else 1.5, label="each iteration")
        if window > 1:
            ax.plot(iterations, moving_average(losses, window), color="tab:blue",
                    linewidth=1.8, label=f"moving average of {window}")
        ax.legend(loc="upper right")
    else:
        ax.text(0.5, 0.5, "no per-iteration losses recorded", ha="center",
                va="center", transform=ax.transAxes)
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    ax.set_title("loss per mini-batch")
    ax.grid(alpha=0.3)

    if epochs:
        ax = axes[1]
        numbers = [row.get("epoch", i + 1) for i, row in enumerate(epochs)]
        styles = {"train": ("tab:blue", "o", "training"), "val": ("tab:orange", "s",
                                                                  "validation")}
        for column in per_epoch:
            values = [row.get(column, np.nan) for row in epochs]
            if np.all(np.isnan(np.asarray(values, dtype=np.float64))):
                continue
            color, marker, label = styles[column.split("_")[0]]
            ax.plot(numbers, values, color=color, marker=marker,
                    markersize=3 if len(numbers) < 40 else 0, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per epoch")
        if has_accuracy:
            ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
        if has_perplexity:
            ax.set_yscale("log")
        ax.legend(loc="lower right" if has_accuracy else "upper right")
        ax.grid(alpha=0.3)
        if len(numbers) < 15:
            ax.set_xticks(numbers)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------- classification
def confusion_matrix(matrix: Any, path: PathLike,
                     class_names: Sequence[str] | None = None,
                     title: str | None = None) -> Path:
    """Counts of true class (rows) against predicted class (columns).

    Cells are coloured by the share of their row (so classes of different sizes compare
    fairly; on a power scale, so that small confusions show) and labelled with the
    counts; the title gives the overall accuracy.
    """
    counts = _array(matrix, "matrix")
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.size == 0:
        raise ValueError(f"a confusion matrix is square (classes × classes), got shape "
                         f"{counts.shape}")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError("a confusion matrix holds counts: no negative or non-finite values")
    n = counts.shape[0]
    names = _class_names(class_names, n)
    row_sums = counts.sum(axis=1, keepdims=True)
    shares = counts / np.maximum(row_sums, 1)
    side = max(4.5, 0.5 * n + 2.5)
    fig = _figure(side + 0.8, side)
    ax = fig.subplots()
    from matplotlib.colors import PowerNorm

    # A power scale stretches the small shares, so that a 1% confusion is visible next
    # to a 97% diagonal.
    image = ax.imshow(shares, cmap="Blues", norm=PowerNorm(gamma=0.4, vmin=0.0, vmax=1.0))
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    font = 9 if n <= 12 else 6 if n <= 25 else 0
    if font:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(j, i, f"{counts[i, j]:g}", ha="center", va="center",
                            fontsize=font,
                            color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), names, rotation=45 if max(map(len, names)) > 2 else 0,
                  ha="right" if max(map(len, names)) > 2 else "center")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = counts.sum()
    accuracy = np.trace(counts) / total if total else float("nan")
    ax.set_title(title or f"confusion matrix: accuracy {accuracy:.2%} of {total:,.0f}")
    return _save(fig, path)


def _class_names(class_names: Sequence[str] | None, n: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(n)]
    names = [str(name) for name in class_names]
    if len(names) < n:
        raise ValueError(f"class_names has {len(names)} names, but there are {n} classes")
    return names


def misclassified(images: Any, true: Any, predicted: Any, path: PathLike,
                  image_shape: Sequence[int] = (28, 28),
                  class_names: Sequence[str] | None = None, max_images: int = 36) -> Path:
    """A grid of the samples whose predicted class differs from the true one, each
    titled "true → predicted".

    ``images`` has one row per sample (flat or already shaped); samples that were
    classified correctly are skipped, so all test images may be passed. At most
    ``max_images`` are drawn, in their original order.
    """
    pictures = _array(images, "images")
    true = np.asarray(getattr(true, "data", true)).reshape(-1)
    predicted = np.asarray(getattr(predicted, "data", predicted)).reshape(-1)
    if pictures.ndim == 0 or not len(pictures) == len(true) == len(predicted):
        raise ValueError(f"images, true and predicted need one entry per sample, got "
                         f"{len(pictures) if pictures.ndim else 0}, {len(true)} and "
                         f"{len(predicted)}")
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise ValueError(f"max_images must be a positive int, got {max_images!r}")
    pictures = pictures.reshape(len(pictures), -1)
    shape = _check_image_shape(image_shape, pictures.shape[1], "an image")
    wrong = np.flatnonzero(true != predicted)
    chosen = wrong[:max_images]
    names = _class_names(class_names, int(max(true.max(initial=0),
                                              predicted.max(initial=0))) + 1)
    if not chosen.size:
        fig = _figure(4, 2)
        fig.text(0.5, 0.5, f"all {len(true):,} samples were classified correctly",
                 ha="center", va="center")
        return _save(fig, path)
    rows, columns = _grid(len(chosen), 9)
    fig = _figure(1.25 * columns, 1.4 * rows + 0.5)
    axes = _image_axes(fig, rows, columns)
    for ax, index in zip(axes, chosen):
        image, cmap = _as_image(pictures[index], shape)
        ax.imshow(image, cmap=cmap)
        ax.set_title(f"{names[true[index]]} → {names[predicted[index]]}", fontsize=9,
                     color="tab:red")
    for ax in axes[len(chosen):]:
        ax.set_visible(False)
    shown = f"the first {len(chosen)} of " if len(chosen) < len(wrong) else ""
    fig.suptitle(f"{shown}{len(wrong):,} misclassified of {len(true):,} (true → predicted)")
    return _save(fig, path)


# --------------------------------------------------------------------------- weights
def _signed_image_grid(fig: Any, images: list[np.ndarray], rows: int, columns: int,
                       labels: list[str] | None = None) -> tuple[Any, list[Any]]:
    """Draw weight images with one colour scale symmetric around 0 (red +, blue -), so
    that equal colours mean equal weights across the grid; returns the last image."""
    limit = max(float(np.max(np.abs(image))) for image in images) or 1.0
    axes = _image_axes(fig, rows, columns)
    drawn = None
    for i, (ax, image) in enumerate(zip(axes, images)):
        drawn = ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
        if labels:
            ax.set_title(labels[i], fontsize=7)
    for ax in axes[len(images):]:
        ax.set_visible(False)
    return drawn, axes


def first_layer_weights(weight: Any, path: PathLike, image_shape: Sequence[int],
                        max_units: int = 100, title: str | None = None) -> Path:
    """The weights of a first ``Linear`` layer, shape (in_features, out_features): the
    column of each hidden unit drawn as an image of the input, showing which pixels
    excite (red) or inhibit (blue) it."""
    w = _array(weight, "weight")
    if w.ndim != 2:
        raise ValueError(f"first_layer_weights needs a Linear weight of shape (in_features, "
                         f"out_features), got shape {w.shape}; for convolution weights "
                         "use filters()")
    shape = _check_image_shape(image_shape, w.shape[0], "a weight column (in_features)")
    units = min(w.shape[1], max_units)
    images = [_as_image(w[:, j], shape)[0] for j in range(units)]
    if images[0].ndim == 3:  # colour inputs: show the mean over channels
        images = [image.mean(axis=-1) for image in images]
    rows, columns = _grid(units, 10)
    fig = _figure(1.0 * columns + 1.0, 1.0 * rows + 0.6)
    drawn, axes = _signed_image_grid(fig, images, rows, columns)
    fig.colorbar(drawn, ax=axes, shrink=0.6, label="weight")
    shown = f" (first {units} of {w.shape[1]} units)" if units < w.shape[1] else ""
    fig.suptitle(title or f"first-layer weights: one image per hidden unit{shown}")
    return _save(fig, path)


def filters(weight: Any, path: PathLike, max_filters: int = 64,
            title: str | None = None) -> Path:
    """Convolution filters, weight shape (out_channels, in_channels, kh, kw), as a grid.

    ``weight`` may also be a dict of such weights, e.g. ``{"before training": w0,
    "after training": w1}``, drawn side by side for comparison. One input channel is
    drawn in grey, three as colour, more as one row per filter with a column per input
    channel. As in the textbook, each filter is stretched over the whole range (grey:
    white = its smallest weight, black = its largest), so that its pattern shows
    whatever its scale; the title gives the weights' overall spread.
    """
    groups = dict(weight) if isinstance(weight, Mapping) else {"": weight}
    if not groups:
        raise ValueError("filters needs at least one weight")
    arrays = {}
    for name, w in groups.items():
        array = _array(w, f"weight {name!r}" if name else "weight")
        if array.ndim != 4:
            raise ValueError(f"convolution weights have shape (out_channels, in_channels, "
                             f"kh, kw), got shape {array.shape}"
                             + (f" for {name!r}" if name else "")
                             + ("; for a Linear weight use first_layer_weights()"
                                if array.ndim == 2 else ""))
        arrays[name] = array[:max_filters]
    panels = []
    for name, w in arrays.items():
        out_c, in_c = w.shape[:2]
        if in_c == 3:
            images = [np.moveaxis(f, 0, -1) for f in w]
            cells, columns = out_c, _grid(out_c, 8)[1]
        elif in_c == 1:
            images = [f[0] for f in w]
            cells, columns = out_c, _grid(out_c, 8)[1]
        else:
            in_shown = min(in_c, 8)
            images = [w[o, i] for o in range(min(out_c, 16)) for i in range(in_shown)]
            cells, columns = len(images), in_shown
        panels.append((name, images, math.ceil(cells / columns), columns, w))
    total_columns = sum(p[3] for p in panels)
    max_rows = max(p[2] for p in panels)
    fig = _figure(0.9 * total_columns + 0.8 * len(panels), 0.9 * max_rows + 1.0)
    subs = fig.subfigures(1, len(panels), width_ratios=[p[3] for p in panels],
                          squeeze=False)[0]
    for sub, (name, images, rows, columns, w) in zip(subs, panels):
        axes = _image_axes(sub, rows, columns)
        if images[0].ndim == 3:  # RGB: stretch each filter to [0, 1] to see its colours
            for ax, image in zip(axes, images):
                low, high = image.min(), image.max()
                ax.imshow((image - low) / (high - low or 1.0))
        else:
            for ax, image in zip(axes, images):  # each stretched from white to black
                ax.imshow(image, cmap="gray_r")
        for ax in axes[len(images):]:
            ax.set_visible(False)
        shape = "×".join(map(str, w.shape))
        layout = ""
        if in_c not in (1, 3):  # say what the rows and columns are
            layout = (f"\nrows: filters{f' (first {min(out_c, 16)})' if out_c > 16 else ''}"
                      f", columns: input channels"
                      f"{f' (first {columns} of {in_c})' if in_c > columns else ''}")
        spread = f", weight std {float(np.std(w)):.2g}"
        heading = f"{name}\n{shape}{spread}" if name else f"filters {shape}{spread}"
        sub.suptitle(heading + layout, fontsize=10)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------- experiments
def activation_histograms(activations: Mapping[str, Any], path: PathLike, bins: int = 30,
                          title: str | None = None, skip_zeros: bool | None = None) -> Path:
    """Histograms of the activations of each layer, side by side.

    ``activations`` maps a layer name to its activation values (any shape), as in the
    weight-initialisation experiment; or maps a setting (e.g. "std 0.01", "He") to such
    a dict, giving one row of histograms per setting with shared axes, so that vanishing
    or exploding activations show at a glance.

    After ReLU about half of the values are exactly 0; that one bar would dwarf the
    rest, so exact zeros are left out (and their share written on each panel) when
    ``skip_zeros`` is True, or when None and over a fifth of all values are zero. The
    x axis ends at the 99.5th percentile of all values, so that a few outliers do not
    squash the view (the values beyond it are not drawn; each panel's std counts them).
    """
    if not isinstance(activations, Mapping) or not activations:
        raise TypeError("activations must be a non-empty dict: layer name → array, or "
                        "setting → {layer name → array}")
    nested = all(isinstance(v, Mapping) for v in activations.values())
    rows = dict(activations) if nested else {"": activations}
    for setting, layers in rows.items():
        if not layers:
            raise ValueError(f"no layers given for {setting!r}")
    values = {s: {k: _array(v, f"activations {k!r}").ravel() for k, v in layers.items()}
              for s, layers in rows.items()}
    everything = np.concatenate([a for layers in values.values() for a in layers.values()])
    finite = everything[np.isfinite(everything)]
    if finite.size == 0:
        raise ValueError("the activations contain no finite values")
    if skip_zeros is None:
        skip_zeros = bool(np.mean(finite == 0.0) > 0.2)
    shown = finite[finite != 0.0] if skip_zeros else finite
    low, high = (float(np.percentile(shown, 0.5)), float(np.percentile(shown, 99.5))) \
        if shown.size else (0.0, 1.0)
    if low >= 0.0 and high <= 1.0:
        low, high = 0.0, 1.0  # sigmoid-like: the whole output range, as in the textbook
    elif low >= 0.0:
        low = 0.0
    if high <= low:
        high = low + 1.0
    columns = max(len(layers) for layers in values.values())
    fig = _figure(2.3 * columns + 0.6, 2.1 * len(values) + 0.5)
    axes = fig.subplots(len(values), columns, squeeze=False, sharex=True, sharey="row")
    for r, (setting, layers) in enumerate(values.items()):
        for c in range(columns):
            ax = axes[r][c]
            if c >= len(layers):
                ax.set_visible(False)
                continue
            name, data = list(layers.items())[c]
            data = data[np.isfinite(data)]
            note = f"std {np.std(data):.3g}" if data.size else "no finite values"
            if skip_zeros:
                note += f"\nzeros {np.mean(data == 0.0):.0%} (not shown)"
                data = data[data != 0.0]
            ax.hist(data, bins=bins, range=(low, high), color="tab:blue")
            ax.set_title(name, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{setting}\ncount" if setting else "count")
            ax.text(0.97, 0.95, note, ha="right", va="top", transform=ax.transAxes,
                    fontsize=7, color="0.3")
        for ax in axes[r]:
            ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("activation", fontsize=8)
    fig.suptitle(title or "activations of each layer")
    return _save(fig, path)


def _curves_axes(ax: Any, curves: Mapping[str, Any], smooth: int | None,
                 raw_alpha: float = 0.15) -> None:
    """Draw each curve (raw, faint) with its moving average (solid) on ``ax``."""
    colors = [f"C{i}" for i in range(10)]
    for i, (name, values) in enumerate(curves.items()):
        y = _array(values, f"curve {name!r}").ravel()
        if y.size == 0:
            raise ValueError(f"curve {name!r} is empty")
        x = np.arange(1, y.size + 1)
        window = _window(smooth, y.size)
        color = colors[i % len(colors)]
        if window > 1:
            ax.plot(x, y, color=color, alpha=raw_alpha, linewidth=0.7)
            ax.plot(x, moving_average(y, window), color=color, linewidth=1.8, label=name)
        else:
            ax.plot(x, y, color=color, linewidth=1.5, marker="o" if y.size < 30 else None,
                    markersize=3, label=name)


def loss_comparison(curves: Mapping[str, Any], path: PathLike, smooth: int | None = None,
                    title: str | None = None, log_scale: bool = False) -> Path:
    """Per-iteration losses of several runs on one plot (the optimiser experiment):
    ``curves`` maps a name ("SGD", "Adam") to its losses. Each run is drawn faintly as
    is, and solid as a moving average of ``smooth`` iterations (None: about 2%)."""
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError("curves must be a non-empty dict: name → per-iteration losses")
    fig = _figure(7.0, 4.5)
    ax = fig.subplots()
    _curves_axes(ax, curves, smooth)
    ends = [float(np.nanmax(_array(v, "curve")[: max(1, len(v) // 20)])) for v in
            curves.values()]
    if not log_scale and all(np.isfinite(ends)):
        # Start the view a little above the first losses: a run that explodes later
        # would otherwise squash every curve to a flat line.
        ax.set_ylim(0.0, 1.1 * max(ends))
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    ax.legend()
    ax.grid(alpha=0.3)
    window = _window(smooth, max(len(v) for v in curves.values()))
    ax.set_title(title or ("training loss" + (f" (moving average of {window} iterations)"
                                              if window > 1 else "")))
    return _save(fig, path)


def line_panels(panels: Mapping[str, Mapping[str, Any]], path: PathLike,
                x: Sequence[float] | None = None, xlabel: str = "epoch",
                ylabel: str = "accuracy", title: str | None = None, max_columns: int = 4,
                ylim: tuple[float, float] | None = None,
                styles: Mapping[str, str] | None = None) -> Path:
    """A grid of small plots with shared axes: ``panels`` maps each panel's title to its
    curves (label → values), e.g. batch norm on/off for each weight scale. ``x`` gives
    the positions of the values (by default 1, 2, 3, ...); ``styles`` optionally maps a
    label to a matplotlib line style ("--")."""
    if not isinstance(panels, Mapping) or not panels:
        raise TypeError("panels must be a non-empty dict: panel title → {label → values}")
    columns = min(len(panels), max_columns)  # fill rows first: wide figures read well
    rows = math.ceil(len(panels) / columns)
    fig = _figure(3.0 * columns + 0.5, 2.4 * rows + 0.8)
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).ravel()
    styles = dict(styles or {})
    labels: dict[str, Any] = {}
    for ax, (panel, curves) in zip(axes, panels.items()):
        for i, (label, values) in enumerate(curves.items()):
            y = _array(values, f"curve {label!r}").ravel()
            positions = np.arange(1, y.size + 1) if x is None else _array(x, "x").ravel()
            if positions.size != y.size:
                raise ValueError(f"curve {label!r} of panel {panel!r} has {y.size} values "
                                 f"but x has {positions.size}")
            (line,) = ax.plot(positions, y, color=f"C{i % 10}",
                              linestyle=styles.get(label, "-"), linewidth=1.4)
            labels.setdefault(label, line)
        ax.set_title(panel, fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes.reshape(rows, columns)[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in axes.reshape(rows, columns)[-1]:
        ax.set_xlabel(xlabel, fontsize=8)
    if ylim is not None:
        axes[0].set_ylim(*ylim)
    fig.legend(list(labels.values()), list(labels), loc="outside lower center",
               ncols=min(len(labels), 4))
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def hyperparameter_scatter(lr: Any, weight_decay: Any, score: Any, path: PathLike,
                           score_name: str = "validation accuracy",
                           title: str | None = None) -> Path:
    """The random search's trials at (learning rate, weight decay) on log axes, coloured
    by ``score``; the best trial is circled. Shows where the good region lies, which is
    where to search next."""
    x, y, s = (_array(v, n).ravel() for v, n in ((lr, "lr"), (weight_decay, "weight_decay"),
                                               (score, "score")))
    if not (x.size == y.size == s.size) or x.size == 0:
        raise ValueError(f"lr, weight_decay and score need one value per trial, got "
                         f"{x.size}, {y.size} and {s.size}")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("learning rates and weight decays must be positive (log axes)")
    fig = _figure(6.0, 4.5)
    ax = fig.subplots()
    points = ax.scatter(x, y, c=s, cmap="viridis", s=40, edgecolors="0.3", linewidths=0.5)
    best = int(np.nanargmax(s))
    ax.scatter([x[best]], [y[best]], s=180, facecolors="none", edgecolors="tab:red",
               linewidths=1.5, label=f"best: {score_name} {s[best]:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("weight decay")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.colorbar(points, ax=ax, label=score_name)
    ax.set_title(title or f"random search: {x.size} trials")
    return _save(fig, path)


def gradient_flow(norms: Mapping[str, Any], path: PathLike,
                  runs: Mapping[str, Mapping[str, Any]] | None = None,
                  max_norm: float | None = None, title: str | None = None) -> Path:
    """Gradients through time (the vanishing-gradients experiment).

    Left: for each setting in ``norms`` (label → gradient norms at distance 0, 1, 2, ...
    from the loss) the norm reaching each time step, on a log axis, where geometric
    vanishing or exploding is a straight line. ``runs``, if given (label → {"grad
    norm": per-iteration values, "loss": per-iteration values}), adds two panels: the
    gradient norm before clipping, with ``max_norm`` (the clipping threshold) dashed,
    and the training loss, both per iteration on log axes. A run whose values become inf
    or NaN (it diverged) is drawn up to its last finite value and marked there with ×.
    """
    if not isinstance(norms, Mapping) or not norms:
        raise TypeError("norms must be a non-empty dict: label → gradient norm at distance "
                        "0, 1, 2, ...")
    runs = dict(runs or {})
    for label, run in runs.items():
        if not isinstance(run, Mapping) or not {"grad norm", "loss"} <= set(run):
            raise TypeError(f"run {label!r} must be a dict with the per-iteration lists "
                            "'grad norm' and 'loss'")
    fig = _figure(5.0 * (3 if runs else 1) + 0.4, 4.2)
    axes = fig.subplots(1, 3 if runs else 1, squeeze=False)[0]
    ax = axes[0]
    for i, (label, values) in enumerate(norms.items()):
        y = _array(values, f"norms {label!r}").ravel()
        ax.plot(np.arange(y.size), y, color=f"C{i % 10}", linewidth=1.6, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("distance from the loss, T − t (steps)")
    ax.set_ylabel("mean ‖∂L/∂x_t‖")
    ax.set_title("gradient reaching each time step", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    curves = {label: {key: _array(run[key], f"{key} of {label!r}").ravel()
                       for key in ("grad norm", "loss")} for label, run in runs.items()}
    for label, run in curves.items():
        if run["grad norm"].size != run["loss"].size:
            raise ValueError(f"run {label!r} has {run['grad norm'].size} gradient norms but "
                             f"{run['loss'].size} losses: give one of each per iteration")
    for ax, key, ylabel in zip(axes[1:], ("grad norm", "loss"),
                               ("gradient norm before clipping", "training loss")):
        for i, (label, run) in enumerate(curves.items()):
            # a run stops at its first inf or NaN, in either of its curves
            bad = np.flatnonzero(~(np.isfinite(run["grad norm"]) & np.isfinite(run["loss"])))
            stop = int(bad[0]) if bad.size else None
            y = run[key] if stop is None else run[key][:stop + 1]
            y = y[np.isfinite(y)]  # (only the value at the stop can be inf or NaN)
            color = f"C{(i + len(norms)) % 10}"
            ax.plot(np.arange(1, y.size + 1), y, color=color, linewidth=1.2, label=label)
            if stop is not None and y.size:  # diverged: mark where the curve stops
                ax.plot([y.size], [y[-1]], marker="x", color=color, markersize=9,
                        markeredgewidth=2)
                ax.annotate(f"{run[key][stop]:.3g} at iteration {stop + 1}",
                            (y.size, y[-1]), textcoords="offset points", xytext=(6, -4),
                            fontsize=8, color=color)
        if key == "grad norm" and max_norm is not None:
            ax.axhline(max_norm, color="0.4", linestyle="--", linewidth=1.0,
                       label=f"clipping threshold {max_norm:g}")
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel + " per iteration", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------- attention
def _token_labels(tokens: Sequence[str], what: str) -> list[str]:
    tokens = list(tokens) if isinstance(tokens, str) else tokens  # a string: its characters
    if not isinstance(tokens, Sequence) or not all(isinstance(t, str) for t in tokens):
        raise TypeError(f"{what} must be a string or a list of strings (one a token)")
    return ["\u00b7" if t == " " else t for t in tokens]  # a space shows as a middle dot


def attention(weights: Any, source_tokens: Sequence[str] | str,
              target_tokens: Sequence[str] | str, path: PathLike,
              title: str | None = None) -> Path:
    """Where a sequence-to-sequence model looked: the attention weights (T_out, T_in)
    as a heat map, one row per output token (``target_tokens``), one column per input
    token (``source_tokens``), white for a weight of 1 and black for 0, as in the book
    "Deep Learning from Scratch 2" (fig. 8-26). Tokens may be given as one string of
    characters; spaces show as middle dots.
    """
    matrix = _array(weights, "weights")
    sources = _token_labels(source_tokens, "source_tokens")
    targets = _token_labels(target_tokens, "target_tokens")
    if matrix.ndim != 2 or matrix.shape != (len(targets), len(sources)):
        raise ValueError(f"weights must have one row per target token and one column per "
                         f"source token, ({len(targets)}, {len(sources)}), got shape "
                         f"{matrix.shape}")
    if matrix.size == 0 or not np.all(np.isfinite(matrix)):
        raise ValueError("weights must be finite numbers (attention weights lie in [0, 1])")
    fig = _figure(max(3.0, 0.28 * len(sources) + 1.6), max(2.5, 0.32 * len(targets) + 1.2))
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Greys_r", vmin=0.0, vmax=1.0, aspect="auto",
                      interpolation="nearest")
    ax.set_xticks(range(len(sources)), sources)
    ax.set_yticks(range(len(targets)), targets)
    ax.tick_params(length=0)
    ax.set_xlabel("input")
    ax.set_ylabel("output")
    fig.colorbar(image, ax=ax, shrink=0.8, label="attention weight")
    if title:
        ax.set_title(title)
    return _save(fig, path)
