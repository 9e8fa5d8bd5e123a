"""Metrics against counts worked out by hand: classification (zero-division cases, the plot), exact match and BLEU."""
from __future__ import annotations

import math

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


# ---------------------------------------------------------------- BLEU, by hand
#
# Sentence 1: hypothesis "the cat sat on the mat", reference "the cat is on the mat".
#   1-grams: the ×2 (2 in the reference), cat, sat (0), on, mat      -> 5 of 6
#   2-grams: the cat, cat sat (0), sat on (0), on the, the mat       -> 3 of 5
#   3-grams: the cat sat, cat sat on, sat on the (all 0), on the mat -> 1 of 4
#   4-grams: none of the 3 occurs in the reference                   -> 0 of 3
# Sentence 2: hypothesis "a b c d", references "a b c d e f" and "a b c d e": every n-gram
#   matches (4 of 4, 3 of 3, 2 of 2, 1 of 1); the closest reference length is 5.
# Corpus: p = 9/10, 6/8, 3/6, 1/4; c = 6 + 4 = 10, r = 6 + 5 = 11, BP = exp(1 - 11/10).
SENTENCE_1 = ("the cat sat on the mat".split(), ["the cat is on the mat".split()])
SENTENCE_2 = ("a b c d".split(), ["a b c d e f".split(), "a b c d e".split()])
HYPOTHESES = [SENTENCE_1[0], SENTENCE_2[0]]
REFERENCES = [SENTENCE_1[1], SENTENCE_2[1]]


def test_corpus_bleu_by_hand():
    bleu = metrics.corpus_bleu(REFERENCES, HYPOTHESES)
    assert bleu.precisions == pytest.approx((9 / 10, 6 / 8, 3 / 6, 1 / 4))
    assert (bleu.hypothesis_length, bleu.reference_length) == (10, 11)
    assert bleu.brevity_penalty == pytest.approx(math.exp(1 - 11 / 10))
    expected = math.exp(1 - 11 / 10) * (9 / 10 * 6 / 8 * 3 / 6 * 1 / 4) ** (1 / 4)
    assert float(bleu) == pytest.approx(expected) and expected == pytest.approx(0.48767, abs=1e-5)


def test_one_sentence_without_a_matching_4_gram_scores_0_unless_smoothed():
    hypothesis, references = SENTENCE_1
    assert metrics.corpus_bleu([references], [hypothesis]).score == 0.0
    smoothed = metrics.corpus_bleu([references], [hypothesis], smooth=True)
    # +1 to the matches and the totals of orders 2-4; unigrams unchanged; equal lengths: BP = 1
    assert smoothed.precisions == pytest.approx((5 / 6, 4 / 6, 2 / 5, 1 / 4))
    assert smoothed.score == pytest.approx((5 / 6 * 4 / 6 * 2 / 5 * 1 / 4) ** (1 / 4))


def test_clipping_counts_a_word_at_most_as_often_as_one_reference_has_it():
    """Papineni et al.'s example: "the" seven times; the references have it twice and once."""
    references = ["the cat is on the mat".split(), "there is a cat on the mat".split()]
    bleu = metrics.corpus_bleu([references], [["the"] * 7], max_order=1)
    assert bleu.precisions == pytest.approx((2 / 7,))
    assert bleu.brevity_penalty == 1.0  # 7 tokens, the closest reference has 7


def test_brevity_penalty_uses_the_closest_reference_and_the_shorter_on_a_tie():
    hypothesis = ["a"] * 12
    tie = metrics.corpus_bleu([[["a"] * 13, ["a"] * 11]], [hypothesis], max_order=1)
    assert tie.reference_length == 11 and tie.brevity_penalty == 1.0
    short = metrics.corpus_bleu([[["a"] * 13, ["a"] * 2]], [hypothesis], max_order=1)
    assert short.reference_length == 13 and short.brevity_penalty == pytest.approx(math.exp(1 - 13 / 12))
    assert metrics.corpus_bleu([[["a"]]], [[]]).brevity_penalty == 0.0


def test_bleu_of_a_perfect_corpus_is_1_and_tokens_may_be_ids():
    ids = [np.array([3, 1, 4, 1, 5]), [9, 2, 6, 5, 3, 5]]
    assert metrics.corpus_bleu([[i] for i in ids], ids).score == pytest.approx(1.0)


def test_exact_match():
    hypotheses = [["one", "two"], ["three"], ["four", "five"]]
    references = [[["one", "two"]], [["three", "four"]], [["five"], ["four", "five"]]]
    assert metrics.exact_match(references, hypotheses) == pytest.approx(2 / 3)


def test_bleu_errors_say_what_was_expected():
    with pytest.raises(ValueError, match="2 hypotheses but 1 entries of references"):
        metrics.corpus_bleu(REFERENCES[:1], HYPOTHESES)
    with pytest.raises(TypeError, match=r"references\[0\] must be a non-empty list of reference token lists"):
        metrics.corpus_bleu([SENTENCE_1[1][0]], [SENTENCE_1[0]])  # one reference, not wrapped in a list
    with pytest.raises(TypeError, match=r"hypotheses\[0\] must be a sequence of tokens, got the string 'the cat'.*split it first"):
        metrics.corpus_bleu([[["the", "cat"]]], ["the cat"])
    with pytest.raises(ValueError, match="max_order must be at least 1, got 0"):
        metrics.corpus_bleu(REFERENCES, HYPOTHESES, max_order=0)


def _random_corpus(seed: int, sentences: int = 20):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(8)]
    def sentence():
        return [str(w) for w in rng.choice(words, size=rng.integers(3, 12))]
    references = [[sentence()] for _ in range(sentences)]
    hypotheses = [ref[0][: rng.integers(2, len(ref[0]) + 1)] + sentence()[:2] for ref in references]
    return references, hypotheses


@pytest.mark.parametrize("smooth", [False, True])
def test_corpus_bleu_matches_nltk(smooth):
    bleu_score = pytest.importorskip("nltk.translate.bleu_score", reason="nltk not installed: cross-check skipped")
    references, hypotheses = _random_corpus(0)
    references[0].append(hypotheses[0] + ["w1"])  # one hypothesis with two references
    smoothing = bleu_score.SmoothingFunction().method2 if smooth else None
    theirs = bleu_score.corpus_bleu(references, hypotheses, smoothing_function=smoothing)
    assert metrics.corpus_bleu(references, hypotheses, smooth=smooth).score == pytest.approx(theirs, rel=1e-12)


@pytest.mark.parametrize("smooth", [False, True])
def test_corpus_bleu_matches_sacrebleu(smooth):
    sacrebleu = pytest.importorskip("sacrebleu", reason="sacrebleu not installed: cross-check skipped")
    references, hypotheses = _random_corpus(1)
    theirs = sacrebleu.corpus_bleu(
        [" ".join(h) for h in hypotheses], [[" ".join(r[0]) for r in references]],
        tokenize="none", smooth_method="add-k" if smooth else "none", smooth_value=1,
    )
    assert metrics.corpus_bleu(references, hypotheses, smooth=smooth).score == pytest.approx(theirs.score / 100, rel=1e-9)
