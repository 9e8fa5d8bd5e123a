"""F.cross_entropy (fused) and its composed twin: gradients, equality, PyTorch, errors."""
from __future__ import annotations

import numpy as np
import pytest

import tinylm as tl
import tinylm.functional as F
from assertions import assert_close
from tinylm.functional.cross_entropy import cross_entropy_composed

CLASSES = 5
REDUCTIONS = ["mean", "sum", "none"]
SMOOTHINGS = [0.0, 0.3]
# the leading axes of the logits: several, one, none (a single prediction)
LEADING_SHAPES = [pytest.param((2, 3), id="BxT"), pytest.param((6,), id="N"), pytest.param((), id="scalar")]
BOTH_FORMS = [pytest.param(F.cross_entropy, id="fused"), pytest.param(cross_entropy_composed, id="composed")]


def make_case(leading, dtype=np.float64, ignore_index=-100, scale=2.0, seed=0):
    """Random logits (*leading, CLASSES) and targets (*leading), about a third of them ignored."""
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((*leading, CLASSES))).astype(dtype)
    targets = rng.integers(0, CLASSES, size=leading)
    targets[rng.random(leading) < 1 / 3] = ignore_index
    return logits, targets


def upstream_for(loss, seed=4):
    """A random upstream gradient shaped like the loss (None for a scalar loss)."""
    if loss.ndim == 0:
        return None
    return np.random.default_rng(seed).standard_normal(loss.shape).astype(loss.dtype)


def loss_and_grad(fn, logits, targets, device, **options):
    scores = tl.tensor(logits, device=device, requires_grad=True)
    loss = fn(scores, targets, **options)
    loss.backward(upstream_for(loss))
    return loss, scores.grad


@pytest.mark.parametrize("fn", BOTH_FORMS)
@pytest.mark.parametrize("leading", LEADING_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", SMOOTHINGS)
def test_gradcheck(fn, leading, reduction, label_smoothing, device, float64):
    logits, targets = make_case(leading)
    scores = tl.tensor(logits, device=device, requires_grad=True)
    assert tl.gradcheck(lambda x: fn(x, targets, reduction=reduction, label_smoothing=label_smoothing), [scores])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("leading", LEADING_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", SMOOTHINGS)
def test_fused_equals_composed(dtype, leading, reduction, label_smoothing, device):
    logits, targets = make_case(leading, dtype=dtype)
    options = dict(reduction=reduction, label_smoothing=label_smoothing)
    fused_loss, fused_grad = loss_and_grad(F.cross_entropy, logits, targets, device, **options)
    composed_loss, composed_grad = loss_and_grad(cross_entropy_composed, logits, targets, device, **options)
    assert fused_loss.dtype == fused_grad.dtype == dtype, "the fused loss changed the dtype"
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    assert_close(fused_loss, composed_loss, **tolerance, name="loss")
    assert_close(fused_grad, composed_grad, **tolerance, name="gradient")


def test_non_contiguous_logits(device):
    logits, targets = make_case((3, 4))
    scores = tl.tensor(logits, device=device, requires_grad=True)
    swapped_targets = targets.T.copy()
    fused = F.cross_entropy(scores.transpose(1, 0, 2), swapped_targets, reduction="sum")
    composed = cross_entropy_composed(scores.transpose(1, 0, 2), swapped_targets, reduction="sum")
    fused.backward()
    fused_grad, scores.grad = scores.grad, None
    composed.backward()
    assert_close(fused, composed, rtol=1e-12, name="loss of transposed logits")
    assert_close(fused_grad, scores.grad, rtol=1e-12, atol=1e-15, name="gradient of transposed logits")


@pytest.mark.parametrize("leading", LEADING_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", SMOOTHINGS)
@pytest.mark.parametrize("ignore_index", [-100, 2], ids=["ignore-100", "ignore-class-2"])
@pytest.mark.parametrize("scale", [2.0, 1e4], ids=["logits~2", "logits~1e4"])
def test_matches_pytorch(leading, reduction, label_smoothing, ignore_index, scale, device, torch):
    logits, targets = make_case(leading, dtype=np.float32, ignore_index=ignore_index, scale=scale, seed=1)
    options = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
    loss, grad = loss_and_grad(F.cross_entropy, logits, targets, device, **options)

    # PyTorch wants the classes on axis 1: (N, C, d1, ...)
    theirs = torch.tensor(np.moveaxis(logits, -1, 1) if logits.ndim > 1 else logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(theirs, torch.tensor(targets), **options)
    upstream = upstream_for(loss)
    expected.backward(None if upstream is None else torch.tensor(upstream))
    expected_grad = theirs.grad.numpy()
    assert_close(loss, expected, rtol=1e-5, atol=1e-6, name="loss")
    assert_close(grad, np.moveaxis(expected_grad, 1, -1) if logits.ndim > 1 else expected_grad,
                 rtol=1e-5, atol=1e-7, name="gradient")


def test_backward_twice_with_retained_graph(device):
    logits, targets = make_case((2, 3), dtype=np.float32)
    scores = tl.tensor(logits, device=device, requires_grad=True)
    loss = F.cross_entropy(scores, targets, label_smoothing=0.3)
    loss.backward(retain_graph=True)
    first = scores.grad.numpy().copy()
    loss.backward()
    assert_close(scores.grad, 2 * first, rtol=1e-6, name="gradient accumulated over two backward passes")


@pytest.mark.parametrize("fn", BOTH_FORMS)
def test_uniform_logits_cost_log_of_the_class_count(fn, device):
    loss = fn(tl.zeros((4, CLASSES), device=device), [0, 1, 2, 4])
    assert_close(loss, np.log(CLASSES), rtol=1e-6, name="loss of uniform predictions")


@pytest.mark.parametrize("label_smoothing", SMOOTHINGS)
def test_huge_logits_stay_finite(label_smoothing, device):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [-1e4, -1e4, -1e4]], dtype=np.float32)
    targets = np.array([1, 2, 0])
    options = dict(reduction="none", label_smoothing=label_smoothing)
    fused_loss, fused_grad = loss_and_grad(F.cross_entropy, logits, targets, device, **options)
    composed_loss, composed_grad = loss_and_grad(cross_entropy_composed, logits, targets, device, **options)
    for name, value in [("loss", fused_loss), ("gradient", fused_grad), ("composed gradient", composed_grad)]:
        assert np.isfinite(value.numpy()).all(), f"±1e4 logits gave a {name} with inf or NaN: {value.numpy()}"
    assert_close(fused_loss, composed_loss, rtol=1e-6, name="loss at ±1e4")
    assert_close(fused_grad, composed_grad, rtol=1e-6, atol=1e-7, name="gradient at ±1e4")


@pytest.mark.parametrize("fn", BOTH_FORMS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_targets_ignored_gives_zero_loss_and_gradient(fn, reduction, device):
    logits, _ = make_case((2, 3), dtype=np.float32)
    targets = np.full((2, 3), -100)
    scores = tl.tensor(logits, device=device, requires_grad=True)
    loss = fn(scores, targets, reduction=reduction, label_smoothing=0.3)
    loss.backward(np.ones(loss.shape, dtype=np.float32))
    assert_close(loss, np.zeros(loss.shape), atol=0, name="loss with every target ignored")
    assert_close(scores.grad, np.zeros(logits.shape), atol=0, name="gradient with every target ignored")


def test_pytorch_gives_nan_when_all_targets_are_ignored(torch):
    """Why our choice differs: PyTorch's mean over zero targets is 0/0."""
    loss = torch.nn.functional.cross_entropy(torch.zeros(3, CLASSES), torch.full((3,), -100))
    assert torch.isnan(loss)


def test_targets_may_be_tensor_array_or_list(device):
    logits = tl.tensor(make_case((3,))[0], device=device)
    as_list = F.cross_entropy(logits, [0, 3, 1], reduction="none")
    as_array = F.cross_entropy(logits, np.array([0, 3, 1]), reduction="none")
    as_tensor = F.cross_entropy(logits, tl.tensor([0, 3, 1], device=device), reduction="none")
    assert_close(as_list, as_array, atol=0, name="loss from a list of targets")
    assert_close(as_tensor, as_array, atol=0, name="loss from a tensor of targets")


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", BOTH_FORMS)
@pytest.mark.parametrize(
    "bad_value, message",
    [
        (5, r"targets must be class indices in \[0, 4\] or ignore_index=-100, got 5 at position \(1, 2\)"),
        (-1, r"targets must be class indices in \[0, 4\] or ignore_index=-100, got -1 at position \(1, 2\)"),
    ],
)
def test_out_of_range_target(fn, bad_value, message):
    logits, targets = make_case((2, 3))
    targets[1, 2] = bad_value
    with pytest.raises(IndexError, match=message):
        fn(tl.tensor(logits), targets)


@pytest.mark.parametrize("fn", BOTH_FORMS)
def test_float_targets(fn):
    with pytest.raises(TypeError, match="targets must be integer class indices, got dtype float32"):
        fn(tl.zeros((2, CLASSES)), np.array([0.0, 1.0], dtype=np.float32))


@pytest.mark.parametrize("fn", BOTH_FORMS)
def test_targets_shape_must_match_leading_axes(fn):
    message = r"logits of shape \(2, 3, 5\) \(classes on the last axis\) need targets of shape \(2, 3\), got \(2, 5\)"
    with pytest.raises(tl.ShapeError, match=message):
        fn(tl.zeros((2, 3, CLASSES)), np.zeros((2, 5), dtype=np.int64))


@pytest.mark.parametrize("fn", BOTH_FORMS)
def test_unknown_reduction(fn):
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum', 'none'\), got 'avg'"):
        fn(tl.zeros((2, CLASSES)), [0, 1], reduction="avg")


@pytest.mark.parametrize("fn", BOTH_FORMS)
def test_label_smoothing_out_of_range(fn):
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        fn(tl.zeros((2, CLASSES)), [0, 1], label_smoothing=1.5)


@pytest.mark.parametrize("fn", BOTH_FORMS)
def test_integer_logits(fn):
    with pytest.raises(TypeError, match="logits must be floating point, got dtype int64"):
        fn(tl.arange(CLASSES), 0)


@pytest.mark.parametrize("fn", BOTH_FORMS)
def test_logits_without_class_axis(fn):
    with pytest.raises(tl.ShapeError, match=r"logits need a class axis \(shape \(\.\.\., C\)\), got a 0-d tensor"):
        fn(tl.tensor(1.0), 0)
