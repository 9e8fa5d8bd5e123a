"""Evaluation metrics: for classifiers (accuracy, precision, recall, F1, the confusion
matrix) and for generated sequences (exact match, BLEU).

**Classification.** For class c, counting over the examples (true label y, predicted label ŷ):

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

**BLEU** (Papineni et al., 2002) scores generated token sequences (hypotheses) against
one or more reference sequences each, over a whole corpus::

    p_n  = Σ_sentences Σ_{n-grams g of the hypothesis} min(count_hyp(g), max_ref count_ref(g))
           / Σ_sentences (number of n-grams in the hypothesis)          n = 1 … N (N = 4)
    c    = the total length of the hypotheses
    r    = Σ_sentences the length of the reference closest to the hypothesis's (the
           shorter on a tie)
    BP   = 1 if c > r else exp(1 − r / c)                               (0 when c = 0)
    BLEU = BP · exp((1/N) Σ_n ln p_n)                                   (0 if some p_n = 0)

The *clipping* (min with the largest count in any one reference) stops "the the the"
from scoring on every "the"; the *brevity penalty* BP stops a short hypothesis that
says only what it is sure of from scoring high precisions. A corpus of short sentences
often has no matching 4-gram at all, and then BLEU is 0; ``smooth=True`` adds 1 to the
matches and to the total of every order n ≥ 2 (Lin and Och, 2004; NLTK's method 2,
sacreBLEU's ``add-k`` with k = 1).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
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


# ---------------------------------------------------------------- generated sequences


def _token_sequence(sequence, what: str) -> tuple:
    """A sequence of tokens (strings or ids) as a tuple; a string is refused, not split."""
    if isinstance(sequence, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of tokens, got the string {sequence[:30]!r}: split it first (e.g. text.split())")
    if hasattr(sequence, "tolist"):
        sequence = sequence.tolist()
    if not isinstance(sequence, (list, tuple)):
        raise TypeError(f"{what} must be a list of tokens, got {type(sequence).__name__}")
    return tuple(sequence)


def _checked_corpus(references, hypotheses) -> list[tuple[list[tuple], tuple]]:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} entries of references: one entry per hypothesis")
    corpus = []
    for i, (options, hypothesis) in enumerate(zip(references, hypotheses)):
        if isinstance(options, (str, bytes)) or not len(options) or not all(
            isinstance(option, (list, tuple)) or hasattr(option, "tolist") for option in options
        ):
            raise TypeError(
                f"references[{i}] must be a non-empty list of reference token lists (the references of "
                f"hypothesis {i}); with one reference per hypothesis, pass [[reference] for reference in references]"
            )
        corpus.append(([_token_sequence(o, f"references[{i}]") for o in options], _token_sequence(hypothesis, f"hypotheses[{i}]")))
    return corpus


def exact_match(references: Sequence[Sequence[Sequence]], hypotheses: Sequence[Sequence]) -> float:
    """The fraction of hypotheses equal to one of their references, token for token
    (references[i]: a list of reference token lists, as for ``corpus_bleu``)."""
    corpus = _checked_corpus(references, hypotheses)
    return sum(hypothesis in options for options, hypothesis in corpus) / len(corpus) if corpus else 0.0


def _ngram_counts(tokens: tuple, n: int) -> Counter:
    return Counter(tokens[i : i + n] for i in range(len(tokens) - n + 1))


@dataclass(frozen=True)
class BLEUScore:
    """Corpus BLEU and the numbers it is made of (``float(bleu)`` is the score, in [0, 1])."""

    score: float
    precisions: tuple[float, ...]  # p_1 … p_N: clipped (and smoothed, if asked) n-gram precisions
    brevity_penalty: float
    hypothesis_length: int  # c
    reference_length: int  # r

    def __float__(self) -> float:
        return self.score


def corpus_bleu(
    references: Sequence[Sequence[Sequence]], hypotheses: Sequence[Sequence], max_order: int = 4, smooth: bool = False
) -> BLEUScore:
    """BLEU of ``hypotheses`` (token lists) against ``references`` (for each hypothesis, a
    list of one or more reference token lists), as in the module docstring.

    Tokens may be words or ids: anything hashable that compares equal when it should.
    """
    if max_order < 1:
        raise ValueError(f"max_order must be at least 1, got {max_order}")
    corpus = _checked_corpus(references, hypotheses)
    matches, totals = [0] * max_order, [0] * max_order
    hypothesis_length = reference_length = 0
    for options, hypothesis in corpus:
        hypothesis_length += len(hypothesis)
        reference_length += min((len(o) for o in options), key=lambda length: (abs(length - len(hypothesis)), length))
        for n in range(1, max_order + 1):
            counts = _ngram_counts(hypothesis, n)
            most_in_a_reference: Counter = Counter()
            for option in options:
                most_in_a_reference |= _ngram_counts(option, n)  # | keeps the larger count
            matches[n - 1] += sum(min(count, most_in_a_reference[gram]) for gram, count in counts.items())
            totals[n - 1] += max(len(hypothesis) - n + 1, 0)
    added = [1 if smooth and n >= 2 else 0 for n in range(1, max_order + 1)]
    precisions = tuple(
        (match + extra) / (total + extra) if total + extra else 0.0 for match, total, extra in zip(matches, totals, added)
    )
    if hypothesis_length == 0:
        brevity_penalty = 0.0
    elif hypothesis_length > reference_length:
        brevity_penalty = 1.0
    else:
        brevity_penalty = math.exp(1 - reference_length / hypothesis_length)
    if min(precisions) == 0.0:
        score = 0.0
    else:
        score = brevity_penalty * math.exp(sum(math.log(p) for p in precisions) / max_order)
    return BLEUScore(score, precisions, brevity_penalty, hypothesis_length, reference_length)
