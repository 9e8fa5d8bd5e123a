"""The exercises: every reference solution passes, and each classic mistake is diagnosed."""
from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

from tinylm.exercises import EXERCISES, BY_NAME, check, diagnose
from tinylm.exercises.build import build, split_solution

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {int(p.stem[2:4]): p for p in (ROOT / "instructor" / "exercises").glob("ex*.py")}


def solution(name: str):
    """The reference backward of exercise ``name``, taken from its source (which also runs its check)."""
    namespace = runpy.run_path(str(SOURCES[BY_NAME[name].number]))
    return namespace[f"{name}_backward"]


def corrupt(backward, position: int, change):
    """A planted mistake: the reference backward with gradient ``position`` changed by ``change``."""

    def wrong(grad_out, cache):
        grads = backward(grad_out, cache)
        grads = list(grads) if isinstance(grads, tuple) else [grads]
        grads[position] = change(grads[position])
        return tuple(grads) if len(grads) > 1 else grads[0]

    return wrong


def test_every_exercise_has_a_source_with_a_solution():
    assert sorted(SOURCES) == [e.number for e in EXERCISES]
    for number, path in SOURCES.items():
        student, full = split_solution(path.read_text(), number)
        assert f'NotImplementedError("exercise {number}:' in student
        assert "BEGIN SOLUTION" not in student and "BEGIN SOLUTION" not in full
        assert "NotImplementedError" not in full


def test_generated_notebooks_are_up_to_date():
    assert build(ROOT, check_only=True) == [], "run `python -m tinylm.exercises.build`"


def test_student_notebooks_hold_no_solution_and_do_not_import_it():
    for path in (ROOT / "notebooks" / "exercises").glob("*.ipynb"):
        text = path.read_text()
        assert "NotImplementedError" in text and "instructor" not in text, path.name


@pytest.mark.parametrize("name", [e.name for e in EXERCISES])
def test_reference_solution_passes(name, capsys):
    result = check(name, solution(name))
    assert result.passed, result.message
    assert "passed" in capsys.readouterr().out
    assert result.relative_error < 1e-10


@pytest.mark.parametrize("name", [e.name for e in EXERCISES])
def test_reference_matches_central_differences(name):
    """The exercise's own answers agree: tinylm autograd on the reference vs the NumPy forward."""
    from tinylm.exercises.check import _numeric_grads, _reference_grads

    exercise = BY_NAME[name]
    inputs = exercise.make_inputs(np.random.default_rng(1))
    outputs, _ = exercise.forward(**inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    grad_outs = tuple(np.random.default_rng(2).standard_normal(np.shape(o)) for o in outputs)
    for reference, numeric in zip(_reference_grads(exercise, inputs, grad_outs), _numeric_grads(exercise, inputs, grad_outs)):
        np.testing.assert_allclose(reference, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", [e.name for e in EXERCISES])
def test_sign_factor_and_shape_mistakes_are_diagnosed(name):
    exercise, right = BY_NAME[name], solution(name)
    first, last = exercise.grads[0], exercise.grads[-1]
    sign = check(name, corrupt(right, 0, lambda g: -g), verbose=False)
    assert not sign and sign.diagnoses[first].startswith("wrong sign")
    factor = check(name, corrupt(right, len(exercise.grads) - 1, lambda g: 2 * g), verbose=False)
    assert not factor and factor.diagnoses[last].startswith("off by a constant factor: d" + last + " is 2 ×")
    shape = check(name, corrupt(right, 0, lambda g: g.reshape(-1)[:-1]), verbose=False)
    assert not shape and shape.diagnoses[first].startswith("shape wrong")


def _first_rectangular_matrix(exercise) -> int | None:
    inputs = exercise.make_inputs(np.random.default_rng(0))
    shapes = [np.shape(inputs[g]) for g in exercise.grads]
    return next((i for i, shape in enumerate(shapes) if len(shape) == 2 and shape[0] != shape[1]), None)


@pytest.mark.parametrize("name", [e.name for e in EXERCISES if _first_rectangular_matrix(e) is not None])
def test_transposed_gradients_are_diagnosed(name):
    exercise, right = BY_NAME[name], solution(name)
    position = _first_rectangular_matrix(exercise)
    result = check(name, corrupt(right, position, lambda g: g.T), verbose=False)
    assert result.diagnoses[exercise.grads[position]].startswith("transposed")


def test_missing_broadcast_reduction_is_diagnosed():
    def unreduced_bias(grad_out, cache):
        x, W = cache
        return grad_out @ W.T, x.reshape(-1, x.shape[-1]).T @ grad_out.reshape(-1, W.shape[1]), grad_out

    result = check("linear", unreduced_bias, verbose=False)
    assert result.diagnoses["b"].startswith("missing the broadcast reduction")
    assert "has shape (2, 3, 5), but b has shape (5,)" in result.diagnoses["b"]


def test_bptt_without_carrying_dh_is_diagnosed(capsys):
    def no_bptt(grad_out, cache):
        x, h0, Wx, Wh, hs = cache
        dx, dWx, dWh, db = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wx.shape[1])
        for t in reversed(range(x.shape[1])):
            h_prev = hs[:, t - 1] if t > 0 else h0
            delta = grad_out[:, t] * (1 - hs[:, t] ** 2)  # forgets the gradient arriving from step t+1
            dx[:, t] = delta @ Wx.T
            dWx += x[:, t].T @ delta
            dWh += h_prev.T @ delta
            db += delta.sum(axis=0)
        return dx, delta @ Wh.T, dWx, dWh, db

    result = check("rnn", no_bptt)
    assert result.diagnoses["x"].startswith("gradient only correct at t = T (BPTT not accumulated)")
    printed = capsys.readouterr().out
    assert "FAILED" in printed and "yours" in printed and "numeric" in printed and "hint:" in printed


def test_repeated_ids_overwritten_is_diagnosed():
    def overwrite(grad_out, cache):
        ids, shape = cache
        dW = np.zeros(shape)
        dW[ids] += grad_out
        return dW

    result = check("embedding", overwrite, verbose=False)
    assert result.diagnoses["W"].startswith("repeated ids overwritten instead of added: rows [1, 4]")


def _conv1d_backward_with(flip_dx: bool = False, flip_dW: bool = False, batch_sum: bool = True):
    """The conv1d backward, optionally with a student's classic mistake planted."""

    def backward(grad_out, cache):
        x, W = cache
        taps, out_length = W.shape[2], grad_out.shape[2]
        dx, dW = np.zeros_like(x), np.zeros((x.shape[0],) + W.shape)
        for k in range(taps):
            read = taps - 1 - k if flip_dx else k
            dx[:, :, k : k + out_length] += np.einsum("oc,not->nct", W[:, :, read], grad_out)
            dW[:, :, :, taps - 1 - k if flip_dW else k] = np.einsum("not,nct->noc", grad_out, x[:, :, k : k + out_length])
        return dx, dW.sum(axis=0) if batch_sum else dW, grad_out.sum(axis=(0, 2))

    return backward


def test_conv1d_mistakes_are_diagnosed():
    assert check("conv1d", _conv1d_backward_with(), verbose=False).passed
    flipped = check("conv1d", _conv1d_backward_with(flip_dx=True), verbose=False)
    assert list(flipped.diagnoses) == ["x"] and flipped.diagnoses["x"].startswith("kernel flipped: dx is what the right formula gives")
    reversed_taps = check("conv1d", _conv1d_backward_with(flip_dW=True), verbose=False)
    assert list(reversed_taps.diagnoses) == ["W"] and reversed_taps.diagnoses["W"].startswith("kernel taps reversed")
    unsummed = check("conv1d", _conv1d_backward_with(batch_sum=False), verbose=False)
    assert unsummed.diagnoses["W"].startswith("missing the broadcast reduction: dW has shape (2, 4, 3, 3), but W has shape (4, 3, 3)")


def test_a_mistake_is_only_named_when_it_was_made():
    """The flipped-kernel explanation needs the upstream gradients; without them, or for a
    different wrong answer, the checker falls back to what it can say in general."""
    from tinylm.exercises.check import _reference_grads

    exercise = BY_NAME["conv1d"]
    rng = np.random.default_rng(5)
    inputs = exercise.make_inputs(rng)
    outputs, _ = exercise.forward(**inputs)
    grad_outs = (rng.standard_normal(outputs.shape),)
    right_dx = _reference_grads(exercise, inputs, grad_outs)[0]
    flipped_dx = _reference_grads(exercise, dict(inputs, W=inputs["W"][:, :, ::-1].copy()), grad_outs)[0]
    assert diagnose(flipped_dx, right_dx, "x", exercise, inputs, grad_outs).startswith("kernel flipped")
    assert diagnose(flipped_dx, right_dx, "x", exercise, inputs).startswith("wrong values in dx")
    assert diagnose(right_dx + 1.0, right_dx, "x", exercise, inputs, grad_outs).startswith("wrong values in dx")


def test_unfinished_crashing_and_miscounted_backwards_are_reported():
    def unfinished(grad_out, cache):
        raise NotImplementedError("exercise 1: write this backward pass")

    def crashing(grad_out, cache):
        return grad_out @ np.ones((7, 7))

    assert check("sigmoid", unfinished, verbose=False).diagnoses["backward"].startswith("not implemented yet")
    crash = check("sigmoid", crashing, verbose=False).diagnoses["backward"]
    assert crash.startswith("your backward raised ValueError") and "line" in crash
    counted = check("linear", lambda g, c: (g, g), verbose=False).diagnoses["backward"]
    assert counted == "returned 2 gradient(s), expected 3: dx, dW, db in this order"
    with pytest.raises(KeyError, match="no exercise named 'sigmod'"):
        check("sigmod", unfinished)


def test_results_are_appended_to_the_grade_report(tmp_path, monkeypatch):
    right = solution("tanh")
    report = tmp_path / "report.jsonl"
    monkeypatch.setenv("TINYLM_GRADE_REPORT", str(report))
    check("tanh", right, verbose=False)
    check("tanh", corrupt(right, 0, lambda g: -g), verbose=False)
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [line["passed"] for line in lines] == [True, False]
    assert lines[1]["diagnoses"]["x"].startswith("wrong sign")
