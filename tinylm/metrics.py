"""Classification metrics: accuracy, precision, recall, F1 and the confusion matrix.

For class c, counting over the examples (true label y, predicted label ŷ):

    TP_c = #{y = c, ŷ = c}    FP_c = #{y ≠ c, ŷ = c}    FN_c = #{y = c, ŷ ≠ c}

    precision_c = TP_c / (TP_c + FP_c)     of the examples called c, the share that are c
    recall_c    = TP_c / (TP_c + FN_c)     of the examples that are c, the share called c
    F1_c        = 2·TP_c / (2·TP_c + FP_c + FN_c)   (the harmonic mean of the two)

``average="macro"`` is the unweighted mean over the classes, so a rare class counts as
much as a frequent one; ``average=None`` gives the per-class values. A ratio whose
denominator is 0 (a class never predicted, or never present) is ``zero_division``
(0 by default), as in scikit-learn. All of them read off the confusion matrix
C[i, j] = #{y = i, ŷ = j}: TP is its diagonal, FP its column sums minus TP, FN its row
sums minus TP.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from . import backend
from .tensor import Tensor

if TYPE_CHECKING:
    from matplotlib.figure import Figure

AVERAGES = (None, "macro")


def _labels(values, name: str) -> np.ndarray:
    """Integer class labels as a flat host array (from a list, an array or a tensor)."""
    if isinstance(values, Tensor):
        values = values.data
    array = backend.to_numpy(values) if hasattr(values, "__cuda_array_interface__") else np.asarray(values)
    if array.size and array.dtype.kind not in "iub":
        raise TypeError(f"{name} must hold integer class labels, got dtype {array.dtype}")
    return array.reshape(-1).astype(np.int64)


def _checked_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same number of labels, got {y_true.size} and {y_pred.size}")
    if (y_true < 0).any() or (y_pred < 0).any():
        raise ValueError("class labels must be non-negative integers 0, 1, 2, ...")
    return y_true, y_pred


def accuracy(y_true, y_pred) -> float:
    """The fraction of labels predicted exactly (0 for no examples)."""
    y_true, y_pred = _checked_pair(y_true, y_pred)
    return float((y_true == y_pred).mean()) if y_true.size else 0.0


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """C (num_classes, num_classes) with C[i, j] = the number of examples of class i predicted as j.

    Rows are true classes and columns predictions (as scikit-learn). ``num_classes``
    defaults to one more than the largest label seen.
    """
    y_true, y_pred = _checked_pair(y_true, y_pred)
    seen = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    if num_classes is None:
        num_classes = seen
    elif seen > num_classes:
        raise ValueError(f"num_classes={num_classes}, but a label {seen - 1} occurs (labels must be < num_classes)")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def _ratio(numerator: np.ndarray, denominator: np.ndarray, zero_division: float) -> np.ndarray:
    safe = np.where(denominator > 0, denominator, 1)
    return np.where(denominator > 0, numerator / safe, zero_division)


def _averaged(per_class: np.ndarray, average: str | None):
    if average is None:
        return per_class
    if average != "macro":
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    return float(per_class.mean()) if per_class.size else 0.0


def precision(y_true, y_pred, num_classes: int | None = None, average: str | None = "macro", zero_division: float = 0.0):
    """TP / (TP + FP) per class (``average=None``) or its macro average."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    true_positives = np.diag(matrix)
    return _averaged(_ratio(true_positives, matrix.sum(axis=0), zero_division), average)


def recall(y_true, y_pred, num_classes: int | None = None, average: str | None = "macro", zero_division: float = 0.0):
    """TP / (TP + FN) per class (``average=None``) or its macro average."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    true_positives = np.diag(matrix)
    return _averaged(_ratio(true_positives, matrix.sum(axis=1), zero_division), average)


def f1_score(y_true, y_pred, num_classes: int | None = None, average: str | None = "macro", zero_division: float = 0.0):
    """2·TP / (2·TP + FP + FN) per class (``average=None``) or its macro average."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    true_positives = np.diag(matrix)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)  # = 2·TP + FP + FN
    return _averaged(_ratio(2 * true_positives, denominator, zero_division), average)


def plot_confusion_matrix(
    matrix, class_names: Sequence[str] | None = None, normalize: bool = False, ax=None
) -> "Figure":
    """Draw a confusion matrix as a heat map with the count (or row share) in every cell.

    ``normalize=True`` divides each row by its total, so a cell reads "the share of class
    i predicted as j" and the diagonal is each class's recall.
    """
    from .viz import _new_axes

    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"plot_confusion_matrix needs a square matrix, got shape {matrix.shape}")
    if class_names is not None and len(class_names) != matrix.shape[0]:
        raise ValueError(f"{len(class_names)} class names for a {matrix.shape[0]}-class matrix")
    if normalize:
        matrix = _ratio(matrix, matrix.sum(axis=1, keepdims=True), 0.0)
    figure, ax = _new_axes(ax, (1.5 + 0.6 * len(matrix), 1.2 + 0.6 * len(matrix)))
    image = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=ax)
    names = class_names if class_names is not None else [str(i) for i in range(len(matrix))]
    ax.set_xticks(range(len(matrix)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(matrix)), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    brightest = matrix.max() if matrix.size else 0.0
    for (i, j), value in np.ndenumerate(matrix):
        text = f"{value:.2f}" if normalize else f"{int(value)}"
        ax.text(j, i, text, ha="center", va="center", color="white" if value > brightest / 2 else "black")
    return figure
