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
# # Chapter 13 — The Transformer
#
# In [chapter 12](12_seq2seq_with_attention.ipynb) attention looked from a decoder back at
# an encoder, both of them recurrent. A **Transformer** uses attention for everything:
# every position of a sequence attends to the others (**self-attention**), several times
# in parallel (**multi-head**), with the order of the positions added as **positional
# encodings**, and a small MLP after each attention.
# There is no recurrence, so all positions are computed at once. A **GPT** is a stack of
# such blocks with a causal mask, trained to predict the next token.
#
# You will:
# 1. build multi-head attention from tensor ops and check it against `nn.MultiheadAttention`,
#    the gradient check and PyTorch;
# 2. see that attention alone ignores word order, and plot the sinusoidal positional
#    encodings that fix it;
# 3. train a small GPT on characters and compare it with an LSTM **at equal wall-clock
#    time**: both get the same number of seconds of training, with the same batch shape.
#
# `TINYLM_FAST=1` gives each model 4 seconds on a slice of the corpus with smaller
# batches, enough to see the curves start. The full run gives each 75 seconds (about
# three minutes for the whole notebook). On a laptop CPU, at this small size, the LSTM
# wins: it takes about twice as many steps in the time (about 1.66 nats per character
# against the GPT's 2.06 in our run). Section 4 explains why, and when that turns around.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
import tinylm.functional as F
from tinylm import data, lm, models, nn

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)

# %% [markdown]
# ## 1. Multi-head attention
#
# For an input sequence $X \in \mathbb{R}^{T \times E}$, each of $H$ heads projects it to
# its own queries, keys and values of size $D = E / H$ and attends ([chapter 11](11_attention.ipynb)):
#
# $$\text{head}_h = \operatorname{softmax}\!\Big(\frac{(X W_Q^h)(X W_K^h)^\top}{\sqrt{D}} + M\Big)\, X W_V^h
# \;\in \mathbb{R}^{T \times D}, \qquad
# \operatorname{MHA}(X) = [\,\text{head}_1, \dots, \text{head}_H\,]\, W_O.$$
#
# One head can follow the previous character while another looks for the last space:
# each has its own weights, and they cost together what one head of size $E$ would.
# In practice the $H$ projections are one matrix: $[Q\,K\,V] = X W_{\text{in}}^\top + b$,
# with $W_{\text{in}} \in \mathbb{R}^{3E \times E}$ (PyTorch's `in_proj_weight`); the $E$
# columns of $Q$ are then cut into $H$ slices of $D$.
#
# From scratch, with the weights of a tinylm layer so that we can compare:

# %%
E, H, T = 16, 4, 6
mha = nn.MultiheadAttention(E, H)
x = tl.randn(2, T, E)


def multi_head_from_scratch(x, layer, is_causal=False):
    batch, length, embed = x.shape
    head_dim = embed // layer.num_heads

    def split_heads(t):  # (B, T, E) -> (B, H, T, D)
        return t.reshape(batch, length, layer.num_heads, head_dim).transpose(0, 2, 1, 3)

    qkv = x @ layer.in_proj_weight.T + layer.in_proj_bias  # (B, T, 3E)
    q, k, v = (qkv[:, :, i * embed : (i + 1) * embed] for i in range(3))
    heads = F.scaled_dot_product_attention(split_heads(q), split_heads(k), split_heads(v), is_causal=is_causal)
    concatenated = heads.transpose(0, 2, 1, 3).reshape(batch, length, embed)
    return layer.out_proj(concatenated)


ours = multi_head_from_scratch(x, mha, is_causal=True)
theirs, _ = mha(x, is_causal=True)
print("from scratch == nn.MultiheadAttention:", np.allclose(ours.numpy(), theirs.numpy(), atol=1e-6))

# %% [markdown]
# ### Check it
#
# The gradient check of the whole layer in float64, with respect to its input, and
# PyTorch's `nn.MultiheadAttention` with tinylm's state dict loaded as it is (same names,
# same layout). PyTorch takes the causal mask as a boolean matrix where `True` means
# *blocked* (the opposite of `F.scaled_dot_product_attention`'s convention; tinylm's
# layer follows PyTorch's layer).

# %%
tl.set_default_dtype(np.float64)
small = nn.MultiheadAttention(8, 2)
x64 = tl.randn(2, 5, 8, requires_grad=True)
tl.gradcheck(lambda x: small(x, is_causal=True)[0], [x64], verbose=True)
tl.set_default_dtype(np.float32)

try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the comparison")

if torch is not None:
    torch_mha = torch.nn.MultiheadAttention(E, H, batch_first=True)
    torch_mha.load_state_dict({name: torch.tensor(value) for name, value in mha.state_dict().items()})
    blocked = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    x_torch = torch.tensor(x.numpy())
    torch_out, _ = torch_mha(x_torch, x_torch, x_torch, attn_mask=blocked)
    print(f"tinylm vs PyTorch, largest difference: {np.abs(theirs.numpy() - torch_out.detach().numpy()).max():.1e}")
    assert np.allclose(theirs.numpy(), torch_out.detach().numpy(), atol=1e-5)

# %% [markdown]
# ## 2. Positions
#
# Self-attention has no idea of order. Shuffle the input positions with a permutation
# $\pi$ and the output is shuffled the same way, nothing else changes:
# $\operatorname{MHA}(X_\pi) = \operatorname{MHA}(X)_\pi$ (without a mask). To the layer,
# "dog bites man" and "man bites dog" are the same bag of words.

# %%
permutation = np.random.default_rng(0).permutation(T)
out, _ = mha(x)
out_of_shuffled, _ = mha(x[:, permutation])
print("MHA(shuffled x) == shuffled MHA(x):", np.allclose(out_of_shuffled.numpy(), out.numpy()[:, permutation], atol=1e-6))

# %% [markdown]
# The fix is to add a vector that depends on the position to each input, $x_t + p_t$.
# *Attention Is All You Need* uses fixed sines and cosines of geometrically spaced
# frequencies:
#
# $$p_{t,2i} = \sin\big(t / 10000^{2i/E}\big), \qquad p_{t,2i+1} = \cos\big(t / 10000^{2i/E}\big).$$
#
# Each pair of features is a clock ticking at its own rate: the first pairs turn fast and
# tell neighbouring positions apart, the last ones turn slowly and tell the beginning of
# a long text from its end. Because a shift by $k$ rotates every pair by a fixed angle,
# $p_{t+k}$ is a linear function of $p_t$, and the dot product $p_t \cdot p_s$ depends
# only on the offset $t - s$. GPT-2 instead *learns* one vector per position
# (`nn.LearnedPositionalEncoding`), which is what `nn.GPT` uses.

# %%
length, dim = 100, 64
encoding = nn.SinusoidalPositionalEncoding(length, dim)
table = encoding(tl.zeros((1, length, dim))).numpy()[0]  # x + PE with x = 0 gives PE itself
similarity = table @ table.T

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
image = axes[0].imshow(table.T, cmap="RdBu", aspect="auto", vmin=-1, vmax=1)
axes[0].set_xlabel("position t")
axes[0].set_ylabel("feature")
axes[0].set_title("sinusoidal positional encodings $p_{t}$")
fig.colorbar(image, ax=axes[0])
image = axes[1].imshow(similarity, cmap="viridis")
axes[1].set_xlabel("position s")
axes[1].set_ylabel("position t")
axes[1].set_title(r"$p_t \cdot p_s$: a function of $t - s$ only")
fig.colorbar(image, ax=axes[1])
plt.show()

# %% [markdown]
# ## 3. The Transformer block and the GPT
#
# A block (pre-norm, as GPT-2) is attention and an MLP, each wrapped in a residual
# connection with a LayerNorm before it:
#
# $$X \leftarrow X + \operatorname{MHA}(\operatorname{LN}(X)), \qquad
# X \leftarrow X + W_2\, \operatorname{GELU}(W_1 \operatorname{LN}(X) + b_1) + b_2.$$
#
# The residual path carries the input unchanged from the first block to the last, so the
# gradient reaches every block (the same "highway" idea as the LSTM's cell state). A GPT
# embeds the tokens, adds position vectors, applies $N$ blocks with the **causal** mask
# (position $t$ sees positions $\le t$ only, so it cannot peek at the token it predicts),
# and reads out next-token logits. Every position of a window is a training example at
# once: $T$ predictions per row of a batch, in parallel.
#
# ## 4. GPT against LSTM, at equal wall-clock time
#
# Both models get the same data, the same batch shape ($B \times T$ tokens per step), the
# same optimizer and schedule, and the **same number of seconds** (not the same number of
# steps): with `TrainConfig(max_seconds=...)` the trainer measures its own speed every 20
# steps and fits the cosine decay of the learning rate to end when the time runs out. The GPT reads random windows of the text (it keeps no state); the LSTM reads
# the text in order and carries its state ([chapter 10](10_char_language_model.ipynb)). The two are about the same size.

# %%
text = data.load_corpus("builtin")
if FAST:
    text = text[:100_000]
tokenizer = data.CharTokenizer.train(text)
V = tokenizer.vocab_size
train_ids, val_ids = data.train_val_split(tokenizer.encode(text), val_fraction=0.1)
seconds = 4 if FAST else 75
batch_size, seq_len = (16, 32) if FAST else (32, 64)

candidates = {
    "LSTM": models.build_model("lstm", V, embed_dim=64, hidden_size=128),
    "GPT": models.build_model("gpt", V, context_length=seq_len, embed_dim=64, num_heads=4, num_layers=2),
}
for name, model in candidates.items():
    print(f"{name}: {sum(p.data.size for p in model.parameters()):,} parameters")

# %%
runs = {}
for name, model in candidates.items():
    tl.manual_seed(0)
    config = lm.TrainConfig(
        steps=100_000,  # only an upper bound: max_seconds ends the run
        max_seconds=seconds,
        batch_size=batch_size,
        seq_len=seq_len,
        lr=3e-3,
        warmup_steps=10,
        eval_every=0,
    )
    trainer = lm.Trainer(model, tokenizer, train_ids, val_ids, config)
    clock = []  # seconds since the start, after every step
    started = time.perf_counter()
    history = trainer.train(on_step=lambda trainer, loss: clock.append(time.perf_counter() - started))
    runs[name] = {"losses": history.train_losses, "seconds": clock, "final": trainer.last_evaluation}
    print(f"{name}: {trainer.step} steps in {clock[-1]:.1f} s of training; validation {trainer.last_evaluation}")

# %% [markdown]
# ## See it: loss per step and loss per second
#
# Each curve is a moving average of the training loss: against the step (left) and
# against the wall-clock time (right), the comparison that matters on a fixed budget.
# Timings on a shared or busy machine are noisy; rerun to see the spread.

# %%
def moving_average(values, window=5 if FAST else 25):
    window = min(window, len(values))
    return np.convolve(values, np.ones(window) / window, mode="valid")


fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained", sharey=True)
for name, run in runs.items():
    averaged = moving_average(run["losses"])
    axes[0].plot(np.arange(len(run["losses"]))[-len(averaged) :], averaged, label=name)
    axes[1].plot(run["seconds"][-len(averaged) :], averaged, label=f"{name} (validation {run['final'].loss:.2f})")
axes[0].set_xlabel("step")
axes[1].set_xlabel("wall-clock seconds")
axes[0].set_ylabel("training loss (nats per character)")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend()
plt.show()

# %% [markdown]
# The same runs compared at **equal steps**, over the last steps both models took:

# %%
common = min(len(run["losses"]) for run in runs.values())
for name, run in runs.items():
    last = run["losses"][max(0, common - 20) : common]
    print(
        f"{name}: {len(run['losses']) / run['seconds'][-1]:.1f} steps per second; "
        f"mean training loss over steps {common - len(last)}..{common}: {np.mean(last):.3f}"
    )

# %% [markdown]
# Why does the small LSTM win here? A GPT step costs more: at every position it computes
# $T$ attention scores per head and an MLP four times as wide as the embedding, while the
# LSTM does one small matrix product per position. Per step the two are close (in our full
# run the GPT led for the first few dozen steps, then the LSTM, which also carries its
# state past the 64-character window, pulled ahead). The Transformer's advantages show
# at scale: all positions of a sequence are computed at once, which a GPU turns into
# speed ([chapter 17](17_gpu_with_cupy.ipynb)), and attention reaches any earlier position in one step, which pays
# off with longer contexts, more layers and longer training. "Equal compute" must always
# say which budget (steps, seconds, FLOPs) and on which machine.
#
# ## See it: what the heads attend to
#
# The attention weights of every head of the GPT's last block on a line of text (rows:
# the position predicting the next character; columns: the positions it reads; the
# causal mask leaves the upper triangle empty). After the full run expect a mix: a head
# with a bright band along the diagonal (the current or previous character), heads that
# park much of their weight on the first position (a common resting place when nothing
# else is useful), and heads whose weight lands on particular characters, such as the
# spaces that end the previous words.

# %%
gpt = candidates["GPT"]
snippet = "The value of a function"
ids = np.array([tokenizer.encode(snippet)])
with tl.no_grad():
    hidden = gpt.position_embedding(gpt.token_embedding(ids))
    for block in gpt.blocks:
        _, head_weights = block.attention(block.attention_norm(hidden), is_causal=True, average_attn_weights=False)
        hidden = block(hidden, is_causal=True)

characters = [{" ": "␣"}.get(ch, ch) for ch in snippet]
fig, axes = plt.subplots(1, gpt.blocks[-1].attention.num_heads, figsize=(16, 4.4), layout="constrained")
for head, ax in enumerate(axes):
    ax.imshow(head_weights.numpy()[0, head], cmap="viridis", vmin=0)
    ax.set_xticks(range(len(characters)), labels=characters, fontsize=7)
    ax.set_yticks(range(len(characters)), labels=characters, fontsize=7)
    ax.set_title(f"last block, head {head}")
plt.show()

print("GPT writes:", repr(lm.generate(gpt, tokenizer, "The return value", max_new_tokens=120, temperature=0.8, seed=0)))

# %% [markdown]
# ## Exercises
#
# 1. Count the parameters of one Transformer block with embedding size $E$ by hand
#    (attention: $4E^2 + 4E$; MLP: $8E^2 + 5E$; two LayerNorms) and check with
#    `sum(p.data.size for p in block.parameters())`.
# 2. Show that the dot product $p_t \cdot p_{t+k}$ of two sinusoidal encodings depends on
#    $k$ only. Plot it against $k$ for $E = 64$.
# 3. Train the GPT without its causal mask (call the blocks with `is_causal=False` in a
#    copy of `GPT.forward`). The training loss drops fast; why is the model useless for
#    generating text?
# 4. Compare at **equal steps** instead of equal seconds: give both models the same
#    `TrainConfig(steps=...)`. Which wins now? Which comparison is the fair one when you
#    have one laptop for an afternoon?
# 5. The attention costs $O(T^2)$ per sequence, the LSTM $O(T)$. Time one training step
#    of each for `seq_len` 32, 64, 128 and 256 (set `context_length` accordingly) and plot
#    the seconds against $T$.
