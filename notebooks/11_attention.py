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
# # Chapter 11 — Attention
#
# A recurrent network squeezes everything it has read into one hidden vector. **Attention**
# lets a model look back at *all* the positions it has read, and decide, for each output,
# which of them matter. It is a soft dictionary lookup: a **query** is compared with every
# **key**, the comparisons become weights that sum to one, and the answer is the weighted
# average of the **values**.
#
# You will:
# 1. derive scaled dot-product attention and see why it divides by $\sqrt{d}$;
# 2. write it from scratch with tensor ops, with boolean and causal masks;
# 3. compare tinylm's fused attention (backward worked out by hand) with the composed
#    one (autograd), with the gradient check and with PyTorch;
# 4. train a sequence-to-sequence model with additive attention to reverse strings, and
#    look at where it attends.
#
# `TINYLM_FAST=1` trains the seq2seq model for 40 steps instead of 600: its attention map
# is still a blur. The full run (about a minute on a laptop CPU) reverses strings
# almost perfectly, and its attention map is a sharp anti-diagonal.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
from tinylm.progress import progress_bar
import tinylm.functional as F
from tinylm import nn, optim, viz

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The math
#
# Stack $L$ queries as the rows of $Q \in \mathbb{R}^{L \times d}$, $S$ keys as the rows
# of $K \in \mathbb{R}^{S \times d}$, and their values as the rows of
# $V \in \mathbb{R}^{S \times d_v}$. Then
#
# $$A = \frac{Q K^\top}{\sqrt{d}} + M, \qquad P = \operatorname{softmax}_{\text{rows}}(A),
# \qquad \operatorname{Attention}(Q, K, V) = P V \in \mathbb{R}^{L \times d_v}.$$
#
# Row $i$ of $P$ is a probability distribution over the $S$ keys: how much query $i$
# looks at each of them. $M$ is the **mask**: $0$ where query $i$ may attend to key $j$,
# $-\infty$ where it may not (then $e^{-\infty} = 0$ and that weight is exactly $0$).
#
# **Why $\sqrt{d}$?** If the entries of $q$ and $k$ are independent with mean $0$ and
# variance $1$, then $q \cdot k = \sum_{m=1}^{d} q_m k_m$ is a sum of $d$ terms of
# variance $1$: its variance is $d$. Large scores push softmax into saturation, where one
# weight is almost $1$, the others almost $0$, and the gradient
# $\partial p_j / \partial a_m = p_j(\delta_{jm} - p_m)$ almost vanishes. Dividing by
# $\sqrt{d}$ brings the variance back to $1$ whatever $d$ is.

# %%
dims = [4, 16, 64, 256, 1024]
largest_weight = {"unscaled  q·k": [], "scaled  q·k / √d": []}
for d in dims:
    q = rng.standard_normal((200, d))
    k = rng.standard_normal((32, d))
    for name, divisor in (("unscaled  q·k", 1.0), ("scaled  q·k / √d", np.sqrt(d))):
        largest_weight[name].append(F.softmax(tl.tensor(q @ k.T / divisor)).numpy().max(axis=1).mean())
    print(f"d = {d:>4}: variance of q·k = {(q @ k.T).var():7.1f}")

fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
for name, values in largest_weight.items():
    ax.semilogx(dims, values, "o-", label=name, base=2)
ax.axhline(1 / 32, color="gray", linestyle=":", label="uniform over 32 keys")
ax.set_xlabel("feature size d")
ax.set_ylabel("mean of the largest weight")
ax.set_title("without scaling, softmax saturates as d grows")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## 2. From scratch, with masks
#
# The formula above, line for line, with tensor ops. The mask comes in as booleans
# (`True` = may attend, PyTorch's convention for `scaled_dot_product_attention`) and is
# turned into the $0 / -\infty$ matrix $M$.

# %%
def attention_from_scratch(q, k, v, mask=None):
    scores = q @ k.transpose(1, 0) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + tl.tensor(np.where(mask, 0.0, -np.inf).astype(scores.dtype))
    weights = F.softmax(scores, axis=-1)
    return weights @ v, weights


L, d = 6, 8
q, k, v = (tl.randn(L, d, requires_grad=True) for _ in range(3))
out, weights = attention_from_scratch(q, k, v)
fused_out, fused_weights = F.scaled_dot_product_attention(q, k, v, return_weights=True)
print("each row of the weights sums to 1:", np.allclose(weights.numpy().sum(axis=1), 1))
print("from scratch == F.scaled_dot_product_attention:", np.allclose(out.numpy(), fused_out.numpy(), atol=1e-6))

# %% [markdown]
# Two masks come up everywhere:
#
# * a **padding mask**: sequences of different lengths are padded to the same length in
#   a batch, and no query may attend to the padding. It masks *columns* (keys).
# * a **causal mask**: a language model predicting token $i+1$ must not see tokens after
#   $i$, so query $i$ may attend to keys $j \le i$ only: a lower-triangular matrix,
#   $M_{ij} = 0$ for $j \le i$ and $-\infty$ otherwise. `is_causal=True` builds it.
#
# (A float mask is added to the scores as it is: a soft preference instead of a ban.)

# %%
real_length = 4
padding_mask = np.arange(L)[None, :] < real_length  # (1, S): broadcasts over the queries
causal = np.tril(np.ones((L, L), dtype=bool))

_, padded_weights = attention_from_scratch(q, k, v, padding_mask)
_, causal_weights = attention_from_scratch(q, k, v, causal)
_, fused_causal = F.scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=True)
_, fused_padded = F.scaled_dot_product_attention(q, k, v, attn_mask=padding_mask, return_weights=True)
assert np.allclose(causal_weights.numpy(), fused_causal.numpy(), atol=1e-6)
assert np.allclose(padded_weights.numpy(), fused_padded.numpy(), atol=1e-6)

# %% [markdown]
# ## See it: the weights under each mask
#
# Rows are queries, columns keys; each row sums to one. The padding mask blanks the last
# two columns; the causal mask blanks everything above the diagonal (the first query can
# only look at itself, so its weight is exactly $1$).

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
positions = [str(i) for i in range(L)]
for ax, (title, w) in zip(axes, [("no mask", weights), (f"padding: keys ≥ {real_length} masked", padded_weights), ("causal", causal_weights)]):
    viz.plot_attention(w, x_labels=positions, y_labels=positions, ax=ax)
    ax.set_title(title)
plt.show()

# %% [markdown]
# ## 3. The tinylm function: fused and composed
#
# `F.scaled_dot_product_attention` is one `Function` whose backward is worked out by
# hand. With $G = \partial \mathcal{L} / \partial O$:
#
# $$\frac{\partial \mathcal{L}}{\partial V} = P^\top G, \qquad
# \frac{\partial \mathcal{L}}{\partial P} = G V^\top, \qquad
# \frac{\partial \mathcal{L}}{\partial A_{ij}} = P_{ij}\Big(\frac{\partial \mathcal{L}}{\partial P_{ij}} - D_i\Big),
# \quad D_i = \sum_j P_{ij} \frac{\partial \mathcal{L}}{\partial P_{ij}} = G_i \cdot O_i,$$
#
# $$\frac{\partial \mathcal{L}}{\partial Q} = \frac{1}{\sqrt{d}} \frac{\partial \mathcal{L}}{\partial A} K, \qquad
# \frac{\partial \mathcal{L}}{\partial K} = \frac{1}{\sqrt{d}} \Big(\frac{\partial \mathcal{L}}{\partial A}\Big)^\top Q.$$
#
# The softmax Jacobian ($S \times S$ per row) is never built: the middle formula is its
# product with a vector. `F.scaled_dot_product_attention_composed` computes the same
# thing from primitive ops and lets autograd find the backward. The two must agree, and
# both must pass the gradient check. Leading axes (batch, heads) broadcast.

# %%
tl.set_default_dtype(np.float64)
shape = (2, 3, 5, 4)  # (batch, heads, length, features)
q, k, v = (tl.randn(*shape, requires_grad=True) for _ in range(3))
for attention in (F.scaled_dot_product_attention, F.scaled_dot_product_attention_composed):
    tl.gradcheck(lambda q, k, v: attention(q, k, v, is_causal=True), [q, k, v], verbose=True)
    tl.gradcheck(lambda q, k, v: attention(q, k, v, attn_mask=padding_mask[:, :5]), [q, k, v], verbose=True)

gradients = {}
for attention in (F.scaled_dot_product_attention, F.scaled_dot_product_attention_composed):
    for t in (q, k, v):
        t.grad = None
    out = attention(q, k, v, is_causal=True)
    (out * out).sum().backward()
    gradients[attention.__name__] = [out.numpy()] + [t.grad.numpy() for t in (q, k, v)]
for name, fused, composed in zip(["output", "dq", "dk", "dv"], *gradients.values()):
    print(f"{name:>6}: fused vs composed, largest difference {np.abs(fused - composed).max():.1e}")
    assert np.allclose(fused, composed)
tl.set_default_dtype(np.float32)

# %% [markdown]
# PyTorch has the same function with the same conventions (`True` = may attend, causal
# masks aligned top-left):

# %%
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the comparison")

if torch is not None:
    tq, tk, tv = (torch.tensor(t.numpy(), requires_grad=True) for t in (q, k, v))
    torch_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    (torch_out * torch_out).sum().backward()
    for name, ours, theirs in zip(["output", "dq", "dk", "dv"], gradients["scaled_dot_product_attention"], [torch_out, tq.grad, tk.grad, tv.grad]):
        print(f"{name:>6}: tinylm vs PyTorch, largest difference {np.abs(ours - theirs.detach().numpy()).max():.1e}")
        assert np.allclose(ours, theirs.detach().numpy())

# %% [markdown]
# Why keep both? The composed version shows every step; the fused one stores only $P$ and
# $O$ for the backward pass and does its element-wise work in place. The timing (one
# forward and backward, float32, batch 8, 4 heads, 32 features):

# %%
repeats = 2 if FAST else 10
print(f"{'length':>7}{'fused (ms)':>12}{'composed (ms)':>15}")
for length in (64, 128) if FAST else (64, 128, 256, 512):
    q, k, v = (tl.randn(8, 4, length, 32, requires_grad=True) for _ in range(3))
    times = []
    for attention in (F.scaled_dot_product_attention, F.scaled_dot_product_attention_composed):
        started = time.perf_counter()
        for _ in range(repeats):
            attention(q, k, v, is_causal=True).sum().backward()
        times.append((time.perf_counter() - started) / repeats * 1000)
    print(f"{length:>7}{times[0]:>12.1f}{times[1]:>15.1f}")

# %% [markdown]
# ## 4. Attention in a sequence-to-sequence model
#
# Attention was invented for translation (Bahdanau, Cho and Bengio, 2015). An **encoder**
# GRU reads the source $x_1 \dots x_S$ and keeps its state at every position,
# $s_1 \dots s_S$. A **decoder** GRU writes the output one token at a time; before each
# step it attends over the encoder states with its previous state $h_{t-1}$ as the query.
# Bahdanau's score is a small network instead of a dot product (**additive attention**):
#
# $$e_{tj} = v^\top \tanh(W_q h_{t-1} + W_k s_j), \qquad
# \alpha_{tj} = \operatorname{softmax}_j(e_{tj}), \qquad c_t = \sum_j \alpha_{tj} s_j,$$
#
# $$h_t = \operatorname{GRU}([\,\text{embed}(y_{t-1});\, c_t\,],\, h_{t-1}), \qquad
# p(y_t \mid y_{<t}, x) = \operatorname{softmax}(W_o [\,h_t; c_t\,] + b_o).$$
#
# The task is generated: **reverse a random string** of letters. Without attention the
# decoder must recall the first letter of the source from a state that has since read all
# the others; with attention, output step $t$ can simply look at source position $S + 1 - t$.
# Training uses *teacher forcing*: the decoder is fed the true previous letter.

# %%
letters = "abcdefghij"
START = len(letters)  # the decoder's first input: a token that is not a letter
length = 8


def reversal_batch(batch_size):
    source = rng.integers(0, len(letters), size=(batch_size, length))
    target = source[:, ::-1].copy()
    target_in = np.concatenate([np.full((batch_size, 1), START), target[:, :-1]], axis=1)
    return source, target_in, target


seq2seq = nn.Seq2Seq(source_vocab=len(letters), target_vocab=len(letters) + 1, embed_dim=16, hidden_size=64)
optimizer = optim.Adam(seq2seq.parameters(), lr=1e-2)
losses = []
for step in progress_bar(range(40 if FAST else 600), desc="seq2seq"):
    source, target_in, target = reversal_batch(64)
    loss = F.cross_entropy(seq2seq(source, target_in), target)
    optimizer.zero_grad()
    loss.backward()
    optim.clip_grad_norm_(seq2seq.parameters(), max_norm=1.0)
    optimizer.step()
    losses.append(loss.item())

source, _, target = reversal_batch(500)
predicted, attention_weights = seq2seq.greedy_decode(source, start_id=START, length=length)
predicted = predicted.numpy()
print(f"letters right: {(predicted == target).mean():.1%}, whole strings right: {(predicted == target).all(axis=1).mean():.1%}")
for row in range(3):
    print("".join(letters[i] for i in source[row]), "->", "".join(letters[i] for i in predicted[row]))

# %%
fig = viz.plot_loss(losses, smooth=20, ylabel="cross-entropy (nats)", log_scale=True)
fig.axes[0].set_title("learning to reverse strings")
fig

# %% [markdown]
# ## See it: where the decoder looks
#
# The attention weights $\alpha_{tj}$ while decoding one string: row $t$ is output step
# $t$, column $j$ source position $j$. A model that learned to reverse looks at the last
# source letter first, then the one before, and so on: an **anti-diagonal**. Nobody told
# it to; the alignment is learned from the loss alone.

# %%
example = 0
fig = viz.plot_attention(
    attention_weights.numpy()[example],
    x_labels=[letters[i] for i in source[example]],
    y_labels=[letters[i] for i in predicted[example]],
)
ax = fig.axes[0]
ax.set_xlabel("source letter")
ax.set_ylabel("output letter")
fig

# %% [markdown]
# ## Exercises
#
# 1. Show that $\operatorname{Attention}(Q, K, V)$ does not change when the same
#    permutation is applied to the rows of $K$ and of $V$. What does that say about the
#    order of the keys, and what must be added to a model made only of attention to tell
#    positions apart? ([Chapter 13](13_transformer.ipynb).)
# 2. A query whose keys are *all* masked: what does `attention_from_scratch` return, and
#    what does `F.scaled_dot_product_attention`? Which behaviour would you rather have in
#    a padded batch, and why?
# 3. Derive $\partial \mathcal{L} / \partial A$ above from the softmax Jacobian
#    $\partial p_j / \partial a_m = p_j(\delta_{jm} - p_m)$, and check the identity
#    $D_i = \sum_j P_{ij} (\partial \mathcal{L} / \partial P_{ij}) = G_i \cdot O_i$ numerically.
# 4. Replace the reversal task by *sorting* the letters. What does the attention map
#    look like now, and why is it no longer a fixed pattern?
# 5. Replace the additive score $v^\top \tanh(W_q h + W_k s)$ by a scaled dot product
#    $h^\top W s / \sqrt{d}$. Does the model still learn to reverse? How many parameters
#    does each score use?
