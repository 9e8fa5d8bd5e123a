"""Cross-entropy of logits against integer class targets, the loss of every language model.

For one row of logits x (C classes), its target class t and label smoothing ε:

    log pⱼ = (xⱼ - m) - log Σₖ e^{xₖ - m}          (m = max x: log-softmax, never overflows)
    qⱼ     = (1 - ε)·[j = t] + ε / C                 (the one-hot target, smoothed)
    loss   = -Σⱼ qⱼ log pⱼ = (1 - ε)·(-log p_t) + ε·meanⱼ(-log pⱼ)

Its gradient is the famous one. With log pⱼ = xⱼ - log Σₖ e^{xₖ} and Σⱼ qⱼ = 1:

    ∂loss/∂xᵢ = -qᵢ + Σⱼ qⱼ · e^{xᵢ} / Σₖ e^{xₖ} = pᵢ - qᵢ        (softmax minus target)

Two implementations live here and the tests hold them equal:

* ``cross_entropy``: one fused Function whose backward is that formula, written out;
* ``cross_entropy_composed``: the same loss built from log_softmax, integer indexing and
  a sum, differentiated by autograd one primitive at a time (slower, more memory).
"""
from __future__ import annotations

from .. import backend
from ..ops import Function, ShapeError
from ..tensor import Tensor
from .softmax import log_softmax

REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """Fused softmax cross-entropy over the last axis (see the module docstring for the math).

    Shapes: logits (..., C), targets (...) of integers -> loss (...) for reduction="none",
    else a scalar. Rows whose target equals ``ignore_index`` get loss 0 and gradient 0.

    Gradient: dlogits = w · (p - q) for every row, where the row weight w is
        dy of that row (reduction "none"), dy ("sum"), dy / (number of kept rows) ("mean"),
    and 0 for ignored rows.
    """

    def forward(self, logits, targets, ignore_index: int, reduction: str, label_smoothing: float):
        xp = backend.array_module(logits)
        self.logits_shape, self.reduction, self.label_smoothing = logits.shape, reduction, label_smoothing
        loss_shape, classes = targets.shape, logits.shape[-1]
        logits = logits.reshape(-1, classes)  # one row per prediction (a view when contiguous)
        targets = targets.reshape(-1)
        kept = targets != ignore_index
        targets = xp.where(kept, targets, 0)  # ignored rows read class 0; their weight is 0
        rows = xp.arange(len(targets))

        exps = logits - logits.max(axis=1, keepdims=True)  # x - m, soon e^{x - m}
        loss = -exps[rows, targets]  # -(x_t - m), read before exps is exponentiated in place
        if label_smoothing:
            loss = (1 - label_smoothing) * loss - label_smoothing * exps.mean(axis=1)
        xp.exp(exps, out=exps)
        row_sums = exps.sum(axis=1)
        loss += xp.log(row_sums)  # -log pⱼ = log Σ e^{x - m} - (xⱼ - m), and Σ qⱼ = 1
        loss = xp.where(kept, loss, 0)  # not loss * kept: an ignored row of NaN or inf logits adds 0, not NaN

        # backward needs p = e^{x - m} / Σ, so it keeps e^{x - m} (N, C) and the row sums
        # (N,): the logits themselves can be freed, as PyTorch does with its log-softmax
        self.exps, self.row_sums, self.targets, self.rows, self.kept = exps, row_sums, targets, rows, kept
        self.count = int(kept.sum())
        if reduction == "none":
            return loss.reshape(loss_shape)
        if reduction == "sum":
            return loss.sum()
        # all targets ignored: count = 0; divide by 1 so the loss is 0, not 0/0 = NaN
        return loss.sum() / max(self.count, 1)

    def backward(self, grad):
        if self.reduction == "none":
            weight = grad.reshape(-1) * self.kept
        elif self.reduction == "sum":
            weight = grad * self.kept
        else:
            weight = grad / max(self.count, 1) * self.kept
        # w · (p - q), one term of q = (1 - ε)·one-hot + ε/C at a time; self.exps is left
        # untouched, so backward(retain_graph=True) can run again
        grad_logits = self.exps * (weight / self.row_sums)[:, None]
        if self.label_smoothing:
            grad_logits -= (self.label_smoothing / grad_logits.shape[1] * weight)[:, None]
        grad_logits[self.rows, self.targets] -= (1 - self.label_smoothing) * weight
        return grad_logits.reshape(self.logits_shape)


def _checked_targets(logits: Tensor, targets, ignore_index: int, reduction: str, label_smoothing: float):
    """The targets as an integer array on the logits' device, after checking every argument."""
    if logits.dtype.kind != "f":
        raise TypeError(f"cross_entropy: logits must be floating point, got dtype {logits.dtype}")
    if logits.ndim == 0:
        raise ShapeError("cross_entropy: logits need a class axis (shape (..., C)), got a 0-d tensor")
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    xp = backend.array_module(logits.data)
    targets = targets.data if isinstance(targets, Tensor) else xp.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(
            f"cross_entropy: targets must be integer class indices, got dtype {targets.dtype} "
            "(probability targets are not supported; convert labels with .astype(np.int64))"
        )
    if targets.shape != logits.shape[:-1]:
        raise ShapeError(
            f"cross_entropy: logits of shape {logits.shape} (classes on the last axis) need targets "
            f"of shape {logits.shape[:-1]}, got {targets.shape}"
        )
    classes = logits.shape[-1]
    out_of_range = ((targets < 0) | (targets >= classes)) & (targets != ignore_index)
    if out_of_range.any():
        position = tuple(int(i) for i in xp.argwhere(out_of_range)[0])
        raise IndexError(
            f"cross_entropy: targets must be class indices in [0, {classes - 1}] or "
            f"ignore_index={ignore_index}, got {int(targets[position])} at position {position}"
        )
    return targets


def cross_entropy(
    logits: Tensor,
    targets,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy between ``logits`` (..., C) and integer ``targets`` (...).

    The semantics are PyTorch's ``torch.nn.functional.cross_entropy``, with one difference
    of layout: here the classes are on the LAST axis (a language model's (B, T, V) output
    goes in as it is), while PyTorch puts them on axis 1 (it wants (B, V, T)).

    Args:
        logits: unnormalised scores, floating point, shape (..., C).
        targets: class indices in [0, C) (a Tensor, array or list of integers), shape (...).
        ignore_index: targets equal to it add nothing to the loss nor to the gradient
            (e.g. padding).
        reduction: "mean" (sum over the non-ignored targets divided by their number),
            "sum", or "none" (the loss of every position, 0 where ignored).
        label_smoothing: ε in [0, 1]: the target becomes (1 - ε)·one-hot + ε/C (ignored
            positions stay out of the smoothing term too, as in PyTorch).
    Returns:
        a scalar tensor, or shape (...) for reduction="none".

    When every target is ignored, "mean" returns 0 with zero gradients (PyTorch returns
    NaN from 0/0; a silent NaN would poison the parameters at the next optimizer step).
    """
    targets = _checked_targets(logits, targets, ignore_index, reduction, label_smoothing)
    return CrossEntropy.apply(
        logits, targets=targets, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing
    )


def cross_entropy_composed(
    logits: Tensor,
    targets,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """The same loss as ``cross_entropy``, built from primitive ops (the reference twin).

    log_softmax gives log p; integer indexing gathers log p_t of every row; a mask zeroes
    the ignored rows; autograd derives the gradient through each of these steps.
    """
    targets = _checked_targets(logits, targets, ignore_index, reduction, label_smoothing)
    xp = backend.array_module(logits.data)
    classes = logits.shape[-1]
    kept = (targets != ignore_index).reshape(-1)
    safe_targets = xp.where(kept, targets.reshape(-1), 0)

    log_probs = log_softmax(logits.reshape(-1, classes))
    loss = -log_probs[xp.arange(len(safe_targets)), safe_targets]
    if label_smoothing:
        loss = (1 - label_smoothing) * loss - label_smoothing * log_probs.mean(axis=1)
    loss = loss * Tensor(kept.astype(logits.dtype))
    if reduction == "none":
        return loss.reshape(targets.shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / max(int(kept.sum()), 1)
