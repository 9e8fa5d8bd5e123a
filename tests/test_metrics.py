"""Classification metrics against counts worked out by hand, zero-division cases, the plot."""
from __future__ import annotations

import numpy as np
import pytest

import tinylm as tl
from tinylm import metrics

# 3 classes, 8 examples. By hand:
#   class 0: TP 2 (examples 0, 1), FP 1 (example 5), FN 1 (example 2)
#   class 1: TP 2 (examples 3, 4), FP 2 (examples 2, 7), FN 1 (example 5)
#   class 2: TP 1 (example 6), FP 0, FN 1 (example 7)
Y_TRUE = [0, 0, 0, 1, 1, 1, 2, 2]
Y_PRED = [0, 0, 1, 1, 1, 0, 2, 1]
MATRIX = [[2, 1, 0], [1, 2, 0], [0, 1, 1]]
PRECISION = [2 / 3, 2 / 4, 1 / 1]
RECALL = [2 / 3, 2 / 3, 1 / 2]
F1 = [2 * 2 / (2 * 2 + 1 + 1), 2 * 2 / (2 * 2 + 2 + 1), 2 * 1 / (2 * 1 + 0 + 1)]


def test_confusion_matrix_by_hand():
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_TRUE, Y_PRED), MATRIX)
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_TRUE, Y_PRED, num_classes=4)[:3, :3], MATRIX)
    assert metrics.confusion_matrix(Y_TRUE, Y_PRED, num_classes=4)[3].sum() == 0


def test_accuracy_precision_recall_f1_by_hand():
    assert metrics.accuracy(Y_TRUE, Y_PRED) == pytest.approx(5 / 8)
    np.testing.assert_allclose(metrics.precision(Y_TRUE, Y_PRED, average=None), PRECISION)
    np.testing.assert_allclose(metrics.recall(Y_TRUE, Y_PRED, average=None), RECALL)
    np.testing.assert_allclose(metrics.f1_score(Y_TRUE, Y_PRED, average=None), F1)
    assert metrics.precision(Y_TRUE, Y_PRED) == pytest.approx(np.mean(PRECISION))
    assert metrics.recall(Y_TRUE, Y_PRED) == pytest.approx(np.mean(RECALL))
    assert metrics.f1_score(Y_TRUE, Y_PRED) == pytest.approx(np.mean(F1))


def test_f1_is_the_harmonic_mean_of_precision_and_recall():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    p, r = metrics.precision(y_true, y_pred, average=None), metrics.recall(y_true, y_pred, average=None)
    np.testing.assert_allclose(metrics.f1_score(y_true, y_pred, average=None), 2 * p * r / (p + r))


def test_metrics_accept_tensors(device):
    y_true, y_pred = tl.tensor(Y_TRUE, device=device), tl.tensor(Y_PRED, device=device)
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(5 / 8)
    assert metrics.f1_score(y_true, y_pred) == pytest.approx(np.mean(F1))
    assert metrics.accuracy(y_true.data, y_pred.data) == pytest.approx(5 / 8)  # raw arrays of the device too


def test_zero_division():
    # class 2 is never predicted and never present; class 1 is predicted but never present
    y_true, y_pred = [0, 0, 0], [0, 1, 0]
    np.testing.assert_allclose(metrics.precision(y_true, y_pred, 3, average=None), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(metrics.recall(y_true, y_pred, 3, average=None), [2 / 3, 0.0, 0.0])
    np.testing.assert_allclose(metrics.recall(y_true, y_pred, 3, average=None, zero_division=1.0), [2 / 3, 1.0, 1.0])
    np.testing.assert_allclose(metrics.f1_score(y_true, y_pred, 3, average=None, zero_division=1.0), [0.8, 0.0, 1.0])
    assert metrics.accuracy([], []) == 0.0


def test_errors():
    with pytest.raises(ValueError, match=r"same number of labels, got 3 and 2"):
        metrics.accuracy([0, 1, 1], [0, 1])
    with pytest.raises(TypeError, match=r"y_pred must hold integer class labels, got dtype float64"):
        metrics.accuracy([0, 1], [0.0, 1.0])
    with pytest.raises(ValueError, match=r"num_classes=2, but a label 2 occurs"):
        metrics.confusion_matrix([0, 2], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match=r"average must be one of \(None, 'macro'\), got 'micro'"):
        metrics.f1_score([0, 1], [0, 1], average="micro")
    with pytest.raises(ValueError, match=r"non-negative"):
        metrics.accuracy([-1], [0])


def test_plot_confusion_matrix():
    pytest.importorskip("matplotlib")
    figure = metrics.plot_confusion_matrix(MATRIX, class_names=["a", "b", "c"], normalize=True)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    cell_texts = [t.get_text() for t in ax.texts]
    assert cell_texts[0] == "0.67" and cell_texts[-1] == "0.50"  # row shares: 2/3 and 1/2
    with pytest.raises(ValueError, match=r"square matrix, got shape \(2, 3\)"):
        metrics.plot_confusion_matrix(np.zeros((2, 3)))
