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
#    one (autograd), with the gradient check and with PyTorch, and time the two;
# 4. meet the other classic score, additive attention, which the next chapter puts to
#    work in a translation model.
#
# `TINYLM_FAST=1` times the two attentions at two sequence lengths instead of four and
# repeats each timing twice instead of ten times; everything else is the same. The full
# run takes well under a minute on a laptop CPU.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
import tinylm.functional as F
from tinylm import viz

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
# ## 4. Where attention came from: additive attention
#
# Attention was invented for translation (Bahdanau, Cho and Bengio, 2015), before the
# scaled dot product. A decoder writing the translation word by word looked back at the
# encoder's states $s_1 \dots s_S$ of the source sentence, with its own previous state
# $h$ as the query, and scored each of them with a small network instead of a dot
# product (**additive attention**):
#
# $$e_j = v^\top \tanh(W_q h + W_k s_j), \qquad \alpha_j = \operatorname{softmax}_j(e_j),
# \qquad c = \sum_j \alpha_j s_j.$$
#
# The rest is what this chapter built: weights that sum to one, masks for padding, a
# weighted average of the values. [Chapter 12](12_seq2seq_with_attention.ipynb) writes
# additive attention from scratch, puts it between an encoder and a decoder
# (`nn.AdditiveAttention`, `nn.Seq2Seq`), and trains it to translate numbers into words;
# [chapter 13](13_transformer.ipynb) builds a model out of scaled dot-product attention
# alone.

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
# 4. How many parameters does the additive score $v^\top \tanh(W_q h + W_k s)$ use, with
#    $h, s \in \mathbb{R}^{d}$ and a hidden size $d_a$, and how many does a bilinear score
#    $h^\top W s / \sqrt{d}$? How many multiplications does each take for $L$ queries and
#    $S$ keys? Which one can be written as one matrix product for all the queries at once?
