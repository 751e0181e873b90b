"""``chainrule.plot``: every function writes a PNG; bad inputs fail with clear errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from chainrule import plot
from chainrule.train import History

PNG = b"\x89PNG"


def history() -> History:
    h = History()
    h.iteration_loss = list(2.3 * np.exp(-np.arange(120) / 40) + 0.1)
    h.epochs = [{"epoch": e, "train_loss": 1 / e, "train_accuracy": 1 - 0.5 / e,
                 "val_loss": 1.2 / e, "val_accuracy": 0.9 - 0.5 / e} for e in range(1, 4)]
    return h


rng = np.random.default_rng(0)
CASES = {
    "learning_curves": lambda p: plot.learning_curves(history(), p, smooth=5),
    "learning_curves_dict": lambda p: plot.learning_curves(history().to_dict(), p),
    "confusion_matrix": lambda p: plot.confusion_matrix(np.diag([5, 3, 4]) + 1, p,
                                                        class_names=["a", "b", "c"]),
    "misclassified": lambda p: plot.misclassified(rng.random((6, 16)), [0, 1, 2, 0, 1, 2],
                                                  [0, 2, 2, 1, 1, 0], p, image_shape=(4, 4)),
    "first_layer_weights": lambda p: plot.first_layer_weights(rng.standard_normal((16, 5)),
                                                              p, image_shape=(4, 4)),
    "filters": lambda p: plot.filters({"before": rng.standard_normal((4, 1, 3, 3)),
                                       "after": rng.standard_normal((4, 1, 3, 3))}, p),
    "filters_rgb": lambda p: plot.filters(rng.standard_normal((4, 3, 3, 3)), p),
    "activation_histograms": lambda p: plot.activation_histograms(
        {"std 0.01": {"layer 1": rng.random(50), "layer 2": rng.random(50)},
         "He": {"layer 1": rng.random(50), "layer 2": rng.random(50)}}, p),
    "loss_comparison": lambda p: plot.loss_comparison(
        {"SGD": rng.random(60), "Adam": rng.random(60)}, p, smooth=10),
    "line_panels": lambda p: plot.line_panels({"a": {"x": [0.1, 0.5], "y": [0.2, 0.3]},
                                               "b": {"x": [0.3, 0.4]}}, p),
    "hyperparameter_scatter": lambda p: plot.hyperparameter_scatter(
        [1e-3, 1e-2, 1e-4], [1e-6, 1e-5, 1e-7], [0.5, 0.9, 0.1], p),
    "attention": lambda p: plot.attention(rng.dirichlet(np.ones(12), 10),
                                          "june 5, 2008", list("2008-06-05"), p),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_function_writes_a_png_and_returns_its_path(tmp_path, name):
    path = tmp_path / "sub" / f"{name}.png"
    written = CASES[name](path)
    assert written == path
    assert path.read_bytes()[:4] == PNG and path.stat().st_size > 1000


def test_history_plot_calls_learning_curves(tmp_path):
    assert history().plot(tmp_path / "curve.png").read_bytes()[:4] == PNG


def test_misclassified_with_nothing_wrong_still_writes_a_picture(tmp_path):
    path = plot.misclassified(np.zeros((3, 4)), [1, 2, 0], [1, 2, 0], tmp_path / "m.png",
                              image_shape=(2, 2))
    assert path.read_bytes()[:4] == PNG


def test_moving_average_starts_at_the_first_value_and_averages_the_window():
    np.testing.assert_allclose(plot.moving_average([1, 3, 5, 7], 2), [1, 2, 4, 6])
    np.testing.assert_allclose(plot.moving_average([1, 3], 1), [1, 3])


@pytest.mark.parametrize("call, error, message", [
    (lambda p: plot.confusion_matrix(np.ones((2, 3)), p), ValueError, "square"),
    (lambda p: plot.confusion_matrix(-np.eye(2), p), ValueError, "negative"),
    (lambda p: plot.confusion_matrix(np.eye(3), p, class_names=["a"]), ValueError,
     "3 classes"),
    (lambda p: plot.misclassified(np.zeros((2, 4)), [0], [1, 0], p, image_shape=(2, 2)),
     ValueError, "one entry per sample"),
    (lambda p: plot.misclassified(np.zeros((2, 5)), [0, 1], [1, 0], p, image_shape=(2, 2)),
     ValueError, "image_shape"),
    (lambda p: plot.first_layer_weights(np.zeros((10, 3)), p, image_shape=(3, 3)),
     ValueError, "image_shape (3, 3) does not fit"),
    (lambda p: plot.filters(np.zeros((16, 5)), p), ValueError, "first_layer_weights"),
    (lambda p: plot.first_layer_weights(np.zeros((2, 3, 3, 3)), p, image_shape=(3, 3)),
     ValueError, "filters()"),
    (lambda p: plot.learning_curves([1, 2, 3], p), TypeError, "History"),
    (lambda p: plot.learning_curves(History(), p), ValueError, "empty"),
    (lambda p: plot.learning_curves(history(), p, smooth=-1), ValueError, "smooth"),
    (lambda p: plot.loss_comparison({}, p), TypeError, "non-empty"),
    (lambda p: plot.loss_comparison({"a": []}, p), ValueError, "empty"),
    (lambda p: plot.activation_histograms([1, 2], p), TypeError, "dict"),
    (lambda p: plot.line_panels({"a": {"b": [1, 2]}}, p, x=[1]), ValueError, "x has 1"),
    (lambda p: plot.hyperparameter_scatter([0.0], [1.0], [1.0], p), ValueError, "positive"),
    (lambda p: plot.attention(np.ones((3, 4)), "abc", "abc", p), ValueError,
     "(3, 3), got shape (3, 4)"),
    (lambda p: plot.attention(np.full((1, 1), np.nan), "a", "b", p), ValueError, "finite"),
    (lambda p: plot.attention(np.ones((1, 1)), [1], "b", p), TypeError, "list of strings"),
])
def test_bad_inputs_raise_clear_errors(tmp_path, call, error, message):
    with pytest.raises(error, match=None) as info:
        call(tmp_path / "x.png")
    assert message in str(info.value)


def test_an_unknown_file_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\.png"):
        plot.confusion_matrix(np.eye(2), tmp_path / "matrix.bmp2")


def test_import_chainrule_does_not_import_matplotlib():
    code = "import sys, chainrule, chainrule.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_a_language_models_curve_shows_perplexity_on_a_log_scale(tmp_path, monkeypatch):
    """The right panel of a language model's learning curve is its perplexity per epoch."""
    import matplotlib.figure

    h = History()
    h.iteration_loss = list(6 - np.arange(50) / 20)
    h.epochs = [{"epoch": e, "train_loss": 5.0 / e, "train_perplexity": float(np.exp(5 / e)),
                 "val_loss": 5.2 / e, "val_perplexity": float(np.exp(5.2 / e))}
                for e in range(1, 4)]
    seen = []
    original = matplotlib.figure.Figure.savefig

    def capture(fig, *args, **kwargs):
        seen.extend((ax.get_ylabel(), ax.get_yscale()) for ax in fig.axes)
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", capture)
    assert plot.learning_curves(h, tmp_path / "lm.png").read_bytes()[:4] == PNG
    assert ("perplexity", "log") in seen


def test_attention_rows_are_outputs_and_columns_inputs(tmp_path, monkeypatch):
    """The heat map shows the weights as given (rows: output tokens, columns: input
    tokens), white for 1, with the tokens as tick labels and spaces as dots."""
    import matplotlib.figure

    shown = {}
    save = matplotlib.figure.Figure.savefig

    def spy(fig, path, *args, **kwargs):
        ax = fig.axes[0]
        shown["image"] = ax.images[0].get_array()
        shown["cmap"] = ax.images[0].get_cmap().name
        shown["x"] = [t.get_text() for t in ax.get_xticklabels()]
        shown["y"] = [t.get_text() for t in ax.get_yticklabels()]
        return save(fig, path, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    weights = np.eye(3)[[2, 0]]  # output 1 looked at input 3, output 2 at input 1
    path = plot.attention(weights, "a b", ["X", "Y"], tmp_path / "attention.png")
    assert path.read_bytes()[:4] == PNG
    np.testing.assert_array_equal(shown["image"], weights)
    assert shown["x"] == ["a", "\u00b7", "b"] and shown["y"] == ["X", "Y"]
    assert shown["cmap"] == "Greys_r"
