"""chainrule.set_num_threads / num_threads: the BLAS thread limit, set through
threadpoolctl on the loaded library."""

from __future__ import annotations

import pytest

import chainrule


def test_num_threads_limits_inside_and_restores_after():
    before = chainrule.get_num_threads()
    if before is None:
        pytest.skip("this NumPy's BLAS does not report its threads to threadpoolctl")
    with chainrule.num_threads(1):
        assert chainrule.get_num_threads() == 1
    assert chainrule.get_num_threads() == before


@pytest.mark.parametrize("n", [None, 0])
def test_num_threads_none_or_zero_leaves_the_default(n):
    before = chainrule.get_num_threads()
    with chainrule.num_threads(n):
        assert chainrule.get_num_threads() == before


def test_set_num_threads_persists():
    from threadpoolctl import threadpool_limits

    if chainrule.get_num_threads() is None:
        pytest.skip("this NumPy's BLAS does not report its threads to threadpoolctl")
    with threadpool_limits(limits=None):  # put back whatever the test changes
        chainrule.set_num_threads(1)
        assert chainrule.get_num_threads() == 1


@pytest.mark.parametrize("bad", [-1, 0, 1.5, "2", True])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match="positive int"):
        chainrule.set_num_threads(bad)
