"""An n-gram baseline: interpolated Kneser-Ney smoothing, counted on the training text.

What does a neural language model buy? Compare it with counting. An n-gram model
predicts the next token from the previous n - 1 alone, from how often each continuation
followed them in the training text. Raw frequencies give unseen continuations
probability 0 (an infinite loss), so every order is mixed with the next lower one:

    P_k(w | h) = max(c(h, w) − D, 0) / c(h)  +  D · N(h) / c(h) · P_{k−1}(w | h')

h is the context of k − 1 tokens, h' the same context without its oldest token, c(h, w)
how often w followed h, c(h) = Σ_w c(h, w), N(h) the number of different tokens that
followed h, and D = 0.75 the discount: each seen count gives up D, and what is given up
goes to the lower order. Below order 1 stands the uniform 1/V. An unseen context
(c(h) = 0) hands everything to the lower order.

Kneser and Ney's idea is in the counts of the lower orders: there c(h, w) is not how
often h w occurred but in how many different contexts (how many different tokens x
before it, x h w). "Francisco" is frequent, but almost only after "San", so as the
continuation of an unseen context it should be rare; its number of left neighbours
says so, its frequency does not.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Sequence


class KneserNeyLM:
    """Interpolated Kneser-Ney n-gram model over token ids 0..vocab_size-1."""

    def __init__(self, order: int = 5, discount: float = 0.75):
        if order < 1:
            raise ValueError(f"order must be at least 1 (a unigram model), got {order}")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"discount must lie strictly between 0 and 1, got {discount}")
        self.order, self.discount = order, discount
        self.vocab_size = 0
        # counts[k][context] = {token: count}, context a tuple of k - 1 ids
        self.counts: list[dict[tuple, dict[int, int]]] = []
        self.totals: list[dict[tuple, int]] = []

    def fit(self, ids: Sequence[int], vocab_size: int) -> "KneserNeyLM":
        """Count the n-grams of every order up to ``order`` in ``ids``."""
        ids = [int(i) for i in ids]
        self.vocab_size = vocab_size
        grams = [Counter(zip(*(ids[i:] for i in range(k)))) for k in range(self.order + 1)]
        self.counts = [{} for _ in range(self.order + 1)]
        for k in range(1, self.order + 1):
            table: dict[tuple, dict[int, int]] = defaultdict(dict)
            if k == self.order:
                for gram, count in grams[k].items():
                    table[gram[:-1]][gram[-1]] = count
            else:  # continuation counts: how many different tokens came before the k-gram
                for gram in grams[k + 1]:
                    followers = table[gram[1:-1]]
                    followers[gram[-1]] = followers.get(gram[-1], 0) + 1
            self.counts[k] = dict(table)
        self.totals = [{context: sum(followers.values()) for context, followers in table.items()} for table in self.counts]
        return self

    def probability(self, context: Sequence[int], token: int) -> float:
        """P(token | the last order − 1 tokens of context)."""
        context = tuple(context)
        probability = 1.0 / self.vocab_size
        for k in range(1, min(self.order, len(context) + 1) + 1):  # from the unigram up, each order mixing in the one below
            history = context[-(k - 1) :] if k > 1 else ()
            followers = self.counts[k].get(history)
            if followers is None:
                continue
            total = self.totals[k][history]
            seen = max(followers.get(token, 0) - self.discount, 0.0) / total
            probability = seen + self.discount * len(followers) / total * probability
        return probability

    def evaluate(self, ids: Sequence[int]) -> float:
        """Average −ln P(next token | the tokens before it) over ``ids`` (nats per token).

        The first tokens have shorter contexts, as for a neural model that starts reading.
        """
        ids = [int(i) for i in ids]
        if len(ids) < 2:
            raise ValueError(f"evaluate needs at least 2 tokens, got {len(ids)}")
        total = 0.0
        for t in range(1, len(ids)):
            total -= math.log(self.probability(ids[max(0, t - self.order + 1) : t], ids[t]))
        return total / (len(ids) - 1)
