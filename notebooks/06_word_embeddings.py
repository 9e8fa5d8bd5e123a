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
# # Chapter 6 — Word embeddings
#
# A network cannot read the word "list"; it reads numbers. The simplest encoding, a
# **one-hot** vector with a single 1 at the word's index, makes every two words equally
# different: "list" is as far from "tuple" as from "raise". An **embedding** gives each
# word a short dense vector instead, learned so that words used in similar contexts end
# up close together ("you shall know a word by the company it keeps", Firth, 1957).
#
# This chapter shows that an embedding layer is a matrix product with a one-hot vector,
# derives its gradient (a **scatter-add**), and then learns vectors with **word2vec**
# (skip-gram with negative sampling, Mikolov et al., 2013) on the built-in corpus, the
# Python documentation. We query nearest neighbours, draw the vectors in 2-D, and fit
# **GloVe** (Pennington et al., 2014), which learns the same kind of vectors from a
# table of counts instead of from the running text.
#
# `TINYLM_FAST=1` trains word2vec for one pass over the text instead of five and GloVe
# for 3 epochs instead of 15 (about fifteen seconds in all). The full run takes about a
# minute on a laptop and ends at a lower word2vec loss (about 2.1 against 2.4). Either
# way "true" lands next to "false" and "int" near "float", and the groups of the
# projection plot gather.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
import tinylm.functional as F
from tinylm import data, glove, nn, viz
from tinylm import word2vec as w2v

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. An embedding is a one-hot vector times a matrix
#
# Keep a table $W \in \mathbb{R}^{V \times D}$, one row of $D$ numbers per word of a
# vocabulary of $V$ words. With $x_i \in \{0, 1\}^V$ the one-hot vector of word $i$,
#
# $$e = x_i^\top W = W_{i,:},$$
#
# so the product just **picks row $i$**. For a batch of $N$ ids, stack the one-hot rows into
# $X \in \{0,1\}^{N \times V}$ and the embeddings are $E = X W$ (shape $N \times D$). A
# lookup does the same without building $X$: `F.embedding(ids, W)` is `W[ids]`.
#
# ### Its gradient: a scatter-add
#
# From $E = XW$ and [chapter 1](01_tensors_and_autograd.ipynb)'s matrix rule, $\partial L / \partial W = X^\top G$ with
# $G = \partial L / \partial E$. Row $j$ of $X^\top G$ sums the rows of $G$ at the
# positions where the id is $j$:
#
# $$\frac{\partial L}{\partial W_{j,:}} = \sum_{n \,:\, \text{id}_n = j} G_{n,:}.$$
#
# Rows of words not in the batch get zero; a word that occurs twice gets **both**
# gradients added. In NumPy that is `np.add.at(dW, ids, G)` — not `dW[ids] += G`, which
# keeps only one of the repeated writes.

# %%
V, D = 6, 3
ids = np.array([1, 3, 1, 0])  # word 1 occurs twice
W = tl.randn(V, D, dtype="float64", requires_grad=True)
upstream = np.arange(12, dtype=np.float64).reshape(4, D)  # a made-up dL/dE

one_hot = tl.tensor(np.eye(V)[ids])  # X, (N, V)
by_product = one_hot @ W
by_product.backward(upstream)
grad_from_product = W.grad.numpy().copy()

W.zero_grad()
by_lookup = F.embedding(ids, W)
by_lookup.backward(upstream)
print("X W == W[ids]:", np.allclose(by_product.numpy(), by_lookup.numpy()))
print("dL/dW from the lookup:\n", W.grad.numpy())
assert np.allclose(W.grad.numpy(), grad_from_product)

scatter = np.zeros((V, D))
np.add.at(scatter, ids, upstream)
wrong = np.zeros((V, D))
wrong[ids] += upstream
print("row 1 of np.add.at(dW, ids, G):", scatter[1])
print("row 1 of dW[ids] += G         :", wrong[1], " <- only one of the two writes survived")
print("rows 0 and 2 of G, added      :", upstream[0] + upstream[2])
assert np.allclose(scatter, W.grad.numpy())

# %% [markdown]
# ## The tinylm layer, checked
#
# `nn.Embedding(num_embeddings, embedding_dim)` holds the table as `weight` (initialised
# from $\mathcal{N}(0, 1)$, as PyTorch does) and looks rows up. Its gradient passes the
# check of [chapter 2](02_gradient_checking.ipynb), and it matches `torch.nn.Embedding` with the same weight.

# %%
embedding = nn.Embedding(V, D, dtype="float64")
tl.gradcheck(lambda weight: F.embedding(ids, weight), [embedding.weight], verbose=True)

try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the comparison")

if torch is not None:
    torch_embedding = torch.nn.Embedding(V, D, dtype=torch.float64)
    torch_embedding.load_state_dict({"weight": torch.tensor(embedding.weight.numpy())})
    torch_embedding(torch.tensor(ids)).backward(torch.tensor(upstream))
    embedding(ids).backward(upstream)
    assert np.allclose(torch_embedding.weight.grad.numpy(), embedding.weight.grad.numpy())
    print("PyTorch's gradient of the weight agrees")

# %% [markdown]
# ## 2. word2vec: learning the vectors from context
#
# **Skip-gram** turns raw text into a prediction task: every word (the *centre*) should
# predict the words within `window` positions of it (its *context*). Here are the
# (centre, context) pairs of a short sentence with a window of 2:

# %%
sentence = "a list is a mutable sequence".split()
toy_vocabulary = w2v.Vocabulary.build(sentence, min_count=1)
centres, contexts = w2v.skipgram_pairs(toy_vocabulary.encode(sentence), window=2)
print([(toy_vocabulary.words[c], toy_vocabulary.words[o]) for c, o in zip(centres, contexts)][:10], "...")

# %% [markdown]
# Each word $w$ gets **two** vectors: $v_w$ (a row of the input table $W_{in}$) when it is a
# centre, $u_w$ (a row of the output table $W_{out}$) when it is a context. A softmax over
# the whole vocabulary, $p(o \mid c) \propto e^{u_o \cdot v_c}$, would cost $V$ dot products
# per pair. **Negative sampling** asks a cheaper question instead — *is this pair real?* —
# and contrasts each real pair with $K$ made-up ones, whose context words $n_1, \dots, n_K$
# are drawn at random from the **noise distribution** $P(w) \propto \text{count}(w)^{3/4}$:
#
# $$\ell = -\log \sigma(u_o \cdot v_c) - \sum_{k=1}^{K} \log \sigma(-u_{n_k} \cdot v_c).$$
#
# The first term pulls the vectors of a real pair together, the others push random pairs
# apart. With $\frac{d}{ds} \log \sigma(s) = 1 - \sigma(s)$, the gradients are
#
# $$\frac{\partial \ell}{\partial u_o} = (\sigma(u_o \cdot v_c) - 1)\, v_c, \qquad
# \frac{\partial \ell}{\partial u_{n_k}} = \sigma(u_{n_k} \cdot v_c)\, v_c, \qquad
# \frac{\partial \ell}{\partial v_c} = (\sigma(u_o \cdot v_c) - 1)\, u_o + \sum_k \sigma(u_{n_k} \cdot v_c)\, u_{n_k}.$$
#
# Each is a pair's error times the other vector, the same shape of result as the $p - y$
# of [chapter 3](03_softmax_cross_entropy_perplexity.ipynb). The rows of the tables receive them by the scatter-add of section 1.
#
# ### From scratch, with tensor ops
#
# Lookups, a dot product, $\log \sigma$: the loss in a few lines, held equal to tinylm's
# fused `w2v.negative_sampling_loss` (whose backward is the formulas above, written out).

# %%
def skipgram_loss_from_scratch(W_in, W_out, centres, contexts, negatives):
    """Mean over N pairs of -log σ(u_o·v_c) - Σ_k log σ(-u_n·v_c); negatives (N, K)."""
    v = F.embedding(centres, W_in)  # (N, D)
    u = F.embedding(contexts, W_out)  # (N, D)
    noise = F.embedding(negatives, W_out)  # (N, K, D)
    positive = (u * v).sum(axis=-1)  # (N,)
    negative = (noise @ v.reshape(v.shape[0], v.shape[1], 1)).reshape(negatives.shape)  # (N, K)
    return -(positive.sigmoid().log() + (-negative).sigmoid().log().sum(axis=-1)).mean()


N, K, V, D = 5, 3, 10, 4
W_in = tl.randn(V, D, dtype="float64", requires_grad=True)
W_out = tl.randn(V, D, dtype="float64", requires_grad=True)
pair_centres, pair_contexts = rng.integers(0, V, size=N), rng.integers(0, V, size=N)
pair_negatives = rng.integers(0, V, size=(N, K))


def fused_loss(W_in, W_out):
    v, u = F.embedding(pair_centres, W_in), F.embedding(pair_contexts, W_out)
    return w2v.negative_sampling_loss(v, u, F.embedding(pair_negatives, W_out))


def scratch_loss(W_in, W_out):
    return skipgram_loss_from_scratch(W_in, W_out, pair_centres, pair_contexts, pair_negatives)


gradients = {}
for name, loss_fn in (("from scratch", scratch_loss), ("fused", fused_loss)):
    W_in.zero_grad()
    W_out.zero_grad()
    loss = loss_fn(W_in, W_out)
    loss.backward()
    gradients[name] = (W_in.grad.numpy(), W_out.grad.numpy())
    print(f"{name:>12}: loss {loss.item():.6f}")
assert all(np.allclose(a, b) for a, b in zip(*gradients.values()))
for loss_fn in (scratch_loss, fused_loss):
    tl.gradcheck(loss_fn, [W_in, W_out], verbose=True)

# %% [markdown]
# ## 3. Training on the Python documentation
#
# The corpus, cut into lower-case words. `w2v.train_word2vec` builds the vocabulary (words
# seen at least 5 times), **subsamples** very frequent words (each occurrence of a word of
# frequency $f$ is dropped with probability $1 - \sqrt{10^{-3}/f}$: "the" says little
# about its neighbours), makes the skip-gram pairs, and trains both tables with Adam, $K = 5$
# noise words per pair.

# %%
words = w2v.corpus_words(data.load_corpus("builtin"))
print(f"{len(words):,} words, e.g. {' '.join(words[1000:1012])}")
epochs = 1 if FAST else 5
model, vocabulary, losses = w2v.train_word2vec(
    words, mode="skipgram", embed_dim=50, window=3, num_negatives=5, min_count=5, epochs=epochs, batch_size=512, lr=0.01
)
print(f"vocabulary: {len(vocabulary)} words; {len(losses)} steps")
print(f"loss: {np.mean(losses[:10]):.2f} over the first 10 steps, {np.mean(losses[-50:]):.2f} over the last 50")

# %% [markdown]
# The first loss is $(K + 1) \log 2 \approx 4.16$: the output table starts at zero, so
# every score is $0$ and every $\sigma$ is $\tfrac12$. It can never reach $0$ — noise words
# are sometimes real neighbours too.

# %%
fig = viz.plot_loss(losses, smooth=20, ylabel="negative-sampling loss")
fig.axes[0].axhline(6 * np.log(2), color="black", linestyle=":", label=r"start: $(K+1)\log 2$")
fig.axes[0].legend()
fig

# %% [markdown]
# ## 4. Nearest neighbours
#
# Similar words should now have vectors pointing the same way. **Cosine similarity**
# measures the angle and ignores the length (which mostly tracks how frequent a word is):
#
# $$\cos(a, b) = \frac{a \cdot b}{\|a\|\,\|b\|}.$$
#
# `w2v.WordVectors` wraps the input table ($W_{in}$, the vectors usually kept) with the
# vocabulary and answers queries:

# %%
vectors = w2v.WordVectors(model.input_vectors, vocabulary)
for word in ("int", "list", "true", "error", "class", "string"):
    neighbours = ", ".join(f"{other} ({score:.2f})" for other, score in vectors.most_similar(word, k=6))
    print(f"{word:>7}: {neighbours}")

# %% [markdown]
# **Analogies** ask for the word whose vector is nearest $b - a + c$ ("a is to b as c is
# to ?"). On a corpus of 64,000 words they rarely work: here "string" makes the top three
# for the first question, and nothing sensible comes out for the second. The famous
# king − man + woman ≈ queen needed a corpus of a billion words.

# %%
for a, b, c in (("int", "integer", "str"), ("get", "set", "getattr")):
    print(f"{a} : {b} = {c} : ?  ->", ", ".join(w for w, _ in vectors.analogy(a, b, c, k=3)))

# %% [markdown]
# ## See it: a 2-D projection
#
# The vectors have 50 dimensions; to look at them, project onto the two directions along
# which they vary most — **principal component analysis**. Centre the rows,
# $\tilde E = E - \bar e$, take the singular value decomposition
# $\tilde E = U \Sigma V^\top$, and keep the first two columns of $V$: the coordinates are
# $\tilde E V_{:, :2}$. We label a few groups of words by hand and colour them; the
# network never saw these labels.

# %%
groups = {
    "built-in types": ["int", "float", "str", "list", "dict", "tuple", "set", "bytes", "complex", "bool"],
    "statements": ["if", "else", "while", "for", "return", "break", "continue", "try", "except", "pass"],
    "errors": ["error", "exception", "raised", "raise", "traceback", "exceptions", "errors"],
    "values": ["true", "false", "none", "zero", "negative", "positive"],
}
groups = {name: [w for w in members if w in vocabulary.index] for name, members in groups.items()}
chosen = [w for members in groups.values() for w in members]
E = vectors.unit[[vocabulary.id_of(w) for w in chosen]]  # unit vectors: cosine geometry
centred = E - E.mean(axis=0)
_, singular_values, components = np.linalg.svd(centred, full_matrices=False)
points = centred @ components[:2].T
explained = singular_values[:2] ** 2 / (singular_values**2).sum()

fig, ax = plt.subplots(figsize=(7, 5.5), layout="constrained")
start = 0
for name, members in groups.items():
    xy = points[start : start + len(members)]
    ax.scatter(xy[:, 0], xy[:, 1], label=name)
    for word, (px, py) in zip(members, xy):
        ax.annotate(word, (px, py), textcoords="offset points", xytext=(4, 3), fontsize=9)
    start += len(members)
ax.set_xlabel(f"first principal component ({explained[0]:.0%} of the variance)")
ax.set_ylabel(f"second principal component ({explained[1]:.0%})")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Two dimensions keep only a part of the variance, so neighbours in the plot are not
# always neighbours in 50-D; `most_similar` is the faithful measure. Still, the groups
# gather: words that appear in the same kind of sentence get similar vectors.
#
# ## 5. GloVe: the same idea from a table of counts
#
# word2vec streams over the text, pair by pair. **GloVe** counts once, over the whole
# corpus, how often each word $j$ occurs near each word $i$ (a neighbour $d$ words away
# adds $1/d$), the table $X_{ij}$, and then fits vectors to the *logarithm* of the counts
# by weighted least squares:
#
# $$J = \sum_{i, j:\ X_{ij} > 0} f(X_{ij}) ig(w_i^\top \tilde w_j + b_i + \tilde b_j - \log X_{ij}\big)^2,
# \qquad f(x) = \min\big(1, (x / x_{\max})^{3/4}\big).$$
#
# $f$ keeps the many tiny, noisy counts from dominating and caps the few huge ones
# ("of the"). `glove.train_glove` builds the table (`glove.cooccurrence_matrix`), fits it
# with Adam over its non-zero entries, and returns the model; its vectors are
# $w + \tilde w$. Does it find the same neighbours as word2vec? `glove.neighbour_overlap`
# gives, for each word, the share of the 10 nearest neighbours the two agree on (for
# unrelated vectors it would be about $10 / V$, under 1%).

# %%
glove_model, glove_vocabulary, glove_losses = glove.train_glove(
    words, embed_dim=50, window=5, min_count=5, epochs=3 if FAST else 15
)
glove_vectors = w2v.WordVectors(glove_model.vectors(), glove_vocabulary)
print(f"GloVe loss per epoch: {glove_losses[0]:.4f} -> {glove_losses[-1]:.4f}")
for word in ("int", "list", "true", "error"):
    print(f"{word:>7}: {', '.join(w for w, _ in glove_vectors.most_similar(word, k=6))}")
overlap = glove.neighbour_overlap(vectors, glove_vectors, ["int", "list", "true", "error", "class", "string"])
print("shared nearest neighbours, word2vec vs GloVe:", {word: f"{share:.0%}" for word, share in overlap.items()})

# %% [markdown]
# Two very different procedures — a classifier of real against noise pairs, and a
# regression on log-counts — share far more neighbours than chance would (tens of
# percent, against under one): both recover the statistics of which words keep which
# company. Levy and Goldberg (2014) made this
# precise: skip-gram with negative sampling implicitly factorises a (shifted) matrix of
# pointwise mutual information, a close relative of GloVe's log-count table.
#
# ## Exercises
#
# 1. Show that $X^\top G$ equals the scatter-add for a batch in which every id is
#    different, and explain why then `dW[ids] += G` also works.
# 2. Derive $\partial \ell / \partial v_c$ from the loss, using
#    $\sigma(-s) = 1 - \sigma(s)$, and check it numerically on one pair.
# 3. Train with `mode="cbow"` (the context predicts the centre). Compare the neighbours
#    of "int" and "error" with skip-gram's.
# 4. Set `subsample_threshold=0` (keep every occurrence). Which neighbour lists get worse,
#    and why do frequent words such as "the" appear in them?
# 5. Replace the noise power $3/4$ by $1$ and by $0$ (uniform). Plot the noise probability
#    of the 20 most frequent words under each (`w2v.NegativeSampler(counts, power).probabilities()`).
# 6. Project with the *output* vectors ($W_{out}$) or with $W_{in} + W_{out}$. Do the
#    groups separate better?
# 7. Fit GloVe with a plain weight $f(x) = 1$ for every count. Which neighbour lists
#    change, and why do the frequent words ("the", "of") spread into them?
