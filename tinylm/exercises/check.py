"""The checker: runs a student's backward, compares it, and says what is wrong.

For several random inputs (float64) it compares the student's gradients with two
independent answers: central differences of the NumPy forward, and autograd through the
exercise's tinylm reference. When a gradient is wrong, the pattern usually says why:

* the shape of the input transposed, and the values too        -> "transposed"
* exactly minus the right answer                                -> "wrong sign"
* the right answer times a constant                             -> "off by a constant factor"
* the right answer before summing over broadcast axes           -> "missing the broadcast reduction"
* right at the last time step only                              -> "BPTT not accumulated"
* right except at rows of repeated ids                          -> "repeated ids overwritten"
* one of the exercise's own classic mistakes (``Exercise.mistakes``, e.g. a flipped kernel)

When ``TINYLM_GRADE_REPORT`` names a file, each result is appended to it as a JSON line
(this is how ``tinylm grade`` collects the results of a submission).
"""
from __future__ import annotations

import json
import os
import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import tinylm as tl
from ..ops import unbroadcast
from .definitions import BY_NAME, Exercise

RTOL, ATOL = 1e-5, 1e-7
REPORT_ENV = "TINYLM_GRADE_REPORT"


@dataclass
class CheckResult:
    """What ``check`` found: ``passed``, a one-line ``diagnosis`` per wrong gradient, the text shown."""

    exercise: str
    passed: bool
    diagnoses: dict[str, str] = field(default_factory=dict)
    relative_error: float = 0.0
    message: str = ""

    def __bool__(self) -> bool:
        return self.passed


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=RTOL, atol=ATOL)


def _time_diagnosis(student, expected, axis: int) -> str | None:
    steps = expected.shape[axis]
    last = [slice(None)] * expected.ndim
    last[axis] = steps - 1
    earlier = list(last)
    earlier[axis] = slice(0, steps - 1)
    if _close(student[tuple(last)], expected[tuple(last)]) and not _close(student[tuple(earlier)], expected[tuple(earlier)]):
        return (
            "gradient only correct at t = T (BPTT not accumulated): the last step is right, the earlier ones "
            "are not. At each step t the hidden state's gradient must include dh carried back from step t+1."
        )
    return None


def _repeat_diagnosis(student, expected, ids) -> str | None:
    values, counts = np.unique(ids, return_counts=True)
    repeated = values[counts > 1]
    single = np.setdiff1d(np.arange(expected.shape[0]), repeated)
    if len(repeated) and _close(student[single], expected[single]) and not _close(student[repeated], expected[repeated]):
        return (
            f"repeated ids overwritten instead of added: rows {repeated.tolist()} (ids that occur more than once) "
            "are wrong. dW[ids] += g keeps one repeat only; use np.add.at(dW, ids, g)."
        )
    return None


def _mistake_diagnosis(student, expected, name: str, exercise: Exercise, inputs: dict, grad_outs: tuple) -> str | None:
    position = exercise.grads.index(name)
    for mistake in exercise.mistakes:
        if mistake.gradient != name:
            continue
        wrong = mistake.wrong(expected, inputs, lambda changed: _reference_grads(exercise, changed, grad_outs)[position])
        if _close(student, np.asarray(wrong)):
            return mistake.diagnosis
    return None


def diagnose(student, expected: np.ndarray, name: str, exercise: Exercise, inputs: dict, grad_outs: tuple | None = None) -> str | None:
    """None when ``student`` equals ``expected``; else the most specific explanation found.

    ``grad_outs`` (the upstream gradients the student was given) lets the exercise's own
    ``mistakes`` be recognised.
    """
    if student is None:
        return f"d{name} is None: return an array shaped like {name} {expected.shape}"
    student = np.asarray(student, dtype=np.float64)
    if student.shape != expected.shape:
        if student.ndim == 2 and student.shape == expected.shape[::-1] and _close(student.T, expected):
            return f"transposed: d{name} has shape {student.shape} but {name} has shape {expected.shape}, and its transpose is right"
        try:
            broadcastable = np.broadcast_shapes(student.shape, expected.shape) == student.shape
        except ValueError:
            broadcastable = False
        if broadcastable and _close(unbroadcast(student, expected.shape), expected):
            return (
                f"missing the broadcast reduction: d{name} has shape {student.shape}, but {name} has shape "
                f"{expected.shape}. {name} was broadcast in the forward pass, so sum the gradient over the broadcast axes"
            )
        return f"shape wrong: d{name} has shape {student.shape}, expected {expected.shape} (a gradient has the shape of its input)"
    if _close(student, expected):
        return None
    if _close(-student, expected):
        return f"wrong sign: d{name} is exactly minus the right gradient"
    if grad_outs is not None:
        found = _mistake_diagnosis(student, expected, name, exercise, inputs, grad_outs)
        if found:
            return found
    if name in exercise.time_axis:
        found = _time_diagnosis(student, expected, exercise.time_axis[name])
        if found:
            return found
    if exercise.index_input is not None:
        found = _repeat_diagnosis(student, expected, inputs[exercise.index_input])
        if found:
            return found
    norm = float((expected * expected).sum())
    if norm > 0:
        factor = float((student * expected).sum()) / norm
        if _close(student, factor * expected):
            return f"off by a constant factor: d{name} is {factor:.4g} × the right gradient"
    if student.ndim == 2 and student.shape[0] == student.shape[1] and _close(student.T, expected):
        return f"transposed: d{name} is the transpose of the right gradient"
    return f"wrong values in d{name} (no simple pattern: compare the worst elements below with your derivation)"


def _relative_error(yours: np.ndarray, right: np.ndarray) -> float:
    """max |yours - right| / max |right|: how many digits of the answer are right."""
    scale = float(np.abs(right).max(initial=0.0))
    return float(np.abs(yours - right).max(initial=0.0)) / scale if scale > 0 else 0.0


def _worst_elements(student, numeric, reference, rows: int = 4) -> str:
    lines = [f"      {'index':>12}  {'yours':>11}  {'numeric':>11}  {'autograd':>11}"]
    if np.shape(student) != reference.shape:
        return ""
    error = np.abs(np.asarray(student, dtype=np.float64) - reference)
    for flat in np.argsort(error, axis=None)[::-1][:rows]:
        index = tuple(int(i) for i in np.unravel_index(flat, reference.shape)) if reference.ndim else ()
        lines.append(
            f"      {str(index):>12}  {np.asarray(student).flat[flat]:>11.5g}  {numeric.flat[flat]:>11.5g}  {reference.flat[flat]:>11.5g}"
        )
    return "\n".join(lines)


def _reference_grads(exercise: Exercise, inputs: dict, grad_outs: tuple) -> list[np.ndarray]:
    tensors = {
        key: tl.tensor(value, dtype=value.dtype, requires_grad=key in exercise.grads) for key, value in inputs.items()
    }
    outputs = exercise.reference(**tensors)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    total = sum((out * tl.tensor(g)).sum() for out, g in zip(outputs, grad_outs))
    total.backward()
    return [tensors[key].grad.numpy() for key in exercise.grads]


def _numeric_grads(exercise: Exercise, inputs: dict, grad_outs: tuple) -> list[np.ndarray]:
    def weighted_output(*values):
        arrays = dict(inputs, **{key: v.data for key, v in zip(exercise.grads, values)})
        outputs, _ = exercise.forward(**arrays)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        return tl.tensor(sum(float((out * g).sum()) for out, g in zip(outputs, grad_outs)), dtype=np.float64)

    tensors = [tl.tensor(inputs[key], dtype=np.float64, requires_grad=True) for key in exercise.grads]
    return tl.numerical_grad(weighted_output, tensors)


def _call_student(student_backward: Callable, grad_outs: tuple, cache, exercise: Exercise):
    """The student's gradients as a list, or a message saying why there are none."""
    grad_arg = grad_outs if len(grad_outs) > 1 else grad_outs[0]
    try:
        result = student_backward(grad_arg, cache)
    except NotImplementedError as error:
        return None, f"not implemented yet ({error})"
    except Exception as error:  # the student's code may raise anything; report it, do not crash
        where = traceback.extract_tb(error.__traceback__)[-1]
        return None, f"your backward raised {type(error).__name__}: {error} (line {where.lineno}: {where.line})"
    expected = len(exercise.grads)
    if expected == 1 and not isinstance(result, (tuple, list)):
        result = [result]
    if not isinstance(result, (tuple, list)) or len(result) != expected:
        got = len(result) if isinstance(result, (tuple, list)) else 1
        return None, f"returned {got} gradient(s), expected {expected}: d{', d'.join(exercise.grads)} in this order"
    return list(result), None


def check(name: str, student_backward: Callable, trials: int = 3, seed: int = 0, verbose: bool = True, plot: bool = False) -> CheckResult:
    """Check ``student_backward(grad_out, cache)`` for exercise ``name`` on ``trials`` random inputs.

    Prints "passed" with the largest error, or, per wrong gradient, a diagnosis and the
    worst elements (yours vs central differences vs autograd). ``plot=True`` also draws
    a heat map of the error of each wrong matrix gradient. Returns a ``CheckResult``.
    """
    if name not in BY_NAME:
        raise KeyError(f"no exercise named {name!r}; the exercises are: {', '.join(BY_NAME)}")
    exercise = BY_NAME[name]
    rng = np.random.default_rng(seed)
    header = f"exercise {exercise.number} ({exercise.name})"
    relative_error = 0.0
    for trial in range(trials):
        inputs = exercise.make_inputs(rng)
        outputs, cache = exercise.forward(**{k: v.copy() for k, v in inputs.items()})
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        grad_outs = tuple(rng.standard_normal(np.shape(out)) for out in outputs)
        student, problem = _call_student(student_backward, grad_outs, cache, exercise)
        if problem:
            return _finish(CheckResult(name, False, {"backward": problem}, message=f"{header}: FAILED — {problem}"), verbose)
        reference = _reference_grads(exercise, inputs, grad_outs)
        numeric = _numeric_grads(exercise, inputs, grad_outs)
        diagnoses, details = {}, []
        for key, yours, right, approx in zip(exercise.grads, student, reference, numeric):
            found = diagnose(yours, right, key, exercise, inputs, grad_outs)
            if found is None:
                relative_error = max(relative_error, _relative_error(np.asarray(yours, dtype=np.float64), right))
                continue
            diagnoses[key] = found
            details.append(f"  d{key}: {found}\n{_worst_elements(yours, approx, right)}".rstrip())
            if plot and np.ndim(yours) == 2 and np.shape(yours) == right.shape:
                _plot_error(key, np.asarray(yours) - right)
        if diagnoses:
            correct = [k for k in exercise.grads if k not in diagnoses]
            lines = [f"{header}: FAILED on random input {trial + 1} of {trials}"] + details
            if correct:
                lines.append(f"  correct: d{', d'.join(correct)}")
            lines.append(f"  hint: {exercise.hint}")
            return _finish(CheckResult(name, False, diagnoses, relative_error, "\n".join(lines)), verbose)
    message = f"{header}: passed on {trials} random inputs (relative error {relative_error:.1e}; float64 answers reach ~1e-15, the tolerance is {RTOL:g})"
    return _finish(CheckResult(name, True, {}, relative_error, message), verbose)


def _plot_error(name: str, error: np.ndarray) -> None:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4, 3))
    image = axes.imshow(error, cmap="coolwarm")
    axes.set_title(f"d{name}: yours - correct")
    figure.colorbar(image)
    plt.show()


def _finish(result: CheckResult, verbose: bool) -> CheckResult:
    if verbose:
        print(result.message)
    report = os.environ.get(REPORT_ENV)
    if report:
        with open(report, "a", encoding="utf-8") as file:
            file.write(json.dumps({"exercise": result.exercise, "passed": result.passed, "diagnoses": result.diagnoses}) + "\n")
    return result
