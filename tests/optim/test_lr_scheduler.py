"""Learning-rate schedulers: sequences against torch.optim.lr_scheduler, state, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from chainrule.optim import (
    SGD,
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    LinearWarmup,
    StepLR,
)
from chainrule.tensor import Tensor

LRS = (0.1, 0.02)  # two parameter groups with different base rates
EPOCHS = 25


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def make_optimizer() -> SGD:
    groups = [{"params": [Tensor(np.zeros(2), requires_grad=True)], "lr": lr} for lr in LRS]
    return SGD(groups, lr=1.0)


def our_sequence(make_scheduler) -> list[list[float]]:
    opt = make_optimizer()
    scheduler = make_scheduler(opt)
    lrs = [scheduler.get_last_lr()]
    for _ in range(EPOCHS):
        scheduler.step()
        assert [g["lr"] for g in opt.param_groups] == scheduler.get_last_lr()
        lrs.append(scheduler.get_last_lr())
    return lrs


def torch_sequence(torch, name: str, kwargs: dict) -> list[list[float]]:
    groups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in LRS]
    opt = torch.optim.SGD(groups, lr=1.0)
    scheduler = getattr(torch.optim.lr_scheduler, name)(opt, **kwargs)
    lrs = [scheduler.get_last_lr()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(EPOCHS):
            opt.step()
            scheduler.step()
            lrs.append(scheduler.get_last_lr())
    return lrs


@pytest.mark.parametrize(("cls", "torch_name", "kwargs"), [
    (StepLR, "StepLR", dict(step_size=3, gamma=0.5)),
    (StepLR, "StepLR", dict(step_size=1)),
    (ExponentialLR, "ExponentialLR", dict(gamma=0.9)),
    (CosineAnnealingLR, "CosineAnnealingLR", dict(T_max=10, eta_min=0.001)),
    (CosineAnnealingLR, "CosineAnnealingLR", dict(T_max=7)),
    (LinearLR, "LinearLR", dict()),
    (LinearLR, "LinearLR", dict(start_factor=0.25, end_factor=1.0, total_iters=4)),
    (LinearLR, "LinearLR", dict(start_factor=1.0, end_factor=0.1, total_iters=12)),
])
def test_sequence_matches_torch(torch, cls, torch_name, kwargs):
    ours = our_sequence(lambda opt: cls(opt, **kwargs))
    theirs = torch_sequence(torch, torch_name, kwargs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)


def test_linear_warmup_is_linear_lr_up_to_the_base_rate(torch):
    ours = our_sequence(lambda opt: LinearWarmup(opt, warmup_epochs=5, start_factor=0.2))
    theirs = torch_sequence(torch, "LinearLR", dict(start_factor=0.2, total_iters=5))
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)
    assert ours[0] == pytest.approx([0.02, 0.004]) and ours[-1] == pytest.approx(list(LRS))


def test_state_dict_round_trip_resumes_the_schedule():
    full = our_sequence(lambda opt: CosineAnnealingLR(opt, T_max=10))
    opt = make_optimizer()
    scheduler = CosineAnnealingLR(opt, T_max=10)
    for _ in range(6):
        scheduler.step()
    saved_opt, saved = opt.state_dict(), scheduler.state_dict()

    resumed_opt = make_optimizer()
    resumed = CosineAnnealingLR(resumed_opt, T_max=3)
    resumed_opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    assert resumed.T_max == 10 and resumed.get_last_lr() == full[6]
    for epoch in range(7, EPOCHS + 1):
        resumed.step()
        assert resumed.get_last_lr() == full[epoch]


def test_state_dict_is_plain_data():
    scheduler = StepLR(make_optimizer(), step_size=2)
    saved = scheduler.state_dict()
    assert "optimizer" not in saved
    assert saved["last_epoch"] == 0 and saved["base_lrs"] == list(LRS)
    scheduler.step()
    assert saved["_last_lr"] == list(LRS)  # a copy, not the live list


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda opt: StepLR(opt, step_size=0), ValueError, "step_size must be a positive integer"),
    (lambda opt: CosineAnnealingLR(opt, T_max=2.5), ValueError, "T_max"),
    (lambda opt: LinearLR(opt, start_factor=0.0), ValueError, r"start_factor must be in \(0, 1\]"),
    (lambda opt: LinearLR(opt, end_factor=1.5), ValueError, "end_factor"),
    (lambda opt: LinearWarmup(opt, warmup_epochs=0), ValueError, "warmup_epochs"),
    (lambda opt: StepLR("sgd", step_size=1), TypeError, "not a chainrule Optimizer"),
])
def test_bad_arguments_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make(make_optimizer())
