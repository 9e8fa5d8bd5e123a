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
# # Chapter 3 — Softmax, cross-entropy and perplexity
#
# A language model reads some text and outputs, for every token of its vocabulary, a score
# (a **logit**) saying how likely that token is to come next. This chapter turns scores
# into probabilities (**softmax**), measures how good the probabilities are
# (**cross-entropy**, and its more readable twin, **perplexity**), derives the famous
# gradient $p - y$, and trains the simplest language model there is — a **bigram** model,
# once by counting and once as a neural network — on the built-in corpus (the Python
# reference documentation that ships with every Python).
#
# `TINYLM_FAST=1` trains the neural model for 60 steps instead of 1,500. The full run takes
# under a minute on a laptop; its neural model ends within about 0.02 nats of the counting
# model's validation loss (2.32 nats, perplexity 10.1), the fast run about twice as far.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
from tinylm.progress import progress_bar
import tinylm.functional as F
from tinylm import data, nn, optim, viz

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. From scores to probabilities: softmax
#
# Given logits $x \in \mathbb{R}^C$, softmax makes them positive and normalises them:
#
# $$p_i = \operatorname{softmax}(x)_i = \frac{e^{x_i}}{\sum_{j} e^{x_j}}.$$
#
# Adding the same constant to every logit changes nothing (the factor $e^{c}$ cancels);
# only differences between logits matter. Written as it stands, though, the formula breaks
# on a computer: float32 overflows above $e^{88.7}$, and $\infty / \infty$ is NaN.

# %%
logits = np.array([90.0, 91.0, 92.0], dtype=np.float32)
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(logits) / np.exp(logits).sum()
print("naive softmax :", naive)

# %% [markdown]
# ### The log-sum-exp trick
#
# Subtract the largest logit $m = \max_j x_j$ first. The result is the same, but every
# exponent is now $\le 0$ (no overflow) and the largest term is exactly $1$ (the sum cannot
# underflow to $0$):
#
# $$\operatorname{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \qquad
# \log \sum_j e^{x_j} = m + \log \sum_j e^{x_j - m}.$$
#
# The second identity gives the **log-softmax** directly,
# $\log p_i = x_i - m - \log \sum_j e^{x_j - m}$, without ever forming a probability that
# could underflow to $0$ (whose logarithm would be $-\infty$).

# %%
def stable_softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


print("stable softmax:", stable_softmax(logits))
print("F.softmax     :", F.softmax(tl.tensor(logits)).numpy())

far_apart = np.array([0.0, -200.0], dtype=np.float32)
with np.errstate(divide="ignore"):
    print("log(softmax)  :", np.log(stable_softmax(far_apart)))
print("F.log_softmax :", F.log_softmax(tl.tensor(far_apart)).numpy())

# %% [markdown]
# ## 2. Cross-entropy, and its gradient $p - y$
#
# If the correct next token is class $t$, the loss is the negative log-probability the
# model gave it — the **cross-entropy** between the one-hot target $y$ and $p$:
#
# $$\ell(x, t) = -\sum_i y_i \log p_i = -\log p_t = -x_t + \log \sum_j e^{x_j}.$$
#
# Differentiate the last form. $\partial(-x_t)/\partial x_i = -y_i$, and
# $\partial \log \sum_j e^{x_j} / \partial x_i = e^{x_i} / \sum_j e^{x_j} = p_i$, so
#
# $$\boxed{\frac{\partial \ell}{\partial x_i} = p_i - y_i.}$$
#
# The gradient pushes the logit of the right class up by $1 - p_t$ and every other logit
# down by its probability: the model is corrected exactly as much as it was wrong. For a
# batch of $N$ rows, the mean loss divides each row's gradient by $N$.
#
# `F.cross_entropy(logits, targets)` computes this fused (one softmax, no NaNs, the
# gradient written out). Let us check the formula against its `backward()`:

# %%
N, C = 5, 4
scores = tl.randn(N, C, dtype="float64", requires_grad=True)
targets = np.array([0, 3, 1, 1, 2])
loss = F.cross_entropy(scores, targets)
loss.backward()

p = F.softmax(scores).numpy()
y = np.eye(C)[targets]
print("backward()   :\n", scores.grad.numpy().round(4))
print("(p - y) / N  :\n", ((p - y) / N).round(4))
assert np.allclose(scores.grad.numpy(), (p - y) / N)

# %% [markdown]
# ### From scratch, and checked
#
# The same loss composed from primitives — log-softmax, then pick each row's target with
# integer indexing — must agree with the fused one, and both must pass the gradient check
# of [chapter 2](02_gradient_checking.ipynb).

# %%
def cross_entropy_from_scratch(x, t):
    log_p = F.log_softmax(x)
    return -log_p[np.arange(len(t)), t].mean()


print("fused   :", F.cross_entropy(scores, targets).item())
print("scratch :", cross_entropy_from_scratch(scores, targets).item())
tl.gradcheck(lambda x: F.cross_entropy(x, targets), [scores], verbose=True)
tl.gradcheck(lambda x: cross_entropy_from_scratch(x, targets), [scores], verbose=True)

# %%
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the comparison")

if torch is not None:
    scores_torch = torch.tensor(scores.numpy(), requires_grad=True)
    torch_loss = torch.nn.functional.cross_entropy(scores_torch, torch.tensor(targets))
    torch_loss.backward()
    print("PyTorch loss:", torch_loss.item())
    assert np.allclose(torch_loss.item(), loss.item())
    assert np.allclose(scores_torch.grad.numpy(), scores.grad.numpy())

# %% [markdown]
# ## 3. Perplexity
#
# Averaged over a text of $T$ tokens, the cross-entropy is the mean negative
# log-likelihood (in **nats**, since we use natural logarithms). Its exponential is the
# **perplexity**:
#
# $$\text{PPL} = \exp\Big(-\frac{1}{T}\sum_{k=1}^{T} \log p(t_k \mid \text{context}_k)\Big).$$
#
# It reads as "the model is as unsure as if it picked uniformly among PPL tokens". A model
# that knows nothing gives every one of $V$ tokens probability $1/V$, so its loss is
# $\log V$ and its perplexity exactly $V$. A perfect model has perplexity $1$.

# %%
V = 100
uniform_logits = tl.zeros((7, V))
uniform_loss = F.cross_entropy(uniform_logits, rng.integers(0, V, size=7)).item()
print(f"uniform over {V}: loss {uniform_loss:.4f} = log {V} = {np.log(V):.4f}, perplexity {np.exp(uniform_loss):.1f}")

# %% [markdown]
# ## 4. A bigram model by counting
#
# The simplest language model predicts the next character from the current one only:
# $p(c_{k+1} \mid c_k)$. The maximum-likelihood estimate is a table of counts, normalised
# row by row. A pair never seen would get probability $0$ and an infinite loss, so we add
# $\alpha$ to every count (**add-$\alpha$ smoothing**):
#
# $$p(b \mid a) = \frac{\text{count}(a\,b) + \alpha}{\text{count}(a) + \alpha V}.$$
#
# The corpus is the Python documentation that ships with CPython; the last 10% is held out
# for validation.

# %%
text = data.load_corpus("builtin")
tokenizer = data.CharTokenizer.train(text)
V = tokenizer.vocab_size
train_ids, val_ids = data.train_val_split(tokenizer.encode(text), val_fraction=0.1)
print(f"{len(text):,} characters, vocabulary of {V}, {len(train_ids):,} for training, {len(val_ids):,} for validation")
print(repr(text[:120]))

# %%
counts = np.zeros((V, V))
np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1)


def bigram_probabilities(alpha):
    return (counts + alpha) / (counts + alpha).sum(axis=1, keepdims=True)


def mean_nll(probabilities, ids):
    return -np.log(probabilities[ids[:-1], ids[1:]]).mean()


unigram = np.bincount(train_ids, minlength=V) + 1.0
unigram /= unigram.sum()
count_probabilities = bigram_probabilities(alpha=0.1)
count_nll = mean_nll(count_probabilities, val_ids)
print(f"{'model':<22}{'val loss (nats)':>16}{'perplexity':>12}")
for name, nll in (
    ("uniform", np.log(V)),
    ("unigram (frequencies)", -np.log(unigram[val_ids[1:]]).mean()),
    ("bigram (counts)", count_nll),
):
    print(f"{name:<22}{nll:>16.3f}{np.exp(nll):>12.2f}")

# %% [markdown]
# How much smoothing? Too little trusts rare pairs too much, too much washes the counts
# out. The validation perplexity decides:

# %%
alphas = np.logspace(-4, 2, 13)
val_perplexities = [np.exp(mean_nll(bigram_probabilities(a), val_ids)) for a in alphas]
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
ax.semilogx(alphas, val_perplexities, "o-")
ax.set_xlabel(r"smoothing $\alpha$")
ax.set_ylabel("validation perplexity")
ax.grid(alpha=0.3, which="both")
plt.show()

# %% [markdown]
# Generating text from the table: start from a newline and repeatedly draw the next
# character from $p(\cdot \mid \text{current})$. Every pair of neighbours looks plausible;
# anything longer does not — the model remembers one character.

# %%
current, sample = tokenizer.encode("\n")[0], []
for _ in range(200):
    current = rng.choice(V, p=count_probabilities[current])
    sample.append(current)
print(tokenizer.decode(sample))

# %% [markdown]
# ## 5. The same model as a neural network
#
# Now learn the table instead of counting it. Give each character $a$ a row of $V$ logits,
# $W_a \in \mathbb{R}^{V}$, and predict $p(\cdot \mid a) = \operatorname{softmax}(W_a)$.
# Looking up row $a$ is the same as multiplying a one-hot vector by $W$, which is exactly
# what an embedding layer does, so the tinylm layer is `nn.Embedding(V, V)`.
#
# The loss is the cross-entropy of the next character; by section 2, the gradient of row
# $a$ is the sum of $(p - y)/N$ over the positions where the current character is $a$.
# Minimising it drives $\operatorname{softmax}(W_a)$ towards the observed frequencies:
# gradient descent rediscovers the counting model.

# %%
model = nn.Embedding(V, V)
optimizer = optim.Adam(model.parameters(), lr=0.1)
steps = 60 if FAST else 1500
batch_size = 2048
eval_every = 20 if FAST else 100

train_losses, val_points = [], []
for step in progress_bar(range(steps), desc="training"):
    positions = rng.integers(0, len(train_ids) - 1, size=batch_size)
    loss = F.cross_entropy(model(train_ids[positions]), train_ids[positions + 1])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    train_losses.append(loss.item())
    if (step + 1) % eval_every == 0:
        with tl.no_grad():
            val_points.append((step, F.cross_entropy(model(val_ids[:-1]), val_ids[1:]).item()))

neural_nll = val_points[-1][1]
print(f"neural bigram: val loss {neural_nll:.3f}, perplexity {np.exp(neural_nll):.2f}")
print(f"count bigram : val loss {count_nll:.3f}, perplexity {np.exp(count_nll):.2f}")

# %% [markdown]
# ## See it
#
# The training loss (noisy: each step sees a different batch of 2,048 pairs), the
# validation loss, and the counting model's validation loss as the line the network
# approaches.

# %%
fig = viz.plot_loss({"train (mini-batch)": train_losses}, smooth=10, ylabel="cross-entropy (nats)")
ax = fig.axes[0]
ax.plot(*zip(*val_points), "o-", label="validation")
ax.axhline(count_nll, color="black", linestyle="--", label="counting model (validation)")
ax.legend()
fig

# %% [markdown]
# And the two tables themselves, for the 24 most frequent characters: $p(b \mid a)$ from
# counting on the left, $\operatorname{softmax}(W_a)$ learned by gradient descent on the
# right. (The space character is shown as ␣ and the newline as ⏎.)

# %%
frequent = np.argsort(-np.bincount(train_ids, minlength=V))[:24]
labels = [{" ": "␣", "\n": "⏎"}.get(ch, ch) for ch in tokenizer.decode(frequent)]
learned_probabilities = F.softmax(model.weight).numpy()
fig, axes = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
for ax, table, title in (
    (axes[0], count_probabilities, "counted  p(b | a)"),
    (axes[1], learned_probabilities, "learned  softmax(W_a)"),
):
    image = ax.imshow(table[np.ix_(frequent, frequent)], cmap="viridis", vmin=0, vmax=0.6)
    ax.set_xticks(range(len(frequent)), labels=labels)
    ax.set_yticks(range(len(frequent)), labels=labels)
    ax.set_xlabel("next character b")
    ax.set_ylabel("current character a")
    ax.set_title(title)
fig.colorbar(image, ax=axes, label="probability")
plt.show()

# %% [markdown]
# ## Exercises
#
# 1. Show that $\operatorname{softmax}(x + c) = \operatorname{softmax}(x)$ for any constant
#    $c$, and that the gradient of the loss sums to zero over the classes. Check the second
#    numerically on `scores.grad`.
# 2. Derive the gradient of cross-entropy with label smoothing, where the target is
#    $q = (1 - \varepsilon) y + \varepsilon / C$, and check it against
#    `F.cross_entropy(..., label_smoothing=0.1)`.
# 3. What perplexity does the counting model reach on the *training* text, for
#    $\alpha = 10^{-4}$? Why is it lower than on the validation text?
# 4. Train the neural bigram with `optim.SGD` instead of Adam. How large can the learning
#    rate be before the loss diverges? Add `weight_decay`: which counting $\alpha$ does it
#    resemble?
# 5. Extend the counting model to trigrams ($V^2$ rows). How does the validation perplexity
#    change, and how many of the $V^3$ entries were ever seen?
