"""Beam search: toy decoders with known probabilities, greedy as beam width 1, exactness with a wide beam."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import tinylm as tl
import tinylm.functional as F
from tinylm import nn
from tinylm.decoding import Hypothesis, beam_search, select_rows

START, A, B, X, END = 0, 1, 2, 3, 4


def markov_step(table: dict[int, dict[int, float]], vocab: int = 5):
    """A decoder whose next-token probabilities depend on the last token only (no state)."""

    def step(tokens, state):
        probabilities = np.full((len(tokens), vocab), 1e-12)
        for row, token in enumerate(tokens):
            for following, p in table[int(token)].items():
                probabilities[row, following] = p
        return np.log(probabilities), state

    return step


# START -> A 0.6, B 0.4;  A -> X 0.36, B 0.34, END 0.3;  B -> END 0.9, X 0.1;  X -> END 1
TRAP = {START: {A: 0.6, B: 0.4}, A: {X: 0.36, B: 0.34, END: 0.3}, B: {END: 0.9, X: 0.1}, X: {END: 1.0}}


def test_beam_finds_the_sequence_that_greedy_misses():
    """Greedy takes A (0.6), then X (0.36): P = 0.216. B then END has P = 0.4 · 0.9 = 0.36."""
    greedy = beam_search(markov_step(TRAP), None, START, END, beam_width=1)
    assert [h.tokens for h in greedy] == [[A, X, END]]
    assert greedy[0].log_probability == pytest.approx(math.log(0.6 * 0.36 * 1.0))
    beam = beam_search(markov_step(TRAP), None, START, END, beam_width=2)
    assert beam[0].tokens == [B, END] and beam[0].finished
    assert beam[0].log_probability == pytest.approx(math.log(0.4 * 0.9))
    # step 2 keeps B END (0.36, finished: the beam shrinks to 1) and A X (0.216); A X END follows
    assert [h.tokens for h in beam] == [[B, END], [A, X, END]]


def test_length_penalty_ranks_the_finished_hypotheses():
    """END at once (P 0.5) against A then END (P 0.5 · 0.8 = 0.4): the raw log P prefers the
    short one, the mean log-probability per token (length_penalty=1) the long one."""
    table = {START: {END: 0.5, A: 0.5}, A: {END: 0.8, B: 0.2}, B: {END: 1.0}}
    raw = beam_search(markov_step(table), None, START, END, beam_width=2)
    assert [h.tokens for h in raw][:2] == [[END], [A, END]]
    normalised = beam_search(markov_step(table), None, START, END, beam_width=2, length_penalty=1.0)
    assert [h.tokens for h in normalised][:2] == [[A, END], [END]]
    assert normalised[0].score(1.0) == pytest.approx(math.log(0.4) / 2)


def history_step(vocab: int, seed: int):
    """A decoder whose distribution depends on the whole prefix, carried as the state (K, t)."""
    rng = np.random.default_rng(seed)
    cache: dict[tuple, np.ndarray] = {}

    def log_probs_of(prefix: tuple) -> np.ndarray:
        if prefix not in cache:
            logits = 2.0 * rng.standard_normal(vocab)
            cache[prefix] = logits - np.log(np.exp(logits).sum())
        return cache[prefix]

    def step(tokens, prefixes):
        prefixes = np.concatenate([prefixes, tokens[:, None]], axis=1)
        return np.stack([log_probs_of(tuple(p)) for p in prefixes.tolist()]), prefixes

    return step, log_probs_of


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_beam_wide_enough_is_exact(seed):
    """With room for every prefix, beam search returns the most likely sequence of all."""
    vocab, max_length, end = 3, 4, 2
    step, log_probs_of = history_step(vocab, seed)
    found = beam_search(step, np.zeros((1, 0), dtype=np.int64), START, end, beam_width=vocab**max_length, max_length=max_length)
    best = -np.inf
    for length in range(1, max_length + 1):
        for tokens in itertools.product(range(vocab), repeat=length):
            if end in tokens[:-1] or (length < max_length and tokens[-1] != end):
                continue  # sequences stop at the end token, or run to max_length
            prefixes = [(START,) + tokens[:t] for t in range(length)]
            best = max(best, sum(log_probs_of(p)[token] for p, token in zip(prefixes, tokens)))
    assert found[0].log_probability == pytest.approx(best)


def test_beam_width_one_is_greedy_with_a_history():
    step, log_probs_of = history_step(vocab=4, seed=3)
    (found,) = beam_search(step, np.zeros((1, 0), dtype=np.int64), START, 3, beam_width=1, max_length=6)
    prefix = (START,)
    while len(prefix) <= 6:
        token = int(np.argmax(log_probs_of(prefix)))
        prefix += (token,)
        if token == 3:
            break
    assert found.tokens == list(prefix[1:])


def _source(rng, length=5):
    return rng.integers(0, 10, (1, length))


def test_seq2seq_beam_width_one_equals_greedy_decode(device):
    model = nn.Seq2Seq(10, 12, embed_dim=8, hidden_size=16).to(device)
    rng = np.random.default_rng(0)
    for _ in range(3):
        source = tl.tensor(_source(rng), device=device)
        (found,) = model.beam_search(source, start_id=10, end_id=11, beam_width=1, max_length=7)
        greedy, _ = model.greedy_decode(source, start_id=10, length=7)
        greedy = greedy.numpy()[0].tolist()
        expected = greedy[: greedy.index(11) + 1] if 11 in greedy else greedy
        assert found.tokens == expected and found.finished == (11 in greedy)


def test_seq2seq_beam_log_probability_is_the_teacher_forced_one():
    """The score beam search reports is log P(tokens | source), as the training loss computes it."""
    model = nn.Seq2Seq(10, 12, embed_dim=8, hidden_size=16)
    source = _source(np.random.default_rng(1))
    hypotheses = model.beam_search(source, start_id=10, end_id=11, beam_width=3, max_length=5)
    assert len(hypotheses) == 3
    scores = [h.log_probability for h in hypotheses]
    assert scores == sorted(scores, reverse=True)
    for hypothesis in hypotheses:
        target_in = np.array([[10] + hypothesis.tokens[:-1]])
        log_probs = F.log_softmax(model(source, target_in), axis=-1).numpy()[0]
        teacher_forced = log_probs[np.arange(len(hypothesis.tokens)), hypothesis.tokens].sum()
        assert hypothesis.log_probability == pytest.approx(teacher_forced, rel=1e-5)


def test_select_rows_reorders_nested_states():
    h = tl.tensor(np.arange(6.0).reshape(3, 2))
    state = (h, [np.array([10, 11, 12])], None)
    reordered = select_rows(state, np.array([2, 2, 0]))
    np.testing.assert_array_equal(reordered[0].numpy(), [[4, 5], [4, 5], [0, 1]])
    np.testing.assert_array_equal(reordered[1][0], [12, 12, 10])
    assert reordered[2] is None
    with pytest.raises(TypeError, match="cannot reorder a decoder state of type dict"):
        select_rows({"h": h}, np.array([0]))


def test_hypothesis_score():
    assert Hypothesis([1, 2, 3, 4], -2.0).score(0.0) == -2.0
    assert Hypothesis([1, 2, 3, 4], -2.0).score(1.0) == -0.5
    assert Hypothesis([1, 2, 3, 4], -2.0).score(0.5) == -1.0


def test_errors_say_what_was_expected():
    step = markov_step(TRAP)
    with pytest.raises(ValueError, match="beam_width must be at least 1, got 0"):
        beam_search(step, None, START, END, beam_width=0)
    with pytest.raises(ValueError, match="max_length must be at least 1, got 0"):
        beam_search(step, None, START, END, max_length=0)
    with pytest.raises(ValueError, match=r"shape \(beam, vocab\) = \(1, V\), got shape \(5,\)"):
        beam_search(lambda tokens, state: (np.zeros(5), state), None, START, END)
    with pytest.raises(TypeError, match=r"a NumPy array on the host, got Tensor \(for a tensor, return log_probs.numpy\(\)\)"):
        beam_search(lambda tokens, state: (tl.zeros(1, 5), state), None, START, END)
    model = nn.Seq2Seq(10, 12, embed_dim=4, hidden_size=4)
    with pytest.raises(tl.ShapeError, match=r"one source at a time: expected source ids of shape \(1, length\), got shape \(2, 3\)"):
        model.beam_search(np.zeros((2, 3), dtype=np.int64), 10, 11)
