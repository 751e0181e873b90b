"""PyTorch's API edges: type promotion, arrays at the functional boundary, and the edge
semantics a user porting torch code relies on (squeeze, no_grad, in-place changes
between forward and backward, memory sharing of constructors)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import chainrule
import chainrule.functional as F
from chainrule import Tensor, ops

torch = pytest.importorskip("torch")

# --------------------------------------------------------------------------- promotion
DTYPES = ["bool", "int32", "int64", "float32", "float64"]
_TORCH_DTYPES = {"bool": torch.bool, "int32": torch.int32, "int64": torch.int64,
                 "float32": torch.float32, "float64": torch.float64}


def _operand_kinds() -> dict[str, tuple]:
    """name -> (chainrule operand, torch operand): tensors of every dtype with
    dimensions and as 0-d tensors, and the Python numbers."""
    kinds = {}
    for name in DTYPES:
        values = np.array([1, 0, 1] if name == "bool" else [2, 3, 1]).astype(name)
        kinds[f"{name}[3]"] = (Tensor(values), torch.tensor(values))
        kinds[f"{name}[]"] = (Tensor(values[0]), torch.tensor(values[0]))
    kinds.update({"int": (2, 2), "float": (0.5, 0.5), "py-bool": (True, True),
                  "np.float64": (np.float64(0.5), np.float64(0.5)),
                  "np.int32": (np.int32(2), np.int32(2))})
    return kinds


KINDS = _operand_kinds()
NUMBERS = ("int", "float", "py-bool", "np.float64", "np.int32")
PAIRS = [(a, b) for a, b in itertools.product(KINDS, repeat=2)
         if not (a in NUMBERS and b in NUMBERS)]


def _torch_dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def test_result_type_table_matches_torch():
    """Every pair of bool, int32, int64, float32, float64 tensors (with dimensions and
    0-d), Python int, float and bool and NumPy scalars: chainrule.result_type is
    torch.result_type."""
    wrong = []
    for a, b in PAIRS:
        (ours_a, theirs_a), (ours_b, theirs_b) = KINDS[a], KINDS[b]
        ours = chainrule.result_type(ours_a, ours_b)
        theirs = _torch_dtype_name(torch.result_type(theirs_a, theirs_b))
        if ours.name != theirs:
            wrong.append(f"{a} with {b}: {ours.name}, torch {theirs}")
    assert not wrong, "\n".join(wrong)
    assert len(PAIRS) == 10 * 10 + 2 * 10 * len(NUMBERS)  # the table is complete


def test_promote_types_matches_torch():
    for a, b in itertools.product(DTYPES + ["float16", "uint8", "int8"], repeat=2):
        theirs = torch.promote_types(getattr(torch, a), getattr(torch, b))
        assert chainrule.promote_types(a, b).name == _torch_dtype_name(theirs), (a, b)


BINARY = {  # torch's operators take a Python number on either side
    "add": (ops.add, lambda a, b: a + b), "sub": (ops.sub, lambda a, b: a - b),
    "mul": (ops.mul, lambda a, b: a * b), "div": (ops.div, lambda a, b: a / b),
    "maximum": (ops.maximum, torch.maximum), "minimum": (ops.minimum, torch.minimum),
    "where": (lambda a, b: ops.where(np.array([True, False, True]), a, b),
              lambda a, b: torch.where(torch.tensor([True, False, True]), a, b)),
    "lt": (ops.lt, lambda a, b: a < b), "eq": (ops.eq, lambda a, b: a == b),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_operations_give_torchs_dtype_and_values(name):
    ours_fn, theirs_fn = BINARY[name]
    wrong, compared = [], 0
    np_errors = np.seterr(divide="ignore", invalid="ignore")  # 1/0 and 0/0 are meant
    for a, b in PAIRS:
        (ours_a, theirs_a), (ours_b, theirs_b) = KINDS[a], KINDS[b]
        try:
            expected = theirs_fn(theirs_a, theirs_b)
        except (RuntimeError, TypeError):
            continue  # torch defines no such operation (bool - bool, maximum of a number)
        result = ours_fn(ours_a, ours_b)
        compared += 1
        if result.dtype.name != _torch_dtype_name(expected.dtype):
            wrong.append(f"{a} with {b}: {result.dtype}, torch {expected.dtype}")
        elif not np.allclose(result.data, expected.numpy().astype(result.dtype),
                             equal_nan=True):  # (False / False is nan in both)
            wrong.append(f"{a} with {b}: values {result.data}, torch {expected.numpy()}")
    np.seterr(**np_errors)
    assert not wrong, "\n".join(wrong)
    assert compared >= 90  # (torch defines most pairs; maximum only of two tensors)


def test_the_issues_examples():
    assert (Tensor(1) + 0.5).dtype == np.float32
    assert Tensor(2).exp().dtype == np.float32
    assert (Tensor(3) / Tensor(2)).item() == 1.5 and (Tensor(3) / 2).dtype == np.float32
    x = Tensor(np.arange(3, dtype=np.int32))
    assert F.maximum(x, Tensor(np.float32(1.5))).dtype == np.float32
    assert (x ** 0.5).dtype == np.float32 and (x ** 2).dtype == np.int32
    assert Tensor([1, 2]).mean().dtype == np.float32  # (torch refuses integer means)


FLOATING = {"exp": (ops.exp, torch.exp), "log": (ops.log, torch.log),
            "sqrt": (ops.sqrt, torch.sqrt), "sin": (ops.sin, torch.sin),
            "cos": (ops.cos, torch.cos), "tanh": (ops.tanh, torch.tanh),
            "sigmoid": (ops.sigmoid, torch.sigmoid), "erf": (ops.erf, torch.erf),
            "logsumexp": (lambda x: ops.logsumexp(x, 0), lambda x: torch.logsumexp(x, 0))}


@pytest.mark.parametrize("name", sorted(FLOATING))
@pytest.mark.parametrize("dtype", DTYPES)
def test_floating_functions_of_integers_give_float32_as_torch(name, dtype):
    ours_fn, theirs_fn = FLOATING[name]
    values = np.array([1, 2, 1]).astype(dtype)
    result, expected = ours_fn(Tensor(values)), theirs_fn(torch.tensor(values))
    assert result.dtype.name == _torch_dtype_name(expected.dtype)
    np.testing.assert_allclose(result.data, expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("a, b", [("float32", "float64"), ("float64", "float32"),
                                  ("float32", "float32")])
@pytest.mark.parametrize("zero_d", [False, True])
def test_promoted_gradients_keep_each_inputs_dtype_as_torch(a, b, zero_d):
    """A float32 tensor with a float64 0-d tensor computes in float32 (the 0-d operand
    counts by category only); each gradient has its own input's dtype."""
    rng = np.random.default_rng(0)
    shape_b = () if zero_d else (3,)
    xa, xb = rng.standard_normal(3).astype(a), rng.standard_normal(shape_b).astype(b)
    ta, tb = Tensor(xa, requires_grad=True), Tensor(xb, requires_grad=True)
    pa = torch.tensor(xa, requires_grad=True)
    pb = torch.tensor(xb, requires_grad=True)
    y, yt = F.maximum(ta * tb + tb, ta) / tb, torch.maximum(pa * pb + pb, pa) / pb
    assert y.dtype.name == _torch_dtype_name(yt.dtype)
    y.sum().backward()
    yt.sum().backward()
    for ours, theirs in ((ta, pa), (tb, pb)):
        assert ours.grad.dtype.name == _torch_dtype_name(theirs.grad.dtype)
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-5)


# --------------------------------------------------------------------------- arrays at F.*
def _samples() -> dict:
    """name -> a function of a generator giving (args, kwargs) with NumPy arrays."""
    def r(*shape):
        return lambda g: g.standard_normal(shape)

    def positive(*shape):
        return lambda g: g.uniform(0.5, 2.0, shape)

    x34, x2_34 = r(3, 4), r(3, 4)
    unary = {name: lambda g: ((x34(g),), {}) for name in (
        "abs", "cos", "exp", "erf", "gelu", "neg", "relu", "sigmoid", "sin", "softplus",
        "tanh", "leaky_relu", "softmax", "log_softmax", "logsumexp", "flatten", "sum",
        "mean", "max", "min", "var", "transpose")}
    unary.update({name: lambda g: ((positive(3, 4)(g),), {}) for name in ("log", "sqrt")})
    binary = {name: lambda g: ((x34(g), x2_34(g)), {}) for name in (
        "add", "sub", "mul", "div", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge",
        "mse_loss")}
    gates = {"rnn": 1, "lstm": 4, "gru": 3}

    def recurrent(kind, cell):
        def make(g):
            hidden = 2 * gates[kind]
            x = g.standard_normal((3, 4) if cell else (5, 3, 4))
            h = g.standard_normal((3, 2))
            states = ([h, h.copy()] if kind == "lstm" else [h])
            weights = [g.standard_normal((4, hidden)), g.standard_normal((2, hidden)),
                       g.standard_normal(hidden), g.standard_normal(hidden)]
            return (x, *states, *weights), {}
        return make

    samples = {
        **unary, **binary,
        "astype": lambda g: ((x34(g), np.float32), {}),
        "binary_cross_entropy": lambda g: ((g.uniform(0.1, 0.9, (3, 4)),
                                            g.uniform(0, 1, (3, 4))), {}),
        "binary_cross_entropy_with_logits": lambda g: ((x34(g), g.uniform(0, 1, (3, 4))), {}),
        "broadcast_to": lambda g: ((r(1, 4)(g), (3, 4)), {}),
        "cat": lambda g: (([x34(g), x34(g)],), {}),
        "concatenate": lambda g: (([x34(g), x34(g)], 1), {}),
        "stack": lambda g: (([x34(g), x34(g)],), {}),
        "clip": lambda g: ((x34(g), -0.5, 0.5), {}),
        "cross_entropy": lambda g: ((x34(g), g.integers(0, 4, 3)), {}),
        "dropout": lambda g: ((x34(g),), {"p": 0.5, "rng": np.random.default_rng(0)}),
        "embedding": lambda g: ((g.integers(0, 5, (2, 3)), r(5, 4)(g)), {}),
        "expand": lambda g: ((r(1, 4)(g), 3, 4), {}),
        "getitem": lambda g: ((x34(g), np.array([0, 2, 2])), {}),
        "linear": lambda g: ((x34(g), r(4, 2)(g), r(2)(g)), {}),
        "matmul": lambda g: ((x34(g), r(4, 2)(g)), {}),
        "permute": lambda g: ((x34(g), 1, 0), {}),
        "pow": lambda g: ((positive(3, 4)(g), x34(g)), {}),
        "reshape": lambda g: ((x34(g), 2, 6), {}),
        "split": lambda g: ((x34(g), 2, 1), {}),
        "squeeze": lambda g: ((r(3, 1, 4)(g),), {"axis": 1}),
        "sum_to": lambda g: ((x34(g), (1, 4)), {}),
        "swapaxes": lambda g: ((x34(g), 0, 1), {}),
        "unsqueeze": lambda g: ((x34(g), 1), {}),
        "where": lambda g: ((x34(g) > 0, x34(g), x2_34(g)), {}),
        "batch_norm": lambda g: ((x34(g), np.zeros(4), np.ones(4), r(4)(g), r(4)(g)),
                                 {"training": True}),
        "layer_norm": lambda g: ((x34(g), 4, r(4)(g), r(4)(g)), {}),
        "avg_pool2d": lambda g: ((r(2, 3, 4, 4)(g), 2), {}),
        "max_pool2d": lambda g: ((r(2, 3, 4, 4)(g), 2), {}),
        "conv2d": lambda g: ((r(2, 3, 5, 5)(g), r(4, 3, 3, 3)(g), r(4)(g)), {"padding": 1}),
        "im2col": lambda g: ((r(2, 3, 4, 4)(g), 2, 2), {}),
        "col2im": lambda g: ((r(2 * 3 * 3, 3 * 2 * 2)(g), (2, 3, 4, 4), 2, 2), {}),
        "conv_transpose2d": lambda g: ((r(2, 3, 4, 4)(g), r(3, 2, 3, 3)(g), r(2)(g)),
                                       {"stride": 2}),
        "adaptive_avg_pool2d": lambda g: ((r(2, 3, 5, 7)(g), (2, 3)), {}),
        "nll_loss": lambda g: ((x34(g), g.integers(0, 4, 3)), {"weight": r(4)(g)}),
        "pad": lambda g: ((x34(g), (1, 2, 0, 1)), {"value": 0.5}),
    }
    for kind in gates:
        samples[kind] = recurrent(kind, cell=False)
        samples[f"{kind}_cell"] = recurrent(kind, cell=True)
    return samples


SAMPLES = _samples()


def test_every_public_function_has_an_array_sample():
    """A new public function must be added to SAMPLES, so that the next test checks it."""
    assert sorted(set(F.__all__) - set(SAMPLES)) == []


def _values(result) -> list[np.ndarray]:
    if isinstance(result, Tensor):
        return [result.data]
    return [a for part in result for a in _values(part)]


@pytest.mark.parametrize("name", sorted(F.__all__))
def test_every_public_function_takes_arrays(name):
    """F.name(arrays...) gives what F.name(Tensors...) gives: the one conversion at the
    functional boundary serves every function (positional and keyword arrays)."""
    args, kwargs = SAMPLES[name](np.random.default_rng(0))
    as_tensors = tuple(Tensor(a) if isinstance(a, np.ndarray) else a for a in args)
    tensor_kwargs = {k: Tensor(v) if isinstance(v, np.ndarray) else v
                     for k, v in kwargs.items()}
    if "rng" in kwargs:
        tensor_kwargs["rng"] = np.random.default_rng(0)
    expected = getattr(F, name)(*as_tensors, **tensor_kwargs)
    args, kwargs = SAMPLES[name](np.random.default_rng(0))  # fresh (batch_norm updates)
    result = getattr(F, name)(*args, **kwargs)
    for ours, reference in zip(_values(result), _values(expected), strict=True):
        np.testing.assert_array_equal(ours, reference)
    assert getattr(F, name).__wrapped__ is getattr(ops, name)


def test_the_issues_array_examples_and_in_place_running_statistics():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)
    np.testing.assert_allclose(F.linear(x, w, b).data, x @ w + b)
    np.testing.assert_allclose(F.sum_to(x, (1, 4)).data, x.sum(0, keepdims=True))
    mean, var = np.zeros(4), np.ones(4)
    F.batch_norm(x, mean, var, training=True, momentum=0.5)
    np.testing.assert_allclose(mean, 0.5 * x.mean(0))  # the caller's arrays, updated


# --------------------------------------------------------------------------- edge semantics
@pytest.mark.parametrize("axis", [0, 1, -1, (0, 1), (1, 2), None])
def test_squeeze_leaves_axes_larger_than_one_as_torch(axis):
    values = np.random.default_rng(0).standard_normal((2, 1, 3))
    x, xt = Tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    y = x.squeeze(axis) if axis is not None else x.squeeze()
    yt = xt.squeeze(axis) if axis is not None else xt.squeeze()
    assert y.shape == tuple(yt.shape)
    (y * 2.0).sum().backward()
    (yt * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, xt.grad.numpy())


def test_no_grad_as_a_decorator_with_and_without_parentheses():
    x = Tensor(1.0, requires_grad=True)

    @chainrule.no_grad
    def bare(t):
        return t * 2.0

    @chainrule.no_grad()
    def called(t):
        return t * 2.0

    @chainrule.enable_grad
    def recording(t):
        return t * 2.0

    assert not bare(x).requires_grad and not called(x).requires_grad
    assert bare.__name__ == "bare"
    with chainrule.no_grad():
        assert not (x * 2.0).requires_grad
        assert recording(x).requires_grad
    assert chainrule.is_grad_enabled()
    with pytest.raises(TypeError, match="no_grad takes no arguments"):
        chainrule.no_grad(3)


# --------------------------------------------------------------------------- in-place changes
def _changed_before_backward(change):
    w = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    loss = (w * w).sum()
    change(w)
    loss.backward()


def _replace(w):
    w.data = w.data * 2.0


def _update(w):
    w.data -= 0.5


def _optimiser_step(w):
    w.grad = Tensor(np.ones(3))
    chainrule.optim.SGD([w], lr=0.1).step()


@pytest.mark.parametrize("change", [_replace, _update, _optimiser_step],
                         ids=["replaced", "updated", "optimiser-step"])
def test_a_tensor_changed_in_place_before_backward_is_reported(change):
    """Like torch's "one of the variables needed for gradient computation has been
    modified by an inplace operation"; never a silently wrong gradient."""
    with pytest.raises(RuntimeError, match=r"modified in place: input 0 of Mul .*\(3,\)"):
        _changed_before_backward(change)


def test_augmented_assignment_to_data_is_detected_like_torchs_in_place_op():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = w.exp()  # exp saves its output
    y.data += 1.0
    with pytest.raises(RuntimeError, match="its output of Exp"):
        y.sum().backward()
    wt = torch.tensor([1.0, 2.0], requires_grad=True)
    yt = wt.exp()
    yt.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        yt.sum().backward()


def test_changes_through_a_view_in_the_graph_are_detected():
    w = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    loss = (w.T @ Tensor(np.ones((2, 1)))).sum() + (w.reshape(-1)[1:] ** 2).sum()
    w.data -= 1.0
    with pytest.raises(RuntimeError, match="through the tensor of shape \\(2, 3\\)"):
        loss.backward()


def test_changes_that_cannot_alter_the_gradient_are_allowed_as_in_torch():
    """Addition and reshaping save no values: changing their inputs is harmless."""
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    loss = (a + b).reshape(2, 1).sum()
    a.data += 5.0
    loss.backward()
    np.testing.assert_array_equal(a.grad.data, [1.0, 1.0])
    at = torch.tensor([1.0, 2.0], requires_grad=True)
    bt = torch.tensor([3.0, 4.0], requires_grad=True)
    loss_t = (at + bt).reshape(2, 1).sum()
    with torch.no_grad():
        at.add_(5.0)
    loss_t.backward()
    np.testing.assert_array_equal(at.grad.numpy(), [1.0, 1.0])


def test_changes_after_backward_and_between_steps_are_fine():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    opt = chainrule.optim.SGD([w], lr=0.1)
    for _ in range(3):  # the usual loop: forward, backward, step
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(w.data, np.array([1.0, 2.0]) * 0.8 ** 3)
    w.data = w.data * 2.0  # a fresh forward after the change is fine
    (w * w).sum().backward()


def test_load_state_dict_counts_as_a_change():
    layer = chainrule.nn.Linear(2, 2)
    loss = layer(np.ones((1, 2))).sum() * layer.weight.sum()
    layer.load_state_dict(chainrule.nn.Linear(2, 2).state_dict())
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


# --------------------------------------------------------------------------- memory sharing
def test_tensor_copies_as_torch_tensor_and_from_numpy_shares():
    array = np.zeros(3, dtype=np.float32)
    copied, shared, maybe = Tensor(array), chainrule.from_numpy(array), \
        chainrule.as_tensor(array)
    reference_copy, reference_shared = torch.tensor(array), torch.from_numpy(array)
    reference_as = torch.as_tensor(array)
    array[0] = 7.0
    assert copied.data[0] == reference_copy[0].item() == 0.0
    assert shared.data[0] == reference_shared[0].item() == 7.0
    assert maybe.data[0] == reference_as[0].item() == 7.0
    assert Tensor(copied).data is not copied.data  # a Tensor is copied too
    assert chainrule.as_tensor(copied) is copied
    converted = chainrule.as_tensor(array, dtype=np.float64)  # another dtype: a copy
    assert converted.dtype == np.float64 and not np.shares_memory(converted.data, array)
    assert chainrule.as_tensor([1.0, 2.0]).dtype == np.float32
    with pytest.raises(TypeError, match="from_numpy expects a NumPy array"):
        chainrule.from_numpy([1.0, 2.0])
