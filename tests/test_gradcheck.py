"""The gradient checker: it passes correct ops, catches planted bugs, and says where they are.

Every planted bug below is a copy of a real op with one line of its backward broken.
Each is checked twice with the same inputs: the real op must pass, the broken copy must
fail. (That every op in tinylm passes is tested by tests/test_ops.py over drawn shapes.)
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import tinylm as tl
from tinylm import ops


class MatMulMissingTranspose(ops.MatMul):
    """dL/dA = dL/dZ @ B, where Bᵀ belongs (shapes still fit for square B)."""

    def backward(self, grad):
        return grad @ self.b, self.a.swapaxes(-1, -2) @ grad


class AddSummingTheWrongAxis(ops.Add):
    """b (1, n) was broadcast over the rows of a (n, n); its gradient sums the columns
    instead, and keeps b's shape, so autograd's shape check cannot notice."""

    def backward(self, grad):
        return grad, grad.sum(axis=1, keepdims=True).reshape(self.b_shape)


class SubWithSignFlipped(ops.Sub):
    """dz/db = +1 where it is -1."""

    def backward(self, grad):
        return grad, grad


class TanhTwiceTooSteep(ops.Tanh):
    """dz/dx = 2(1 - z²): a factor of 2 too many."""

    def backward(self, grad):
        return 2 * grad * (1 - self.out * self.out)


PLANTED_BUGS = [
    ("missing transpose", ops.MatMul, MatMulMissingTranspose, [(3, 3), (3, 3)]),
    ("broadcast reduced over the wrong axis", ops.Add, AddSummingTheWrongAxis, [(3, 3), (1, 3)]),
    ("sign flip", ops.Sub, SubWithSignFlipped, [(2, 3), (2, 3)]),
    ("factor of 2", ops.Tanh, TanhTwiceTooSteep, [(2, 3)]),
]
planted = pytest.mark.parametrize("correct, buggy, shapes", [b[1:] for b in PLANTED_BUGS], ids=[b[0] for b in PLANTED_BUGS])


def _inputs(shapes, device, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [tl.tensor(rng.standard_normal(s), device=device, requires_grad=True) for s in shapes]


@planted
def test_the_correct_op_passes_and_the_planted_bug_is_caught(device, correct, buggy, shapes):
    inputs = _inputs(shapes, device)
    assert tl.gradcheck(correct.apply, inputs)
    with pytest.raises(tl.GradcheckError, match="gradcheck failed: backward.. disagrees with central differences"):
        tl.gradcheck(buggy.apply, inputs)


@planted
def test_raise_exception_false_returns_false(correct, buggy, shapes):
    inputs = _inputs(shapes, "cpu")
    assert tl.gradcheck(correct.apply, inputs, raise_exception=False) is True
    assert tl.gradcheck(buggy.apply, inputs, raise_exception=False) is False


@planted
def test_the_random_projection_check_catches_the_bug_too(correct, buggy, shapes):
    """Every input above max_full_elements is checked along random directions only."""
    inputs = _inputs(shapes, "cpu")
    assert tl.gradcheck(correct.apply, inputs, max_full_elements=1)
    with pytest.raises(tl.GradcheckError, match="fails along random directions"):
        tl.gradcheck(buggy.apply, inputs, max_full_elements=1)


def test_forgetting_the_broadcast_reduction_altogether_is_caught_by_autograd():
    class AddNotReducing(ops.Add):
        def backward(self, grad):
            return grad, grad

    a, b = _inputs([(3, 3), (1, 3)], "cpu")
    with pytest.raises(RuntimeError, match=r"AddNotReducing.backward returned a gradient of shape \(3, 3\) for "
                                           r"input 1, whose shape is \(1, 3\).*broadcast axis go unsummed"):
        tl.gradcheck(AddNotReducing.apply, [a, b])


# ---------------------------------------------------------------- the report


class IdentityWrongAtOneElement(ops.Function):
    """z = x, but backward adds 1 to the gradient of element (1, 2)."""

    def forward(self, x):
        return x.copy()

    def backward(self, grad):
        grad = grad.copy()
        grad[1, 2] += 1.0
        return grad


def test_report_names_the_input_the_element_and_the_errors():
    unchecked = tl.ones(2, 4, dtype=np.float64)
    x = tl.tensor(np.zeros((2, 4)), requires_grad=True)
    x.name = "weight"
    with pytest.raises(tl.GradcheckError) as failure:
        tl.gradcheck(lambda a, b: (IdentityWrongAtOneElement.apply(b) * a).sum(), [unchecked, x])
    report = str(failure.value)
    assert "input 1 'weight' (shape (2, 4), float64)" in report
    assert "is wrong at 1 of 8 elements" in report
    assert re.search(r"index\s+analytic\s+numeric\s+abs err\s+rel err", report)
    # analytic 2 (1 + the planted 1), numeric 1: abs error 1, rel error 1
    assert re.search(r"\(1, 2\)\s+2\s+1\s+1\.00e\+00\s+1\.00e\+00", report), report
    assert "input 0" not in report, "an input without requires_grad is not checked"


def test_report_lists_the_worst_elements_first():
    class ScaledWrongly(ops.Function):
        def forward(self, x):
            return x * 1.0

        def backward(self, grad):
            return grad * np.array([1.0, 1.5, 1.0, 3.0])  # wrong at 1 (by 0.5) and 3 (by 2)

    with pytest.raises(tl.GradcheckError) as failure:
        tl.gradcheck(lambda x: ScaledWrongly.apply(x).sum(), [tl.zeros(4, dtype=np.float64, requires_grad=True)])
    rows = re.findall(r"^\s+\((\d),\)", str(failure.value), flags=re.MULTILINE)
    assert rows == ["3", "1"]


# ---------------------------------------------------------------- non-scalar outputs


class TripleIgnoringUpstream(ops.Function):
    """z = 3x, but backward returns 3 instead of 3·dL/dz: right only when dL/dz is all ones."""

    def forward(self, x):
        return 3 * x

    def backward(self, grad):
        return 3 * tl.backend.array_module(grad).ones_like(grad)


def test_non_scalar_outputs_are_checked_with_a_random_upstream_gradient(device):
    x = _inputs([(2, 3)], device)
    assert tl.gradcheck(lambda t: (t * t).tanh(), x)
    # summing hides the bug (dL/dz = 1 everywhere); the non-scalar output reveals it
    assert tl.gradcheck(lambda t: TripleIgnoringUpstream.apply(t).sum(), x)
    with pytest.raises(tl.GradcheckError, match=r"s = Σ v ⊙ output \(v random\)"):
        tl.gradcheck(TripleIgnoringUpstream.apply, x)


def test_a_large_input_uses_the_random_projection_and_catches_a_bug():
    x = _inputs([(80, 60)], "cpu")  # 4,800 elements > max_full_elements = 4,096
    assert tl.gradcheck(lambda t: t.tanh(), x)
    with pytest.raises(tl.GradcheckError, match=r"input 0 \(shape \(80, 60\), float64\) fails along random directions"):
        tl.gradcheck(TanhTwiceTooSteep.apply, x)


# ---------------------------------------------------------------- warnings, errors, side effects


def test_non_float64_inputs_get_a_warning():
    x = tl.tensor([0.5, 1.5], requires_grad=True)
    with pytest.warns(UserWarning, match=r"input 0 \(shape \(2,\), float32\) is not float64"):
        tl.gradcheck(lambda t: t * 2, [x], raise_exception=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tl.gradcheck(lambda t: t * 2, [x.to(np.float64)])


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="no input requires grad; create inputs with requires_grad=True"):
        tl.gradcheck(lambda t: t * 2, [tl.ones(2, dtype=np.float64)])


def test_fn_must_return_a_tensor():
    with pytest.raises(TypeError, match="fn must return a Tensor, got float"):
        tl.gradcheck(lambda t: 1.0, [tl.ones(2, dtype=np.float64, requires_grad=True)])


def test_gradcheck_leaves_inputs_and_their_grads_as_it_found_them():
    x = _inputs([(3,)], "cpu")[0]
    x.grad = tl.tensor([7.0, 8.0, 9.0], dtype=np.float64)
    before = x.numpy().copy()
    tl.gradcheck(lambda t: (t * t).sum(), [x])
    np.testing.assert_array_equal(x.numpy(), before)
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 8.0, 9.0])


def test_verbose_prints_the_error_next_to_the_tolerance(capsys):
    tl.gradcheck(lambda t: t.exp(), _inputs([(3,)], "cpu"), verbose=True)
    printed = capsys.readouterr().out
    assert re.search(r"gradcheck passed: largest abs error \d\.\d\de-\d+ \(tolerance atol=1e-05 \+ rtol=0.001", printed)


# ---------------------------------------------------------------- numerical_grad


def test_numerical_grad_returns_one_array_per_input(device):
    a, b = _inputs([(2, 3), (3,)], device)
    labels = tl.tensor([1, 0], device=device)
    grads = tl.numerical_grad(lambda x, y, _: x * y, [a, b, labels])
    assert len(grads) == 3 and grads[2] is None
    assert grads[0].dtype == np.float64 and grads[0].shape == (2, 3)
    np.testing.assert_allclose(tl.backend.to_numpy(grads[0]), np.broadcast_to(b.numpy(), (2, 3)), rtol=1e-7)
    np.testing.assert_allclose(tl.backend.to_numpy(grads[1]), a.numpy().sum(axis=0), rtol=1e-7)


def test_numerical_grad_with_an_upstream_gradient():
    x = _inputs([(3,)], "cpu")[0]
    upstream = np.array([1.0, -2.0, 0.5])
    (grad,) = tl.numerical_grad(lambda t: t * t, [x], grad_output=upstream)
    np.testing.assert_allclose(grad, upstream * 2 * x.numpy(), rtol=1e-7)
    x_without_grad = tl.tensor(x.numpy())
    assert tl.numerical_grad(lambda t: t * t, [x_without_grad]) == [None]
