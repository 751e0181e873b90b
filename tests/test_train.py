"""The training loop: history, evaluation, divergence stop, checkpoints and exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chainrule import nn, optim
from chainrule.data import DataLoader, TensorDataset
from chainrule.datasets import digits, sine
from chainrule.train import (
    CHECKPOINT_NAME,
    Callback,
    EarlyStopping,
    History,
    TrainingDiverged,
    accuracy,
    confusion_matrix,
    evaluate,
    fit,
    predict,
)


@pytest.fixture(scope="module")
def digit_data():
    x_train, y_train = digits("train")
    x_test, y_test = digits("test")
    return x_train[:400], y_train[:400], x_test[:200], y_test[:200]


def make_run(digit_data, seed=0, dropout=0.2):
    x_train, y_train, x_test, y_test = digit_data
    model = nn.MLP([64, 32, 10], activations="relu", dropout=dropout, seed=seed)
    opt = optim.Momentum(model.parameters(), lr=0.05)
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.9)
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=50, shuffle=True,
                       seed=seed)
    test = DataLoader(TensorDataset(x_test, y_test), batch_size=100)
    return model, opt, scheduler, train, test


def test_fit_learns_and_records_history(digit_data):
    model, opt, scheduler, train, test = make_run(digit_data)
    history = fit(model, nn.CrossEntropyLoss(), opt, train, epochs=5, val_loader=test,
                  scheduler=scheduler, progress=False)
    assert len(history.iteration_loss) == 5 * len(train)
    assert [row["epoch"] for row in history.epochs] == [1, 2, 3, 4, 5]
    assert history.train_loss.shape == (5,)
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_accuracy[-1] > 0.8
    # the scheduler stepped once per epoch: lr 0.05, 0.045, ...
    np.testing.assert_allclose(history.lr, 0.05 * 0.9 ** np.arange(5), rtol=1e-6)
    with pytest.raises(AttributeError, match="no column"):
        history.nonexistent  # noqa: B018


def test_evaluate_and_predict_agree(digit_data):
    model, opt, _, train, test = make_run(digit_data)
    fit(model, nn.CrossEntropyLoss(), opt, train, epochs=2, progress=False)
    result = evaluate(model, test, nn.CrossEntropyLoss(), num_classes=10)
    x_test, y_test = digit_data[2], digit_data[3]
    outputs = predict(model, x_test, batch_size=64)
    assert outputs.shape == (200, 10)
    assert result["accuracy"] == pytest.approx(np.mean(outputs.argmax(1) == y_test))
    assert result["confusion_matrix"].sum() == 200
    assert np.trace(result["confusion_matrix"]) == round(result["accuracy"] * 200)
    assert model.training, "evaluate must restore training mode"


def test_accuracy_and_confusion_matrix_by_hand():
    out = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy(out, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert accuracy(out, np.eye(2)[[1, 0, 0]]) == pytest.approx(2 / 3)
    assert accuracy(np.array([[0.9], [0.2]]), np.array([[1.0], [1.0]])) == 0.5
    np.testing.assert_array_equal(confusion_matrix(np.array([1, 0, 1]), np.array([1, 0, 0])),
                                  [[1, 1], [0, 1]])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_nan_loss_stops_with_advice(digit_data):
    model, _, _, train, _ = make_run(digit_data, dropout=0.0)
    opt = optim.SGD(model.parameters(), lr=1e12)
    with pytest.raises(TrainingDiverged, match=r"iteration \d+.*smaller learning rate"):
        fit(model, nn.CrossEntropyLoss(), opt, train, epochs=3, progress=False)


class ScaledLoss:
    """Cross-entropy times a factor chosen per epoch (``factors[epoch - 1]``): a loss
    that runs away on cue."""

    def __init__(self, factors):
        self.factors, self.epoch = factors, 1
        self.loss = nn.CrossEntropyLoss()

    def __call__(self, output, target):
        return self.loss(output, target) * float(self.factors[self.epoch - 1])


class NextEpoch(Callback):
    def __init__(self, scaled):
        self.scaled = scaled

    def on_epoch_end(self, epoch, record):
        self.scaled.epoch = epoch + 1


def fit_scaled(digit_data, factors, **kwargs):
    model, _, _, train, _ = make_run(digit_data, dropout=0.0)
    scaled = ScaledLoss(factors)
    opt = optim.SGD(model.parameters(), lr=1e-6)  # the factors, not learning, set the loss
    return fit(model, scaled, opt, train, epochs=len(factors), progress=False,
               callbacks=[NextEpoch(scaled)], **kwargs)


def test_a_loss_staying_far_above_its_start_stops_the_run(digit_data):
    with pytest.raises(TrainingDiverged, match=r"epoch 4, the last 3 epochs all more than "
                                               r"10 times.*smaller learning rate"):
        fit_scaled(digit_data, [1, 20, 20, 20, 20])


def test_a_loss_exploding_stops_the_run_at_once(digit_data):
    with pytest.raises(TrainingDiverged, match=r"epoch 2, more than 1e\+06 times"):
        fit_scaled(digit_data, [1, 1e7, 1, 1])


def test_a_loss_somewhat_above_its_start_or_high_briefly_is_not_divergence(digit_data):
    history = fit_scaled(digit_data, [1, 5, 5, 20, 20, 1, 5])
    assert len(history.epochs) == 7
    history = fit_scaled(digit_data, [1, 20, 20, 20], divergence_patience=None)
    assert len(history.epochs) == 4


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(digit_data, tmp_path):
    model, opt, scheduler, train, test = make_run(digit_data, seed=3)
    full = fit(model, nn.CrossEntropyLoss(), opt, train, epochs=4, val_loader=test,
               scheduler=scheduler, progress=False)
    expected = model.state_dict()

    # a run "killed" after epoch 2: fresh objects, then resume from its checkpoint
    model, opt, scheduler, train, test = make_run(digit_data, seed=3)
    fit(model, nn.CrossEntropyLoss(), opt, train, epochs=2, val_loader=test,
        scheduler=scheduler, progress=False, checkpoint_dir=tmp_path)
    assert (tmp_path / CHECKPOINT_NAME).exists()
    model, opt, scheduler, train, test = make_run(digit_data, seed=3)
    resumed = fit(model, nn.CrossEntropyLoss(), opt, train, epochs=4, val_loader=test,
                  scheduler=scheduler, progress=False, resume=tmp_path)

    for key, value in expected.items():
        np.testing.assert_array_equal(model.state_dict()[key], value, err_msg=key)
    assert resumed.iteration_loss == full.iteration_loss
    assert [r["epoch"] for r in resumed.epochs] == [1, 2, 3, 4]


def test_regression_without_metrics():
    x, y = sine(n=64, noise=0.0, seed=0)
    model = nn.MLP([1, 16, 1], activations=["tanh", "linear"], seed=0)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, seed=0)
    history = fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=0.01), loader,
                  epochs=20, metrics=(), progress=False)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert "train_accuracy" not in history.epochs[0]


def test_early_stopping_and_bad_arguments(digit_data):
    model, opt, _, train, test = make_run(digit_data)
    stopper = EarlyStopping(monitor="val_accuracy", patience=1)
    stopper.best = 2.0  # nothing can beat it: stop after the first epoch without gain
    history = fit(model, nn.CrossEntropyLoss(), opt, train, epochs=10, val_loader=test,
                  callbacks=[stopper], progress=False)
    assert len(history.epochs) == 1
    with pytest.raises(ValueError, match="unknown metrics"):
        fit(model, nn.CrossEntropyLoss(), opt, train, epochs=1, metrics=("f1",))
    with pytest.raises(ValueError, match="epochs"):
        fit(model, nn.CrossEntropyLoss(), opt, train, epochs=-1)


def test_history_files_round_trip(tmp_path):
    history = History([1.0, 0.5], [{"epoch": 1, "train_loss": 0.75, "lr": 0.1}])
    history.to_json(tmp_path / "h.json")
    history.to_csv(tmp_path / "h.csv")
    assert History.from_dict(json.loads((tmp_path / "h.json").read_text())) == history
    assert (tmp_path / "h.csv").read_text().splitlines() == ["epoch,train_loss,lr",
                                                             "1,0.75,0.1"]


def test_fit_clips_the_gradient_norm_before_every_step(digit_data):
    """With clip_grad_norm=c, SGD moves the parameters by at most lr·c per step."""
    x_train, y_train, _, _ = digit_data
    model = nn.MLP([64, 32, 10], activations="relu", seed=0)
    before = [p.data.copy() for p in model.parameters()]
    loader = DataLoader(TensorDataset(x_train[:50], y_train[:50]), batch_size=50)
    fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=1.0), loader,
        epochs=1, clip_grad_norm=1e-3, progress=False)
    step = np.sqrt(sum(((p.data - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert 0 < step <= 1e-3 * (1 + 1e-5)
    with pytest.raises(ValueError, match="clip_grad_norm must be a positive number"):
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=1.0), loader,
            epochs=1, clip_grad_norm=0.0, progress=False)


class CountingSequenceModel(nn.Module):
    """Logits (N, T, V) from a bias only; counts its calls since the last reset_state."""

    def __init__(self, vocab):
        super().__init__()
        self.bias = nn.Parameter(np.zeros(vocab, dtype=np.float32))
        self.calls_since_reset, self.resets = 0, 0

    def reset_state(self):
        self.calls_since_reset = 0
        self.resets += 1

    def forward(self, ids):
        self.calls_since_reset += 1
        zeros = np.zeros(ids.shape + self.bias.shape, dtype=np.float32)
        return self.bias + zeros


def test_sequence_loss_is_averaged_per_token_and_perplexity_reported():
    """(N, T, V) logits: every position counts once (a last, shorter window weighs
    less), perplexity = exp(mean loss), and the carried state is reset once per pass."""
    import math

    from chainrule.train import perplexity

    vocab = 4
    rng = np.random.default_rng(0)
    windows = [(rng.integers(0, vocab, (2, 5)), rng.integers(0, vocab, (2, 5))),
               (rng.integers(0, vocab, (2, 2)), rng.integers(0, vocab, (2, 2)))]
    model = CountingSequenceModel(vocab)
    result = evaluate(model, windows, nn.CrossEntropyLoss(), metrics=("perplexity",))
    assert result["samples"] == 14
    assert result["loss"] == pytest.approx(math.log(vocab), rel=1e-6)  # uniform: ln V
    assert result["perplexity"] == pytest.approx(vocab, rel=1e-5)
    assert model.resets == 1 and model.calls_since_reset == 2
    history = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                  windows, epochs=2, val_loader=windows, metrics=("perplexity",),
                  progress=False)
    assert model.resets == 1 + 2 * 2  # each epoch, each evaluation
    np.testing.assert_allclose(history.train_perplexity, np.exp(history.train_loss))
    np.testing.assert_allclose(history.val_perplexity, np.exp(history.val_loss))
    assert perplexity(1000.0) == math.inf
    with pytest.raises(ValueError, match="unknown metrics"):
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), windows,
            epochs=1, metrics=("bleu",), progress=False)
