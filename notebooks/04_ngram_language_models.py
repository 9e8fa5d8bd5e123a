# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 4 — N-gram language models
#
# Before any neural network, a language model was a table of counts. To guess the next
# character, look at the last few, and ask how often each character followed them in the
# training text. [Chapter 3](03_softmax_cross_entropy_perplexity.ipynb) did this with one
# character of context (a bigram). This chapter takes the context longer, meets the
# problem that comes with it — most long contexts were never seen — and solves it the way
# the best counting models do (**Kneser–Ney smoothing**). The result is the baseline every
# neural model in this book has to beat, and on the built-in corpus it is a hard one.
#
# You will:
# 1. write down the Markov assumption and the maximum-likelihood n-gram model;
# 2. measure how fast long contexts run out of counts, and try add-$k$ smoothing;
# 3. derive interpolated Kneser–Ney smoothing and write it from scratch for bigrams;
# 4. check tinylm's `KneserNeyLM` against it, and that its probabilities sum to one;
# 5. plot perplexity against the order $n$, sample text from n-gram models, and compare
#    honestly with the neural models of later chapters.
#
# `TINYLM_FAST=1` counts on the first 60,000 characters and goes up to 4-grams. The full
# run (about a minute on a laptop CPU) uses the whole corpus and orders up to 10: the
# validation loss keeps falling to about 1.15 nats per character at $n = 10$, and the
# 5-gram model scores 1.22, as good as the LSTM that `make demo` trains for two minutes.

# %%
import math
import os
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
from tinylm import data
from tinylm.ngram import KneserNeyLM

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The idea: the last few characters predict the next
#
# By the chain rule of probability, a text $x_1 \dots x_T$ has probability
#
# $$p(x_1, \dots, x_T) = \prod_{t=1}^{T} p(x_t \mid x_1, \dots, x_{t-1}).$$
#
# Every factor conditions on the whole past, and no text repeats its whole past. The
# **Markov assumption** keeps only the last $n - 1$ tokens, the *context* $h$:
#
# $$p(x_t \mid x_1, \dots, x_{t-1}) \approx p(x_t \mid \underbrace{x_{t-n+1}, \dots, x_{t-1}}_{h}).$$
#
# That is an **n-gram model**: $n = 1$ ignores the past (unigram, letter frequencies),
# $n = 2$ looks one character back (chapter 3's bigram), $n = 5$ four characters back.
# The **maximum-likelihood** estimate is the share of the times $h$ was followed by $w$:
#
# $$P_{\text{ML}}(w \mid h) = \frac{c(h\,w)}{c(h)}, \qquad c(h) = \sum_{w'} c(h\,w'),$$
#
# with $c(\cdot)$ counted in the training text. Its quality is measured as in chapter 3:
# the mean negative log-likelihood of the held-out text (nats per character) and its
# exponential, the perplexity.
#
# The corpus is the Python reference documentation that ships with CPython; the last 10%
# is held out, the same split as `make demo` and [chapter 10](10_char_language_model.ipynb).

# %%
text = data.load_corpus("builtin")
if FAST:
    text = text[:60_000]
tokenizer = data.train_tokenizer("char", text)
V = tokenizer.vocab_size
train_ids, val_ids = data.train_val_split(tokenizer.encode(text), val_fraction=0.1)
train_list, val_list = train_ids.tolist(), val_ids.tolist()
orders = range(1, 5) if FAST else range(1, 11)
print(f"{len(text):,} characters, {V} distinct; {len(train_ids):,} to count on, {len(val_ids):,} held out")

# %% [markdown]
# ## 2. From scratch: counting, and where the counts run out
#
# An n-gram is a tuple of $n$ consecutive ids; `zip` of the text with its shifted copies
# lists them all, and a `Counter` counts them. The context counts $c(h)$ come from the
# same n-grams, so that $\sum_w c(h\,w) = c(h)$ holds exactly.


# %%
def count_ngrams(ids: list[int], n: int) -> tuple[Counter, Counter]:
    """c(h w) for every n-gram, and c(h) for every context of n - 1 tokens."""
    grams = Counter(zip(*(ids[i:] for i in range(n))))
    contexts: Counter = Counter()
    for gram, count in grams.items():
        contexts[gram[:-1]] += count
    return grams, contexts


grams, contexts = count_ngrams(train_list, 3)
h = tuple(tokenizer.encode("de"))
followers = sorted(((count, tokenizer.decode([w])) for (a, b, w), count in grams.items() if (a, b) == h), reverse=True)
print(f"c('de') = {contexts[h]}; most frequent continuations:", followers[:6])

# %% [markdown]
# How often does the held-out text hold an n-gram, or even a context, that the training
# text never had? For those, $P_{\text{ML}} = 0/c(h)$ or $0/0$: the loss is infinite.

# %%
unseen_grams, unseen_contexts = [], []
for n in orders:
    grams, contexts = count_ngrams(train_list, n)
    held_out = list(zip(*(val_list[i:] for i in range(n))))
    unseen_grams.append(np.mean([gram not in grams for gram in held_out]))
    unseen_contexts.append(np.mean([gram[:-1] not in contexts for gram in held_out]))
    print(f"n = {n:>2}: {unseen_grams[-1]:6.1%} of the held-out n-grams never occurred in training "
          f"({unseen_contexts[-1]:6.1%} have a context never seen)")

# %% [markdown]
# ### Add-$k$ smoothing
#
# Chapter 3's fix was to pretend every n-gram occurred $k$ extra times:
#
# $$P_{\text{add-}k}(w \mid h) = \frac{c(h\,w) + k}{c(h) + k V}.$$
#
# No probability is $0$ any more. But for an unseen context it is $1/V$ for every
# character, however much the shorter contexts know. As $n$ grows, more and more of the
# held-out text falls into that hole.


# %%
def add_k_loss(ids: list[int], n: int, grams: Counter, contexts: Counter, k: float) -> float:
    """Mean −ln P_add-k(x_t | the n − 1 tokens before it), over the positions that have n − 1 before them."""
    total = 0.0
    for gram in zip(*(ids[i:] for i in range(n))):
        total -= math.log((grams.get(gram, 0) + k) / (contexts.get(gram[:-1], 0) + k * V))
    return total / (len(ids) - n + 1)


ks = (1.0, 0.01)
add_k_val = {k: [] for k in ks}
for n in orders:
    grams, contexts = count_ngrams(train_list, n)
    for k in ks:
        add_k_val[k].append(add_k_loss(val_list, n, grams, contexts, k))
print(f"{'n':>3}" + "".join(f"{f'add-{k:g}':>12}" for k in ks) + "   (validation loss, nats per character)")
for i, n in enumerate(orders):
    print(f"{n:>3}" + "".join(f"{add_k_val[k][i]:>12.3f}" for k in ks))

# %% [markdown]
# Both get worse beyond a few characters of context: the model that could look further
# back knows less, because it cannot fall back on what the shorter contexts say.
#
# ## 3. The math: interpolation and Kneser–Ney
#
# **Interpolated absolute discounting** takes a fixed amount $D$ (here $0.75$) off every
# seen count and hands what it took to the next shorter context $h'$ ($h$ without its
# oldest token):
#
# $$P_n(w \mid h) = \frac{\max(c(h\,w) - D,\ 0)}{c(h)}
#   + \underbrace{\frac{D\, N(h)}{c(h)}}_{\lambda(h)}\; P_{n-1}(w \mid h'),$$
#
# where $N(h)$ is the number of *different* tokens seen after $h$. It is a distribution:
# every seen count is at least $1 > D$, so the first terms sum to
# $(c(h) - D\,N(h)) / c(h) = 1 - \lambda(h)$, and the second to $\lambda(h)$. A context
# that was never seen ($c(h) = 0$) hands everything to $P_{n-1}$; below the unigram
# stands the uniform $1/V$. A context followed by many different tokens keeps more
# weight for the shorter context: it is evidently hard to predict.
#
# **Kneser and Ney's idea** is about the lower orders. $P_{n-1}$ is only consulted for
# continuations the longer context cannot vouch for, so it should not say how *frequent*
# $w$ is, but how many different contexts it *completes*. "Francisco" is frequent, but
# only ever after "San"; as the continuation of an unseen context it should be rare. So
# in every order below the highest, the count $c(h\,w)$ is replaced by the
# **continuation count**
#
# $$N_{1+}(\bullet\, h\, w) = \#\{x : c(x\, h\, w) > 0\},$$
#
# the number of different tokens seen before $h\,w$.
#
# ### From scratch, for bigrams
#
# With $n = 2$ everything is a $V \times V$ matrix, `counts[a, w]` $= c(a\,w)$. The
# unigram level uses continuation counts (how many different $a$ came before $w$), the
# bigram level the counts themselves:

# %%
D = 0.75
counts = np.zeros((V, V))
np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1)

continuation = (counts > 0).sum(axis=0)  # N1+(• w): different characters before w
bigram_types = continuation.sum()  # N1+(• •): different bigrams
p_unigram = np.maximum(continuation - D, 0) / bigram_types + D * (continuation > 0).sum() / bigram_types / V

context_counts = counts.sum(axis=1, keepdims=True)  # c(a)
kept = np.maximum(counts - D, 0) / np.maximum(context_counts, 1)
weight = D * (counts > 0).sum(axis=1, keepdims=True) / np.maximum(context_counts, 1)  # λ(a)
p_bigram = np.where(context_counts > 0, kept + weight * p_unigram, p_unigram)
print("every row sums to 1:", np.allclose(p_bigram.sum(axis=1), 1.0))
print(f"validation loss, bigram Kneser-Ney from scratch: {-np.log(p_bigram[val_ids[:-1], val_ids[1:]]).mean():.4f} nats/char")

# %% [markdown]
# ## 4. The tinylm model: `KneserNeyLM`, checked
#
# `tinylm.ngram.KneserNeyLM(order)` does the same for any order: `fit(ids, vocab_size)`
# counts every order (continuation counts below the top one), `probability(context, w)`
# climbs from the uniform distribution up through the orders, mixing each with the one
# below, and `evaluate(ids)` is the mean negative log-likelihood of a text, each token
# predicted from the (up to $n - 1$) tokens before it.
#
# Check it: for $n = 2$ it must give exactly the matrix above; for any order, every
# context's distribution must sum to one; and `evaluate` must be the mean of
# $-\ln P$ computed by hand.

# %%
bigram_model = KneserNeyLM(order=2, discount=D).fit(train_ids, V)
library_table = np.array([[bigram_model.probability([a], w) for w in range(V)] for a in range(V)])
print("KneserNeyLM(2) == the bigram from scratch:", np.allclose(library_table, p_bigram, rtol=1e-12, atol=0))
assert np.allclose(library_table, p_bigram, rtol=1e-12, atol=0)

top = max(orders)
model = KneserNeyLM(order=top).fit(train_ids, V)
for start in rng.integers(top, len(val_ids), size=5):
    context = val_list[start - top + 1 : start]
    total = sum(model.probability(context, w) for w in range(V))
    print(f"context {tokenizer.decode(context)!r:>14}: Σ_w P(w | context) = {total:.12f}")
    assert abs(total - 1) < 1e-9

piece = val_list[:300]
by_hand = -np.mean([math.log(model.probability(piece[max(0, t - top + 1) : t], piece[t])) for t in range(1, len(piece))])
print(f"evaluate: {model.evaluate(piece):.10f}, by hand: {by_hand:.10f}")
assert np.isclose(model.evaluate(piece), by_hand)

# %% [markdown]
# ## See it: how far back is worth counting?
#
# For each order: the validation loss of add-$k$ and of Kneser–Ney, and the Kneser–Ney
# loss on (a sample of) the *training* text. On the left, the share of held-out n-grams
# the training text never had: the reason add-$k$ turns back up. On the training text
# the longer n-grams have all been seen, so the training loss keeps falling towards $0$;
# the gap between the two curves is what the table has memorised rather than learned.

# %%
kn_val, kn_train, table_sizes = [], [], []
chunk_starts = np.linspace(0, len(train_list) - 5_000, 10).astype(int)  # 10 stretches of 5,000, spread out
for n in orders:
    kn = KneserNeyLM(order=n).fit(train_ids, V)
    kn_val.append(kn.evaluate(val_ids))
    kn_train.append(np.mean([kn.evaluate(train_list[start : start + 5_000]) for start in chunk_starts]))
    table_sizes.append(sum(len(followers) for table in kn.counts for followers in table.values()))
    print(f"{n:>2}-gram Kneser-Ney: validation {kn_val[-1]:.3f} nats/char (perplexity {math.exp(kn_val[-1]):5.2f}), "
          f"training {kn_train[-1]:.3f}; {table_sizes[-1]:>9,} counts stored")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
left.plot(orders, unseen_grams, "o-", label="n-gram never seen in training")
left.plot(orders, unseen_contexts, "s--", label="its context never seen")
left.set_xlabel("order n")
left.set_ylabel("share of held-out positions")
left.set_title("long contexts run out of counts")
left.legend()
for k in ks:
    right.plot(orders, add_k_val[k], "o-", label=f"add-{k:g}, validation")
right.plot(orders, kn_val, "o-", color="black", label="Kneser–Ney, validation")
right.plot(orders, kn_train, "o:", color="gray", label="Kneser–Ney, training text")
right.axhline(math.log(V), color="red", linestyle=":", label=f"uniform, ln {V}")
right.axhline(1.25, color="green", linestyle="--", label="demo LSTM, 2 min (README, full corpus)")
right.set_xlabel("order n")
right.set_ylabel("loss (nats per character)")
right.set_title("smoothing decides whether a longer context helps")
right.set_ylim(0, math.log(V) + 0.3)
right.legend(fontsize=8)
for ax in (left, right):
    ax.grid(alpha=0.3)
    ax.set_xticks(list(orders))
plt.show()

# %% [markdown]
# ## 5. Sampling from an n-gram model
#
# To write, start from a prompt and draw each next character from
# $P(\cdot \mid \text{the last } n - 1 \text{ characters})$. The unigram model writes
# letters at their frequencies; the bigram pronounceable junk; from about five characters
# of context on, words and bits of Python appear, glued together wherever a context of
# four characters allows. (A high order in the full run copies long stretches of the
# training text: the table has little else to say.)


# %%
def sample(model: KneserNeyLM, prompt: str, length: int = 160) -> str:
    ids = tokenizer.encode(prompt)
    for _ in range(length):
        context = ids[max(0, len(ids) - model.order + 1) :]
        probabilities = np.array([model.probability(context, w) for w in range(V)])
        ids.append(int(rng.choice(V, p=probabilities / probabilities.sum())))
    return tokenizer.decode(ids)


for n in (1, 2, 4) if FAST else (1, 2, 3, 5, 8):
    print(f"--- {n}-gram " + "-" * 50)
    print(sample(KneserNeyLM(order=n).fit(train_ids, V), "The "))

# %% [markdown]
# ## 6. The honest comparison
#
# The README reports, on this corpus and this split (full corpus, last 10% held out):
#
# | model | validation loss (nats/char) | perplexity |
# |---|---|---|
# | uniform over the 103 characters | 4.63 | 103 |
# | 5-gram Kneser–Ney (counting, a second or two) | 1.22 | 3.39 |
# | character LSTM of `make demo` (363k parameters, 2 minutes of training) | 1.25 | 3.50 |
# | small GPT, 2 minutes of training ([chapter 13](13_transformer.ipynb)) | 1.31 | 3.71 |
#
# and the full run of this chapter shows the higher orders going further still (about
# 1.15 at $n = 10$). So, honestly: **on half a million characters and two minutes of a
# laptop CPU, counting is as good as the neural networks of this book, or better.** What
# that means:
#
# * The corpus is small and repetitive (reference documentation: the same phrases, the
#   same code patterns, again and again). That is where counting shines: a long context
#   seen in training is a near-certain prediction.
# * The neural models are far from done after two minutes; their loss is still falling
#   ([chapter 10](10_char_language_model.ipynb) plots it), the counts are complete.
# * A table grows with the data: the 10-gram model stores almost a million counts (the
#   table above), and every new text adds more. The LSTM has 363k numbers whatever it reads.
# * A count knows nothing about similar contexts: "def f(" and "def g(" share nothing in
#   the table. A neural model learns vectors ([chapter 6](06_word_embeddings.ipynb)) in
#   which similar contexts are near each other, and it is not limited to $n - 1$ tokens
#   of context. That is what lets neural models, on large corpora and with enough
#   training, beat n-grams by a wide margin — but the n-gram is the number every model in
#   this book has to beat first.

# %% [markdown]
# ## Exercises
#
# 1. Prove that the interpolated Kneser–Ney probabilities of a context sum to one when
#    $0 < D < 1$ (the argument of section 3, carried through the lower orders). What goes
#    wrong if $D > 1$?
# 2. Tune the discount: evaluate the 5-gram model with `discount` 0.5, 0.75 and 0.9.
#    Which is best on the held-out text? Why might the best discount differ by order
#    (modified Kneser–Ney uses three discounts, for counts 1, 2 and ≥ 3)?
# 3. Replace the continuation counts by plain counts in the from-scratch bigram model
#    (interpolated absolute discounting). How much worse is the validation loss?
# 4. **Stupid backoff**: score $c(h\,w)/c(h)$ if $c(h\,w) > 0$, else $0.4$ times the
#    score of the shorter context. It is not a distribution (it does not sum to one);
#    normalise it over the vocabulary and compare its loss with Kneser–Ney.
# 5. Count words instead of characters (`data.train_tokenizer("word", text)`, as in
#    [chapter 5](05_tokenization.ipynb)). To compare with the character models, convert the
#    loss to nats per *character*: multiply by the number of tokens per character. Why is
#    that comparison still unfair to the characters when unknown words become `<unk>`?
