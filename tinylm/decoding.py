"""Beam search: decoding an output sequence that is likely as a whole, not one token at a time.

A decoder gives, for every prefix y₁ … yₜ₋₁ of the output, the distribution of the next
token. The most likely *sequence* maximises the sum of the log-probabilities,

    log P(y) = Σₜ log p(yₜ | y₁ … yₜ₋₁),

but there are Vᵀ sequences of length T. **Greedy** decoding takes the most likely token at
each step; a token that looks best now can lead to continuations that are all unlikely.
**Beam search** keeps the ``beam_width`` best prefixes instead of one::

    beam = [start]
    repeat until the beam is empty or max_length tokens were written:
        extend every prefix in the beam by every token, each candidate scored log P
        keep the best K of them, K = beam_width minus the hypotheses finished so far
        a kept candidate that ends in ``end_id`` is finished: set it aside (so the
        beam shrinks by one); the others form the next beam

(the variant in the machine-translation chapter of Jurafsky and Martin's *Speech and
Language Processing*). With ``beam_width=1`` it is exactly greedy decoding, stopped at
the first ``end_id``.

**Length normalisation.** Every token multiplies P(y) by a number below 1, so the raw
log-probability prefers short outputs. The finished hypotheses are ranked by

    score = log P(y) / len(y) ** length_penalty

with len(y) the number of tokens written, the end token included: ``length_penalty=0``
ranks by log P(y) itself, ``1`` by the mean log-probability per token, values between
compromise. The penalty only ranks the finished hypotheses; which prefixes stay in the
beam is decided by log P alone.

The model is reached through one function, so the same search serves any decoder:

    step(tokens, state) -> (log_probs, new_state)

``tokens`` (K,) holds the last token of each prefix in the beam (int64, on the host),
``state`` whatever the decoder carries for those K prefixes (tensors, arrays, or tuples
of them, each with the beam on its first axis); ``log_probs`` (K, V) is a host array of
log p(next token | prefix). Between steps the search reorders ``state`` itself: row i of
the new state is the row of the prefix that candidate i extends.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import backend
from .tensor import Tensor

StepFunction = Callable[[np.ndarray, Any], tuple[np.ndarray, Any]]


@dataclass
class Hypothesis:
    """One decoded sequence: its tokens (without the start token; ending in end_id when
    ``finished``), log P of those tokens, and whether it reached the end token."""

    tokens: list[int] = field(default_factory=list)
    log_probability: float = 0.0
    finished: bool = False

    def score(self, length_penalty: float = 0.0) -> float:
        """log P / len ** length_penalty (see the module docstring)."""
        return self.log_probability / max(len(self.tokens), 1) ** length_penalty


def select_rows(state, rows: np.ndarray):
    """``state`` with its first axis indexed by ``rows``: tensors, arrays, tuples and lists
    of them, and None (a state that carries nothing)."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return type(state)(select_rows(part, rows) for part in state)
    if isinstance(state, Tensor):
        return state[rows]  # a tensor moves host indices to its device itself
    if hasattr(state, "shape"):
        return state[backend.array_module(state).asarray(rows)]
    raise TypeError(
        f"beam_search: cannot reorder a decoder state of type {type(state).__name__}; "
        "the state must be tensors or arrays (beam on the first axis), tuples or lists of them, or None"
    )


def _checked_log_probs(log_probs, beam_size: int) -> np.ndarray:
    if not isinstance(log_probs, np.ndarray):
        raise TypeError(
            f"beam_search: step must return the log-probabilities as a NumPy array on the host, "
            f"got {type(log_probs).__name__} (for a tensor, return log_probs.numpy())"
        )
    log_probs = log_probs.astype(np.float64, copy=False)
    if log_probs.ndim != 2 or log_probs.shape[0] != beam_size:
        raise ValueError(
            f"beam_search: step must return log-probabilities of shape (beam, vocab) = ({beam_size}, V), "
            f"got shape {log_probs.shape}"
        )
    return log_probs


def beam_search(
    step: StepFunction,
    state: Any,
    start_id: int,
    end_id: int,
    beam_width: int = 4,
    max_length: int = 50,
    length_penalty: float = 0.0,
) -> list[Hypothesis]:
    """Every hypothesis the search set aside (plus the ones still open at ``max_length``),
    best first by ``score(length_penalty)``.

    ``state`` is the decoder's state for a beam of one (first axis of size 1); ``step`` is
    described in the module docstring. At most ``beam_width`` hypotheses come back.
    """
    if beam_width < 1:
        raise ValueError(f"beam_search: beam_width must be at least 1, got {beam_width}")
    if max_length < 1:
        raise ValueError(f"beam_search: max_length must be at least 1, got {max_length}")
    beam = [Hypothesis()]
    tokens = np.array([start_id], dtype=np.int64)
    finished: list[Hypothesis] = []
    for _ in range(max_length):
        log_probs, state = step(tokens, state)
        log_probs = _checked_log_probs(log_probs, len(beam))
        totals = np.array([hypothesis.log_probability for hypothesis in beam])[:, None] + log_probs
        places = beam_width - len(finished)  # the beam shrinks by one for every finished hypothesis
        best = np.argsort(-totals, axis=None, kind="stable")[:places]
        survivors, rows = [], []
        for row, token in zip(*np.unravel_index(best, totals.shape)):
            extended = Hypothesis(beam[row].tokens + [int(token)], float(totals[row, token]), int(token) == end_id)
            if extended.finished:
                finished.append(extended)
            else:
                survivors.append(extended)
                rows.append(row)
        beam = survivors
        if not beam:
            break
        tokens = np.array([hypothesis.tokens[-1] for hypothesis in beam], dtype=np.int64)
        state = select_rows(state, np.array(rows))
    return sorted(finished + beam, key=lambda hypothesis: -hypothesis.score(length_penalty))
