"""Every operation of ``chainrule.ops``, from the one table in ``operator_cases.py``:
a float64 central-difference gradient check for every case, PyTorch parity for every case
that names a counterpart, and the completeness checks that make a new operation fail
here until it has a rule, a formula and a case (and docs/operators.md is regenerated:
``tests/test_docs.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
from operator_cases import BASE_CLASSES, CASES, GRADIENT_TEST, TORCH_TEST, Case, operations

from chainrule import Tensor, gradcheck
from chainrule.tensor import Function, topological_order

RTOL, ATOL = 1e-9, 1e-11  # float64 against float64: only summation order differs
TORCH_CASES = [c for c in CASES if c.torch is not None]


def _functions_in_graph(out: Tensor) -> set[type[Function]]:
    """The classes of the operations that computed ``out``."""
    def inputs_of(t: Tensor):
        return t.creator.inputs if t.creator is not None and t.creator.inputs else ()
    return {type(t.creator) for t in topological_order(out, inputs_of) if t.creator}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gradient(case: Case, rng):
    sample = case.build(rng)
    inputs = [Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)
              for a in sample.inputs]
    out = sample.f(*inputs)
    assert case.op in _functions_in_graph(out), \
        f"the case {case.id} never applies {case.op.__name__}"
    report = gradcheck(sample.f, inputs, **case.gradcheck)
    assert len(report.inputs) == len(inputs)
    assert report.ok, report.explain()


@pytest.mark.parametrize("case", TORCH_CASES, ids=[c.id for c in TORCH_CASES])
def test_torch_parity(case: Case, rng, torch):
    """The same inputs and upstream gradient through chainrule and torch: the outputs
    and every input's gradient agree."""
    sample = case.build(rng)
    assert sample.torch_f is not None, f"{case.id} names {case.torch} but gives no torch_f"
    ours = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in sample.inputs]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in sample.inputs]
    out, expected = sample.f(*ours), sample.torch_f(torch, *theirs)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=RTOL, atol=ATOL)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(upstream.astype(out.dtype))
    expected.backward(torch.tensor(upstream, dtype=expected.dtype))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.grad is not None and b.grad is not None, f"input {i} got no gradient"
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=f"gradient of input {i}")


HOW_TO_ADD = ("add a case to tests/core/operator_cases.py (its docstring says how), or "
              "list a class that is only a base of others in BASE_CLASSES there; then run "
              "`python docs/update_docs.py`")


def test_every_operation_has_a_case():
    ops = operations()
    assert len(ops) >= 50  # discovery works: the ops of every module are found
    covered = {c.op for c in CASES} | set(BASE_CLASSES)
    missing = [f"{op.__module__}.{op.__name__}" for op in ops if op not in covered]
    assert not missing, f"operations without a case: {missing}; {HOW_TO_ADD}"
    unknown = [c.id for c in CASES if c.op not in ops] + \
        [b.__name__ for b in BASE_CLASSES if b not in ops]
    assert not unknown, f"cases of classes that are not operations of chainrule.ops: {unknown}"


def test_every_operation_has_a_rule_and_a_formula():
    lacking = [f"{op.__name__} lacks {attr}" for op in operations() if op not in BASE_CLASSES
               for attr in ("rule", "formula") if not getattr(op, attr).strip()]
    assert not lacking, "; ".join(lacking) + " (class attributes: see chainrule.tensor.Function)"


def test_case_ids_are_unique_and_torch_names_are_given_with_functions(rng):
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "two cases share an id"
    for case in CASES:  # a counterpart named for the page must also be checked here
        sample = case.build(rng)
        assert (case.torch is None) == (sample.torch_f is None), case.id


def test_discovery_finds_a_new_operation():
    """A Function subclass defined in a module of chainrule.ops is found without being
    listed anywhere (one defined elsewhere, as here, is not an operation of the ops)."""
    class Double(Function):
        rule = "d(2x)/dx = 2"

        def forward(self, x):
            return 2 * x

    assert Double not in operations()
    defined_in = Double.__module__
    Double.__module__ = "chainrule.ops.elementwise"
    try:
        assert Double in operations()
    finally:  # other tests (and the page) must not see it
        Double.__module__ = defined_in


def test_names_in_the_page_are_test_ids():
    """The page cites ``test_gradient[<id>]``: those are exactly this module's ids."""
    assert test_gradient.__name__ == GRADIENT_TEST
    assert test_torch_parity.__name__ == TORCH_TEST
