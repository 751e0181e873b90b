"""Optimisers: parity with torch.optim, state dicts, zero_grad, dtypes, clipping, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chainrule.optim import (
    OPTIMIZERS,
    SGD,
    AdaGrad,
    Adagrad,
    Adam,
    AdamW,
    Momentum,
    Nesterov,
    Optimizer,
    RMSprop,
    clip_grad_norm_,
    clip_grad_value_,
    get_optimizer,
)
from chainrule.tensor import Tensor

SHAPES = [(3, 4), (5,), (2, 3, 2), (1,), ()]
STEPS = 20


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def initial_arrays(seed: int = 0, dtype=np.float64) -> tuple[list, list]:
    """Starting values and the targets c their loss pulls towards."""
    rng = np.random.default_rng(seed)
    starts = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    targets = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    return starts, targets


def gradient(p: np.ndarray, c: np.ndarray) -> np.ndarray:
    """A gradient that depends on the current value: g = 2(p − c) + 0.1·sin(p)."""
    return np.asarray(2 * (p - c) + 0.1 * np.sin(p))


def make_params(arrays) -> list[Tensor]:
    return [Tensor(a.copy(), requires_grad=True) for a in arrays]


def set_grads(params, targets) -> None:
    for p, c in zip(params, targets, strict=True):
        p.grad = Tensor(gradient(p.data, c))


def run(opt: Optimizer, params, targets, steps: int = STEPS) -> list[np.ndarray]:
    for _ in range(steps):
        set_grads(params, targets)
        opt.step()
    return [p.data.copy() for p in params]


def run_torch(torch, name: str, kwargs: dict, starts, targets, groups=None):
    params = [torch.tensor(a.copy(), requires_grad=True) for a in starts]
    spec = params if groups is None else [{**g, "params": [params[i] for i in g["params"]]}
                                          for g in groups]
    opt = getattr(torch.optim, name)(spec, **kwargs)
    for _ in range(STEPS):
        for p, c in zip(params, targets, strict=True):
            p.grad = torch.from_numpy(gradient(p.detach().numpy().copy(), c))
        opt.step()
    return [p.detach().numpy() for p in params]


# (our class, our kwargs, torch class name, torch kwargs)
CASES = [
    (SGD, dict(lr=0.1), "SGD", dict(lr=0.1)),
    (SGD, dict(lr=0.05, momentum=0.9), "SGD", dict(lr=0.05, momentum=0.9)),
    (SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01), "SGD",
     dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05), "SGD",
     dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05)),
    (Momentum, dict(lr=0.03), "SGD", dict(lr=0.03, momentum=0.9)),
    (Nesterov, dict(lr=0.02, momentum=0.7), "SGD", dict(lr=0.02, momentum=0.7, nesterov=True)),
    (AdaGrad, dict(), "Adagrad", dict()),
    (AdaGrad, dict(lr=0.1, eps=1e-6, weight_decay=0.1), "Adagrad",
     dict(lr=0.1, eps=1e-6, weight_decay=0.1)),
    (RMSprop, dict(), "RMSprop", dict()),
    (RMSprop, dict(lr=0.005, alpha=0.9, momentum=0.9, weight_decay=0.01), "RMSprop",
     dict(lr=0.005, alpha=0.9, momentum=0.9, weight_decay=0.01)),
    (Adam, dict(lr=0.05), "Adam", dict(lr=0.05)),
    (Adam, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True), "Adam",
     dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    (AdamW, dict(lr=0.05), "AdamW", dict(lr=0.05)),
    (AdamW, dict(lr=0.05, weight_decay=0.3, amsgrad=True), "AdamW",
     dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
]


@pytest.mark.parametrize(("cls", "kwargs", "torch_name", "torch_kwargs"), CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_matches_torch(torch, cls, kwargs, torch_name, torch_kwargs):
    starts, targets = initial_arrays()
    params = make_params(starts)
    ours = run(cls(params, **kwargs), params, targets)
    theirs = run_torch(torch, torch_name, torch_kwargs, starts, targets)
    for a, b, start in zip(ours, theirs, starts, strict=True):
        assert np.abs(a - start).max() > 1e-3  # it moved
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_param_groups_match_torch(torch):
    starts, targets = initial_arrays(1)
    groups = [{"params": [0, 1], "lr": 0.01}, {"params": [2, 3, 4], "betas": (0.5, 0.9)}]
    params = make_params(starts)
    opt = Adam([{**g, "params": [params[i] for i in g["params"]]} for g in groups], lr=0.05)
    ours = run(opt, params, targets)
    theirs = run_torch(torch, "Adam", dict(lr=0.05), starts, targets, groups)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_add_param_group_uses_its_own_hyper_parameters():
    a, b = make_params([np.ones(3), np.ones(3)])
    opt = SGD([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.5})
    a.grad, b.grad = Tensor(np.ones(3)), Tensor(np.ones(3))
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.5)
    assert opt.param_groups[1]["momentum"] == 0.0  # filled from the defaults


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_parameters_without_grad_are_skipped(name):
    a, b = make_params([np.ones(3), np.ones(2)])
    opt = get_optimizer(name, [a, b], lr=0.1)
    a.grad = Tensor(np.ones(3))
    opt.step()
    assert not np.allclose(a.data, 1.0)
    np.testing.assert_array_equal(b.data, 1.0)
    assert b not in opt.state


# ---------------------------------------------------------------- state dicts
def _to_json_and_back(state_dict):
    text = json.dumps(state_dict, default=lambda a: a.tolist())
    return json.loads(text)


@pytest.mark.parametrize(("cls", "kwargs"), [(c[0], c[1]) for c in CASES],
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("through_json", [False, True])
def test_state_dict_round_trip_continues_identically(cls, kwargs, through_json):
    starts, targets = initial_arrays(2)
    params = make_params(starts)
    opt = cls(params, **kwargs)
    run(opt, params, targets, steps=10)
    saved = opt.state_dict()
    if through_json:
        saved = _to_json_and_back(saved)

    clones = make_params([p.data for p in params])
    clone_opt = cls(clones, **{**kwargs, "lr": 123.0})  # lr comes back from the state dict
    clone_opt.load_state_dict(saved)
    assert clone_opt.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    ours = run(opt, params, targets, steps=10)
    theirs = run(clone_opt, clones, targets, steps=10)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_state_dict_is_a_snapshot_of_plain_values():
    starts, targets = initial_arrays()
    params = make_params(starts)
    opt = Adam(params, lr=0.1)
    run(opt, params, targets, steps=2)
    saved = opt.state_dict()
    before = saved["state"][0]["exp_avg"].copy()
    run(opt, params, targets, steps=2)
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], before)
    assert saved["state"][0]["step"] == 2
    assert saved["param_groups"][0]["params"] == [0, 1, 2, 3, 4]
    assert opt.state[params[0]]["step"] == 4


def test_load_state_dict_rejects_what_does_not_fit():
    starts, targets = initial_arrays()
    params = make_params(starts)
    opt = Adam(params, lr=0.1)
    run(opt, params, targets, steps=1)
    saved = opt.state_dict()

    with pytest.raises(ValueError, match="5 parameters, this optimizer has 4"):
        Adam(make_params(starts[:4])).load_state_dict(saved)
    with pytest.raises(ValueError, match="1 parameter groups, this optimizer has 2"):
        Adam([{"params": make_params(starts[:2])},
              {"params": make_params(starts[2:])}]).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 0 has shape \(3, 4\)"):
        Adam(make_params([np.zeros((4, 3))] + starts[1:])).load_state_dict(saved)
    with pytest.raises(ValueError, match="lacks hyper-parameters"):
        SGD(make_params(starts), lr=0.1).load_state_dict(saved)
    bad = opt.state_dict()
    bad["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="lr"):
        opt.load_state_dict(bad)
    assert opt.param_groups[0]["lr"] == 0.1  # a failed load leaves the optimizer as it was


# ---------------------------------------------------------------- zero_grad and dtypes
def test_zero_grad():
    a, b = make_params([np.ones(3), np.ones(2)])
    opt = SGD([a, b], lr=0.1)
    a.grad = Tensor(np.ones(3))
    grad_array = a.grad.data
    opt.zero_grad(set_to_none=False)
    assert a.grad.data is grad_array
    np.testing.assert_array_equal(grad_array, 0.0)
    assert b.grad is None
    opt.zero_grad()
    assert a.grad is None


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_float32_stays_float32_and_updates_in_place(name):
    starts, targets = initial_arrays(3, dtype=np.float32)
    params = make_params(starts)
    arrays = [p.data for p in params]
    kwargs = {"amsgrad": True} if name.startswith("adam") else {}
    if name in ("sgd", "rmsprop"):
        kwargs = {"momentum": 0.9}
    opt = get_optimizer(name, params, lr=0.01, weight_decay=0.01, **kwargs)
    run(opt, params, targets, steps=3)
    for p, array in zip(params, arrays, strict=True):
        assert p.data is array
        assert p.dtype == np.float32
        for value in opt.state[p].values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32
                assert value.shape == p.shape


# ---------------------------------------------------------------- clipping
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(torch, norm_type, max_norm):
    starts, targets = initial_arrays(4)
    params = make_params(starts)
    set_grads(params, targets)
    params[1].grad = None
    twins = [torch.tensor(a, requires_grad=True) for a in starts]
    for p, t in zip(params, twins, strict=True):
        t.grad = None if p.grad is None else torch.from_numpy(p.grad.data.copy())

    total = clip_grad_norm_(params, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(twins, max_norm, norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(expected.item(), rel=1e-12)
    for p, t in zip(params, twins, strict=True):
        if p.grad is not None:
            np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-12)


def test_clip_grad_value_matches_torch(torch):
    starts, targets = initial_arrays(5)
    params = make_params(starts)
    set_grads(params, targets)
    expected = [torch.from_numpy(p.grad.data.copy()) for p in params]
    twins = [torch.zeros(s, dtype=torch.float64) for s in SHAPES]
    for t, g in zip(twins, expected, strict=True):
        t.grad = g
    clip_grad_value_(params, 0.7)
    torch.nn.utils.clip_grad_value_(twins, 0.7)
    for p, t in zip(params, twins, strict=True):
        np.testing.assert_array_equal(p.grad.data, t.grad.numpy())


def test_clip_grad_norm_without_grads_and_nonfinite():
    (a,) = make_params([np.ones(3)])
    assert clip_grad_norm_(a, 1.0) == 0.0
    a.grad = Tensor(np.array([1.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="nan"):
        clip_grad_norm_([a], 1.0, error_if_nonfinite=True)


# ---------------------------------------------------------------- registry and errors
def test_registry():
    assert set(OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam",
                               "adamw"}
    assert Adagrad is AdaGrad
    opt = get_optimizer("AdamW", make_params([np.ones(2)]), lr=0.1)
    assert type(opt) is AdamW and opt.param_groups[0]["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'.*sgd.*adamw"):
        get_optimizer("adamax", make_params([np.ones(2)]))


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda ps: SGD(ps, lr=-0.1), ValueError, r"lr=-0.1: must be >= 0"),
    (lambda ps: SGD(ps, lr=float("nan")), ValueError, "lr=nan"),
    (lambda ps: SGD(ps, lr="fast"), TypeError, "lr must be a number"),
    (lambda ps: SGD(ps, lr=0.1, momentum=-1), ValueError, "momentum=-1"),
    (lambda ps: SGD(ps, lr=0.1, nesterov=True), ValueError, "nesterov=True needs momentum"),
    (lambda ps: Adam(ps, betas=(1.0, 0.999)), ValueError, r"beta1=1.0: must be in \[0.0, 1.0\)"),
    (lambda ps: Adam(ps, betas=(0.9, -0.1)), ValueError, "beta2=-0.1"),
    (lambda ps: Adam(ps, betas=0.9), ValueError, "betas=0.9: must be a pair"),
    (lambda ps: Adam(ps, eps=-1e-8), ValueError, "eps"),
    (lambda ps: AdamW(ps, weight_decay=-0.01), ValueError, "weight_decay"),
    (lambda ps: RMSprop(ps, alpha=-0.5), ValueError, "alpha"),
    (lambda ps: AdaGrad(ps, lr=-1), ValueError, "lr=-1"),
    (lambda ps: SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda ps: SGD(ps[0], lr=0.1), TypeError, "single Tensor"),
    (lambda ps: SGD([np.ones(3)], lr=0.1), TypeError, "parameter 0 of group 0 is a ndarray"),
    (lambda ps: SGD([Tensor(np.ones(3))], lr=0.1), ValueError, "does not require grad"),
    (lambda ps: SGD(ps + ps[:1], lr=0.1), ValueError, "more than once"),
    (lambda ps: SGD([{"lr": 0.1}], lr=0.1), ValueError, "'params' entry"),
])
def test_bad_arguments_are_named(make, error, message):
    params = make_params([np.ones(3), np.ones(2)])
    with pytest.raises(error, match=message):
        make(params)
