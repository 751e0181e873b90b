"""Every operation of ``chainrule.functional``: backprop versus central differences.

All checks run in float64 on seeded random inputs that stay inside each function's
domain (log and sqrt positive, kinks and ties kept far away from the ±eps nudges).
``test_every_functional_op_is_gradchecked`` fails when an operation is added without a
case here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import chainrule.functional as F
from chainrule import Tensor, gradcheck

# --------------------------------------------------------------------------- inputs


def leaf(array) -> Tensor:
    return Tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def normal(rng, shape) -> Tensor:
    return leaf(rng.standard_normal(shape))


def uniform(rng, shape, low, high) -> Tensor:
    return leaf(rng.uniform(low, high, shape))


def away_from_zero(rng, shape, margin=0.1) -> Tensor:
    """Values of either sign with |x| ≥ margin: no kink of relu/abs within reach."""
    z = rng.standard_normal(shape)
    return leaf(np.where(z >= 0, 1.0, -1.0) * (margin + np.abs(z)))


def distinct(rng, shape) -> Tensor:
    """All values at least 0.09 apart: max/min have a unique winner on every axis."""
    size = int(np.prod(shape))
    return leaf((rng.permutation(size) * 0.1 + rng.uniform(0, 0.01)).reshape(shape) - 1.0)


def interleaved(rng, shape_a, shape_b) -> tuple[Tensor, Tensor]:
    """a on even integers, b on odd ones (plus < 0.5 noise): a - b is never within 0.5
    of 0, so maximum/minimum never see a tie, whatever the broadcasting."""
    a = 2.0 * rng.integers(-3, 3, shape_a) + rng.uniform(0, 0.5, shape_a)
    b = 2.0 * rng.integers(-3, 3, shape_b) + 1.0 + rng.uniform(0, 0.5, shape_b)
    return leaf(a), leaf(b)


def assert_gradcheck(f: Callable[..., Tensor], *inputs: Tensor) -> None:
    report = gradcheck(f, list(inputs))
    assert report.inputs, "gradcheck compared no input"
    assert report.ok, report.explain()


# --------------------------------------------------------------------------- cases
# Each case: (operation name in chainrule.functional, id, build(rng) -> (f, inputs)).
CASES: list[tuple[str, str, Callable]] = []


def case(op: str, case_id: str):
    def register(build):
        CASES.append((op, f"{op}-{case_id}", build))
        return build
    return register


# binary ops on the broadcasting pairs of the issue, both ways round
PAIRS = [((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 3), (4, 1)), ((4, 1), (2, 1, 3)),
         ((), (2, 3)), ((2, 3), ()), ((2, 3), (2, 3))]


def _pair_id(pair) -> str:
    return f"{pair[0]}&{pair[1]}".replace(" ", "")


for _pa, _pb in PAIRS:
    _pid = _pair_id((_pa, _pb))

    @case("add", _pid)
    def _(rng, pa=_pa, pb=_pb):
        return F.add, (normal(rng, pa), normal(rng, pb))

    @case("sub", _pid)
    def _(rng, pa=_pa, pb=_pb):
        return F.sub, (normal(rng, pa), normal(rng, pb))

    @case("mul", _pid)
    def _(rng, pa=_pa, pb=_pb):
        return F.mul, (normal(rng, pa), normal(rng, pb))

    @case("div", _pid)
    def _(rng, pa=_pa, pb=_pb):
        return F.div, (normal(rng, pa), away_from_zero(rng, pb, margin=0.5))

    @case("pow", _pid)
    def _(rng, pa=_pa, pb=_pb):  # positive base: ln a in d(a^b)/db is defined
        return F.pow, (uniform(rng, pa, 0.5, 2.0), uniform(rng, pb, -1.5, 1.5))

    @case("maximum", _pid)
    def _(rng, pa=_pa, pb=_pb):
        return F.maximum, interleaved(rng, pa, pb)

    @case("minimum", _pid)
    def _(rng, pa=_pa, pb=_pb):
        return F.minimum, interleaved(rng, pa, pb)

    @case("where", _pid)
    def _(rng, pa=_pa, pb=_pb):
        cond = rng.random(np.broadcast_shapes(pa, pb)) > 0.5
        return (lambda a, b: F.where(cond, a, b)), (normal(rng, pa), normal(rng, pb))


@case("where", "condition-broadcast")
def _(rng):  # the condition (4,) is broadcast against (3,4) and ()
    cond = np.array([True, False, False, True])
    return (lambda a, b: F.where(cond, a, b)), (normal(rng, (3, 4)), normal(rng, ()))


@case("where", "python-number-branch")
def _(rng):
    cond = rng.random((3, 4)) > 0.5
    return (lambda a: F.where(cond, a, 0.0)), (normal(rng, (3, 4)),)


for _c in [2, 3, 0.5, -1, -2.5, 1]:
    @case("pow", f"scalar-exponent-{_c}")
    def _(rng, c=_c):
        return (lambda x: x ** c), (uniform(rng, (3, 4), 0.5, 2.0),)


@case("pow", "python-base")
def _(rng):
    return (lambda x: 2.0 ** x), (normal(rng, (3, 4)),)


@case("neg", "plain")
def _(rng):
    return F.neg, (normal(rng, (3, 4)),)


# elementwise functions of one input
UNARY = {
    "exp": (F.exp, lambda rng: normal(rng, (3, 4))),
    "log": (F.log, lambda rng: uniform(rng, (3, 4), 0.2, 3.0)),
    "sqrt": (F.sqrt, lambda rng: uniform(rng, (3, 4), 0.2, 3.0)),
    "abs": (F.abs, lambda rng: away_from_zero(rng, (3, 4))),
    "tanh": (F.tanh, lambda rng: normal(rng, (3, 4))),
    "sigmoid": (F.sigmoid, lambda rng: leaf(rng.standard_normal((3, 4)) * 4)),
    "relu": (F.relu, lambda rng: away_from_zero(rng, (3, 4))),
    "softplus": (F.softplus, lambda rng: leaf(rng.standard_normal((3, 4)) * 4)),
    "sin": (F.sin, lambda rng: normal(rng, (3, 4))),
    "cos": (F.cos, lambda rng: normal(rng, (3, 4))),
    # erf's three ranges of |x| (≤ 0.47, up to 4, beyond) and GELU's both tails
    "erf": (F.erf, lambda rng: leaf(rng.standard_normal((3, 4)) * 2.5)),
    "gelu": (F.gelu, lambda rng: leaf(rng.standard_normal((3, 4)) * 3)),
}
for _name, (_fn, _build) in UNARY.items():
    @case(_name, "3x4")
    def _(rng, fn=_fn, build=_build):
        return fn, (build(rng),)


@case("gelu", "tanh")
def _(rng):
    return (lambda x: F.gelu(x, approximate="tanh")), (leaf(rng.standard_normal((3, 4)) * 3),)


for _slope in [0.01, 0.2]:
    @case("leaky_relu", f"slope-{_slope}")
    def _(rng, slope=_slope):
        return (lambda x: F.leaky_relu(x, slope)), (away_from_zero(rng, (3, 4)),)


def _clip_input(rng):
    """Values in [-2, 2] kept 0.05 away from the bounds -0.5 and 0.7."""
    x = rng.uniform(-2, 2, (4, 5))
    for bound in (-0.5, 0.7):
        near = np.abs(x - bound) < 0.05
        x[near] += 0.1
    return leaf(x)


for _lo, _hi in [(-0.5, 0.7), (-0.5, None), (None, 0.7)]:
    @case("clip", f"{_lo}-{_hi}")
    def _(rng, lo=_lo, hi=_hi):
        return (lambda x: F.clip(x, lo, hi)), (_clip_input(rng),)


# reductions: every axis form, with and without keepdims
AXES = [None, 0, 1, 2, -1, -2, (0, 2), (-1, -3), (1, -1), (0, 1, 2)]
for _axis in AXES:
    for _keep in (False, True):
        _aid = f"axis={_axis}-keepdims={_keep}".replace(" ", "")
        for _name, _fn, _build in [
            ("sum", F.sum, normal), ("mean", F.mean, normal), ("var", F.var, normal),
            ("logsumexp", F.logsumexp, normal),
            ("max", F.max, lambda rng, s: distinct(rng, s)),
            ("min", F.min, lambda rng, s: distinct(rng, s)),
        ]:
            @case(_name, _aid)
            def _(rng, fn=_fn, build=_build, axis=_axis, keep=_keep):
                return (lambda x: fn(x, axis, keepdims=keep)), (build(rng, (2, 3, 4)),)


@case("var", "ddof=1")
def _(rng):
    return (lambda x: F.var(x, axis=1, ddof=1)), (normal(rng, (3, 4)),)


@case("sum", "method-on-1d")
def _(rng):
    return (lambda x: x.sum()), (normal(rng, (5,)),)


@case("sum_to", "(3,4)->(1,4)")
def _(rng):
    return (lambda x: F.sum_to(x, (1, 4))), (normal(rng, (3, 4)),)


@case("sum_to", "(2,3,4)->(3,1)")
def _(rng):
    return (lambda x: F.sum_to(x, (3, 1))), (normal(rng, (2, 3, 4)),)


# shape operations
SHAPE_CASES = {
    "reshape": [("(6,4)", lambda x: F.reshape(x, (6, 4))),
                ("-1", lambda x: x.reshape(4, -1)), ("flat", lambda x: x.reshape(-1))],
    "transpose": [("reverse", F.transpose), ("axes", lambda x: F.transpose(x, (1, 0, 2))),
                  ("negative-axes", lambda x: F.transpose(x, (-1, 0, 1))),
                  (".T", lambda x: x.T), (".mT", lambda x: x.mT)],
    "permute": [("varargs", lambda x: x.permute(2, 0, 1)),
                ("tuple", lambda x: F.permute(x, (1, 2, 0)))],
    "swapaxes": [("0,-1", lambda x: F.swapaxes(x, 0, -1))],
    "flatten": [("all", F.flatten), ("1..2", lambda x: F.flatten(x, 1)),
                ("0..1", lambda x: F.flatten(x, 0, 1))],
    "unsqueeze": [("0", lambda x: F.unsqueeze(x, 0)), ("-1", lambda x: x.unsqueeze(-1)),
                  ("middle", lambda x: F.unsqueeze(x, 2))],
    "broadcast_to": [("(2,2,3,4)", lambda x: F.broadcast_to(x, (2, 2, 3, 4)))],
    "expand": [("-1", lambda x: x.expand(3, -1, -1, -1))],
    "split": [("sections",
               lambda x: F.concatenate([p * (i + 1.0) for i, p in
                                        enumerate(F.split(x, 2, axis=-1))], axis=-1)),
              ("indices", lambda x: F.stack([p.sum() for p in F.split(x, [1, 2], 1)]))],
}
for _name, _variants in SHAPE_CASES.items():
    for _vid, _fn in _variants:
        @case(_name, _vid)
        def _(rng, fn=_fn):
            return fn, (normal(rng, (2, 3, 4)),)


@case("squeeze", "all")
def _(rng):
    return F.squeeze, (normal(rng, (1, 3, 1, 2)),)


@case("squeeze", "axis")
def _(rng):
    return (lambda x: x.squeeze(-2)), (normal(rng, (1, 3, 1, 2)),)


@case("broadcast_to", "from-(3,1)")
def _(rng):
    return (lambda x: F.broadcast_to(x, (2, 3, 4))), (normal(rng, (3, 1)),)


@case("expand", "from-()")
def _(rng):
    return (lambda x: F.expand(x, (2, 3))), (normal(rng, ()),)


for _axis in [0, 1, -1]:
    @case("concatenate", f"axis={_axis}")
    def _(rng, axis=_axis):
        shapes = [(2, 3), (2, 3), (2, 3)]
        sizes = [1, 2, 3]
        shapes = [tuple(n if i != axis % 2 else k for i, n in enumerate(s))
                  for s, k in zip(shapes, sizes)]
        return (lambda *xs: F.concatenate(xs, axis)), tuple(normal(rng, s) for s in shapes)

    @case("stack", f"axis={_axis}")
    def _(rng, axis=_axis):
        return (lambda *xs: F.stack(xs, axis)), tuple(normal(rng, (2, 3)) for _ in range(3))


@case("cat", "alias")
def _(rng):
    return (lambda a, b: F.cat([a, b], 1)), (normal(rng, (2, 1)), normal(rng, (2, 3)))


@case("concatenate", "same-tensor-twice")
def _(rng):  # one input used twice: its gradient is the sum of both pieces
    return (lambda a: F.concatenate([a, a * 2.0], 0)), (normal(rng, (2, 3)),)


# indexing
_MASK = np.random.default_rng(7).random((4, 5)) > 0.5
INDICES = {
    "int": 2, "negative-int": -1, "slices": (slice(1, None), slice(None, None, 2)),
    "negative-step": (slice(None, None, -1),),
    "negative-steps-2d": (slice(None, None, -2), slice(4, 0, -1)),
    "ellipsis": (Ellipsis, 1), "newaxis": (None, slice(1, 3)),
    "int-array-repeats": np.array([0, 2, 0, 0]),
    "list-repeats": [3, 3, 1],
    "int-arrays-pairs-repeat": (np.array([0, 0, 1, 0]), np.array([1, 1, 1, 1])),
    "bool-mask-full": _MASK, "bool-mask-rows": np.array([True, False, True, True]),
    "mixed-array-slice": (np.array([1, 1, 3]), slice(None, 3)),
    "mixed-slice-array": (slice(None), np.array([4, 0, 4])),
    "mixed-int-bool": (2, np.array([True, False, True, False, True])),
    "tensor-index": Tensor(np.array([1, 1, 0])),
}
for _iid, _index in INDICES.items():
    @case("getitem", _iid)
    def _(rng, index=_index):
        return (lambda x: x[index]), (normal(rng, (4, 5)),)


@case("getitem", "functional")
def _(rng):
    return (lambda x: F.getitem(x, (slice(None), 1))), (normal(rng, (4, 5)),)


# matmul in every NumPy case
MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)),
                 ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4, 5)),
                 ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 5))]
for _sa, _sb in MATMUL_SHAPES:
    @case("matmul", _pair_id((_sa, _sb)))
    def _(rng, sa=_sa, sb=_sb):
        return F.matmul, (normal(rng, sa), normal(rng, sb))


@case("matmul", "operator-with-ndarray")
def _(rng):
    w = rng.standard_normal((4, 2))
    return (lambda x: x @ w), (normal(rng, (3, 4)),)


for _xs in [(5, 3), (2, 5, 3), (3,)]:
    @case("linear", f"x{_xs}".replace(" ", ""))
    def _(rng, xs=_xs):
        return F.linear, (normal(rng, xs), normal(rng, (3, 4)), normal(rng, (4,)))


@case("linear", "row-bias")
def _(rng):  # a bias of shape (1, out), as x·W + b allows: summed over the batch
    return F.linear, (normal(rng, (5, 3)), normal(rng, (3, 4)), normal(rng, (1, 4)))


@case("linear", "no-bias")
def _(rng):
    return F.linear, (normal(rng, (5, 3)), normal(rng, (3, 4)))


# softmax family
for _axis in [0, 1, -1]:
    for _name, _fn in [("softmax", F.softmax), ("log_softmax", F.log_softmax)]:
        @case(_name, f"axis={_axis}")
        def _(rng, fn=_fn, axis=_axis):
            return (lambda x: fn(x, axis)), (normal(rng, (2, 3, 4)),)


# losses
for _red in ["mean", "sum", "none"]:
    @case("cross_entropy", f"indices-{_red}")
    def _(rng, red=_red):
        target = rng.integers(0, 5, 4)
        return (lambda x: F.cross_entropy(x, target, red)), (normal(rng, (4, 5)),)

    @case("cross_entropy", f"one-hot-{_red}")
    def _(rng, red=_red):
        target = np.eye(5)[rng.integers(0, 5, 4)]
        return (lambda x: F.cross_entropy(x, target, red)), (normal(rng, (4, 5)),)

    @case("cross_entropy", f"probabilities-{_red}")
    def _(rng, red=_red):
        target = rng.dirichlet(np.ones(5), 4)
        return (lambda x: F.cross_entropy(x, target, red)), (normal(rng, (4, 5)),)

    @case("cross_entropy", f"3d-logits-{_red}")
    def _(rng, red=_red):
        target = rng.integers(0, 5, (2, 3))
        return (lambda x: F.cross_entropy(x, target, red)), (normal(rng, (2, 3, 5)),)

    @case("mse_loss", _red)
    def _(rng, red=_red):
        return (lambda y, t: F.mse_loss(y, t, red)), (normal(rng, (3, 4)), normal(rng, (3, 4)))

    @case("binary_cross_entropy_with_logits", _red)
    def _(rng, red=_red):  # a soft target that requires grad: d/dt = -x
        return ((lambda x, t: F.binary_cross_entropy_with_logits(x, t, red)),
                (leaf(rng.standard_normal((3, 4)) * 3), uniform(rng, (3, 4), 0, 1)))

    @case("binary_cross_entropy", _red)
    def _(rng, red=_red):  # probabilities far from the clipping bounds eps, 1-eps
        return ((lambda p, t: F.binary_cross_entropy(p, t, red)),
                (uniform(rng, (3, 4), 0.05, 0.95), uniform(rng, (3, 4), 0, 1)))


    @case("cross_entropy", f"ignore-index-{_red}")
    def _(rng, red=_red):  # (N, T, V) logits, padded targets: ignored samples send nothing
        target = rng.integers(0, 5, (2, 3))
        target[0, 1] = target[1, 2] = -100
        return (lambda x: F.cross_entropy(x, target, red)), (normal(rng, (2, 3, 5)),)

    @case("cross_entropy", f"many-classes-{_red}")
    def _(rng, red=_red):  # past 512 classes the work is done on rows, not the transpose
        target = rng.integers(0, 600, (2, 2))
        target[1, 0] = 7
        return ((lambda x: F.cross_entropy(x, target, red, ignore_index=7)),
                (normal(rng, (2, 2, 600)),))


    @case("cross_entropy", f"weight-smoothing-ignore-{_red}")
    def _(rng, red=_red):  # class weights, label smoothing and an ignored sample at once
        target = rng.integers(0, 5, (3, 2))
        target[1, 1] = -100
        weight = rng.uniform(0.5, 2, 5)
        return ((lambda x: F.cross_entropy(x, target, red, weight=weight,
                                           label_smoothing=0.2)), (normal(rng, (3, 2, 5)),))

    @case("cross_entropy", f"probabilities-with-grad-{_red}")
    def _(rng, red=_red):  # soft targets get a gradient too: -(1-ε)·w·log p
        weight = rng.uniform(0.5, 2, 5)
        return ((lambda x, t: F.cross_entropy(x, t, red, weight=weight, label_smoothing=0.1)),
                (normal(rng, (4, 5)), leaf(rng.dirichlet(np.ones(5), 4))))

    @case("nll_loss", _red)
    def _(rng, red=_red):
        target = rng.integers(0, 5, (3, 2))
        target[0, 0] = 2
        weight = rng.uniform(0.5, 2, 5)
        return ((lambda x: F.nll_loss(x, target, red, ignore_index=2, weight=weight)),
                (normal(rng, (3, 2, 5)),))


@case("cross_entropy", "many-classes-probabilities")
def _(rng):
    target = rng.dirichlet(np.ones(600), 3)
    return (lambda x: F.cross_entropy(x, target)), (normal(rng, (3, 600)),)


@case("embedding", "repeated-indices")
def _(rng):  # index 1 is used three times: its row's gradient adds up the three
    index = np.array([[1, 4, 1], [0, 1, 2]])
    return (lambda w: F.embedding(index, w)), (normal(rng, (5, 3)),)


@case("embedding", "padding-idx")
def _(rng):  # the padding row gets no gradient by definition; its uses are masked out
    index = rng.integers(0, 6, (2, 5, 3))    # of the loss so that the numerical one agrees
    index[0, 0, 0] = 5
    unpadded = Tensor((index != 5)[..., None].astype(np.float64))
    return (lambda w: F.embedding(index, w, padding_idx=-1) * unpadded), (normal(rng, (6, 4)),)


@case("cross_entropy", "1d-logits-scalar-target")
def _(rng):
    return (lambda x: F.cross_entropy(x, np.array(3))), (normal(rng, (5,)),)


@case("cross_entropy", "tensor-target")
def _(rng):
    target = Tensor(rng.integers(0, 5, 4))
    return (lambda x: F.cross_entropy(x, target)), (normal(rng, (4, 5)),)


@case("binary_cross_entropy_with_logits", "constant-target")
def _(rng):
    target = (rng.random((6,)) > 0.5).astype(np.float64)
    return (lambda x: F.binary_cross_entropy_with_logits(x, target)), (normal(rng, (6,)),)


for _p in [0.3, 0.0]:
    @case("dropout", f"p={_p}")
    def _(rng, p=_p):  # a fresh generator per call: the same mask at every nudge
        return ((lambda x: F.dropout(x, p, rng=np.random.default_rng(3))),
                (normal(rng, (4, 5)),))


@case("dropout", "eval")
def _(rng):
    return (lambda x: F.dropout(x, 0.5, training=False)), (normal(rng, (4, 5)),)


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("build", [c[2] for c in CASES], ids=[c[1] for c in CASES])
def test_gradient_matches_central_differences(build, rng):
    f, inputs = build(rng)
    assert_gradcheck(f, *inputs)


def test_composite_function(rng):
    """Several operations in one graph, including a value reused on two paths."""
    x, w = normal(rng, (4, 3)), normal(rng, (3, 2))

    def f(x, w):
        h = F.tanh(x @ w)
        return (F.softmax(h, -1) * h.exp()).sum(0) + F.logsumexp(h * x.sum(1, keepdims=True))

    assert_gradcheck(f, x, w)


NON_DIFFERENTIABLE = {"eq", "ne", "lt", "le", "gt", "ge"}  # comparisons: tested elsewhere
TESTED_ELSEWHERE = {"astype"}  # a cast: float32 ↔ float64 defeats finite differences


CORE_MODULES = {f"chainrule.ops.{m}" for m in
                ("arithmetic", "elementwise", "reduction", "shape", "nn")}


def test_every_functional_op_is_gradchecked():
    """Each operation of the core modules has a case (layers' ops are tested elsewhere)."""
    core = {name for name in F.__all__ if getattr(F, name).__module__ in CORE_MODULES}
    assert {"add", "matmul", "cross_entropy", "getitem", "sum"} <= core
    covered = {op for op, _, _ in CASES} | NON_DIFFERENTIABLE | TESTED_ELSEWHERE
    missing = sorted(core - covered)
    assert not missing, f"operations without a gradcheck case: {missing}"


def test_astype_gradient_flows_back_in_the_input_dtype(rng):
    x = normal(rng, (3, 4))
    y = F.astype(x, np.float32)
    assert y.dtype == np.float32
    (y * 3.0).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.data, np.full((3, 4), 3.0))
    assert F.astype(x, np.float64) is x  # no-op cast records nothing
    z = Tensor(np.ones(2, np.float32), requires_grad=True)
    (z.double() * 2.0).sum().backward()
    assert z.grad.dtype == np.float32
    np.testing.assert_array_equal(z.grad.data, [2.0, 2.0])
