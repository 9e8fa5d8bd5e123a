"""Gradient checking: compare backward() with central differences.

For a function f and a small step ε, the central difference

    ∂f/∂xᵢ ≈ (f(x + ε·eᵢ) - f(x - ε·eᵢ)) / (2ε)

has an error of order ε² (the one-sided difference only ε), so in float64 with ε = 1e-6
it agrees with the true derivative to about 1e-9 relative error. In float32 the rounding
error of f itself (~1e-7) divided by 2ε swamps the answer: always check in float64.

When the output is not a scalar, we check the gradient of the scalar  s = Σ v ⊙ f(x)  for
a random weight v (fixed seed). ∂s/∂x = Jᵀv mixes every row of the Jacobian J, so a
wrong row (or column) shows up, and backward() is exercised with a non-trivial upstream
gradient, just as inside a network.

A large input (more than ``max_full_elements`` values) is checked along random directions
u instead of element by element: the directional derivative (s(x + εu) - s(x - εu)) / 2ε
must equal ∇s · u. That costs two evaluations per direction, not two per element.
"""
from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np

from . import backend
from .tensor import Tensor, no_grad


class GradcheckError(RuntimeError):
    """The analytic gradient (backward) disagrees with the numerical one."""


def _as_input_tuple(inputs) -> tuple:
    return tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)


def _checkable(x) -> bool:
    return isinstance(x, Tensor) and x.requires_grad


def _weighted_sum(fn: Callable, inputs: tuple, weights) -> float:
    """s = Σ weights ⊙ fn(*inputs), in float64, without recording a graph."""
    with no_grad():
        out = fn(*inputs)
    data = out.data if isinstance(out, Tensor) else out
    return float((data.astype(np.float64) * weights).sum())


def _output_weights(fn: Callable, inputs: tuple, random: bool = True):
    """Weights v shaped like fn's output, on its device: random (fixed seed), or all ones.

    A one-element output always gets v = 1, so s is the output itself.
    """
    with no_grad():
        out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    xp = backend.array_module(out.data)
    if out.data.size == 1 or not random:
        return xp.ones(out.shape, dtype=np.float64)
    host = np.random.default_rng(0).standard_normal(out.shape)
    return xp.asarray(host)


def _numerical_grad_of_sum(fn: Callable, inputs: tuple, position: int, weights, eps: float):
    """Central differences of s = Σ v ⊙ fn(...) with respect to every element of one input."""
    x = inputs[position].data
    grad = backend.array_module(x).zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(*x.shape):
        original = x[index].item()
        x[index] = original + eps
        plus = _weighted_sum(fn, inputs, weights)
        x[index] = original - eps
        minus = _weighted_sum(fn, inputs, weights)
        x[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def numerical_grad(fn: Callable, inputs: Sequence, eps: float = 1e-6, grad_output=None) -> list:
    """Central-difference gradients of ``sum(grad_output * fn(*inputs))`` for every input.

    Args:
        fn: called as ``fn(*inputs)``, returns a Tensor.
        inputs: tensors (others are passed through unchanged).
        eps: the step ε.
        grad_output: the upstream gradient (default: ones, i.e. the gradient of the sum).
    Returns:
        one float64 array per input (shaped like it), or None for inputs that do not
        require grad.
    """
    inputs = _as_input_tuple(inputs)
    if grad_output is None:
        weights = _output_weights(fn, inputs, random=False)
    else:
        weights = grad_output.data if isinstance(grad_output, Tensor) else grad_output
        weights = backend.array_module(weights).asarray(weights, dtype=np.float64)
    return [
        _numerical_grad_of_sum(fn, inputs, i, weights, eps) if _checkable(x) else None
        for i, x in enumerate(inputs)
    ]


def _analytic_grads(fn: Callable, inputs: tuple, weights) -> list:
    """∂s/∂x for every checkable input, from one backward() of s = Σ v ⊙ fn(*inputs)."""
    saved = [x.grad if _checkable(x) else None for x in inputs]
    for x in inputs:
        if _checkable(x):
            x.grad = None
    out = fn(*inputs)
    if out.requires_grad:
        out.backward(Tensor(weights.astype(out.dtype, copy=False)))
    grads = []
    for x, old in zip(inputs, saved):
        if _checkable(x):
            xp = backend.array_module(x.data)
            grads.append(xp.zeros(x.shape) if x.grad is None else x.grad.data.astype(np.float64))
            x.grad = old
        else:
            grads.append(None)
    return grads


def _input_label(position: int, x: Tensor) -> str:
    name = f" '{x.name}'" if x.name else ""
    return f"input {position}{name} (shape {x.shape}, {x.dtype})"


def _element_report(label: str, analytic, numeric, atol: float, rtol: float, rows: int = 5) -> str:
    analytic, numeric = backend.to_numpy(analytic), backend.to_numpy(numeric)
    abs_err = np.abs(analytic - numeric)
    excess = abs_err - (atol + rtol * np.abs(numeric))
    rel_err = abs_err / np.maximum(np.abs(numeric), 1e-12)
    worst = np.argsort(excess, axis=None)[::-1][:rows]
    lines = [
        f"gradient of {label} is wrong at {int((excess > 0).sum())} of {analytic.size} elements. Worst:",
        f"    {'index':>14}  {'analytic':>12}  {'numeric':>12}  {'abs err':>9}  {'rel err':>9}",
    ]
    for flat in worst:
        if excess.flat[flat] <= 0:
            break
        index = np.unravel_index(flat, analytic.shape) if analytic.ndim else ()
        lines.append(
            f"    {str(tuple(int(i) for i in index)):>14}  {analytic.flat[flat]:>12.6g}  {numeric.flat[flat]:>12.6g}"
            f"  {abs_err.flat[flat]:>9.2e}  {rel_err.flat[flat]:>9.2e}"
        )
    return "\n".join(lines)


def _projection_check(fn, inputs, position, weights, analytic, eps, atol, rtol, directions: int = 6):
    """Compare ∇s·u with (s(x+εu) - s(x-εu))/2ε along random directions u; a report or None."""
    x = inputs[position].data
    xp = backend.array_module(x)
    original = x.copy()
    rng = np.random.default_rng(position + 1)
    lines = []
    for k in range(directions):
        u = xp.asarray(rng.standard_normal(x.shape))
        x[...] = original + eps * u
        plus = _weighted_sum(fn, inputs, weights)
        x[...] = original - eps * u
        minus = _weighted_sum(fn, inputs, weights)
        x[...] = original
        numeric = (plus - minus) / (2 * eps)
        expected = float((analytic * u).sum())
        if abs(expected - numeric) > atol + rtol * abs(numeric):
            lines.append(
                f"    direction {k}: analytic ∇s·u = {expected:.6g}, numeric = {numeric:.6g}, "
                f"abs err {abs(expected - numeric):.2e}"
            )
    if not lines:
        return None
    return f"gradient of {_input_label(position, inputs[position])} fails along random directions:\n" + "\n".join(lines)


def gradcheck(
    fn: Callable,
    inputs: Sequence,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    max_full_elements: int = 4096,
    verbose: bool = False,
) -> bool:
    """Check backward() of ``fn`` against central differences for every input requiring grad.

    An element passes when ``abs(analytic - numeric) <= atol + rtol * abs(numeric)``.

    Returns True when every gradient agrees. Otherwise raises ``GradcheckError`` with a
    table of the worst elements (or returns False when ``raise_exception=False``).
    Inputs that are not float64 get a UserWarning: their rounding error would swamp ε.
    ``verbose=True`` prints the largest error found next to the tolerance used.
    """
    inputs = _as_input_tuple(inputs)
    checked = [i for i, x in enumerate(inputs) if _checkable(x)]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; create inputs with requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            warnings.warn(
                f"gradcheck: {_input_label(i, inputs[i])} is not float64; central differences in "
                "low precision are unreliable. Use tl.set_default_dtype(np.float64) or dtype=np.float64",
                UserWarning,
                stacklevel=2,
            )
    weights = _output_weights(fn, inputs)
    analytic = _analytic_grads(fn, inputs, weights)
    failures, worst_error = [], 0.0
    for i in checked:
        if inputs[i].data.size <= max_full_elements:
            numeric = _numerical_grad_of_sum(fn, inputs, i, weights, eps)
            xp = backend.array_module(numeric)
            error = xp.abs(analytic[i] - numeric)
            worst_error = max(worst_error, float(error.max()) if error.size else 0.0)
            if bool((error > atol + rtol * xp.abs(numeric)).any()):
                failures.append(_element_report(_input_label(i, inputs[i]), analytic[i], numeric, atol, rtol))
        else:
            report = _projection_check(fn, inputs, i, weights, analytic[i], eps, atol, rtol)
            if report:
                failures.append(report)
    if verbose:
        status = "FAILED" if failures else "passed"
        print(f"gradcheck {status}: largest abs error {worst_error:.2e} (tolerance atol={atol:g} + rtol={rtol:g}·|numeric|)")
    if not failures:
        return True
    if not raise_exception:
        return False
    scalar = "the output" if weights.size == 1 else "s = Σ v ⊙ output (v random)"
    raise GradcheckError(
        f"gradcheck failed: backward() disagrees with central differences (ε={eps:g}) for the "
        f"gradient of {scalar}; allowed |analytic - numeric| <= {atol:g} + {rtol:g}·|numeric|.\n"
        + "\n".join(failures)
    )
