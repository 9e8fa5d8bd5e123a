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
# # Chapter 7 — Recurrent networks and backpropagation through time
#
# Text arrives one token at a time, and what a token means depends on what came before. A
# **recurrent neural network** (RNN) reads a sequence step by step and carries a
# **hidden state** $h_t$, a vector that summarises everything read so far. The same small
# cell, with the same weights, is applied at every step.
#
# This chapter builds the cell from tensor ops, derives its gradient by hand —
# **backpropagation through time** (BPTT) — and checks it against `backward()`, `nn.RNN`
# and PyTorch. Then it looks at the RNN's famous weakness: the gradient that reaches early
# steps is a product of one matrix per step, so it **vanishes** or **explodes**
# geometrically. We plot $\|\partial L / \partial h_t\|$ over $t$ and tame the explosion
# with **gradient clipping**.
#
# `TINYLM_FAST=1` trains the clipping demo for 150 steps instead of 500. The full run takes
# well under a minute on a laptop: without clipping the loss blows up to several times the
# chance level ($\log 8 \approx 2.1$) and stays there; with clipping it falls to about $0$.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
from tinylm.progress import progress_bar
import tinylm.functional as F
from tinylm import nn, optim, viz
from tinylm.nn.gradient_flow import hidden_gradient_norms

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The idea: one cell, applied at every step
#
# Given inputs $x_1, \dots, x_T \in \mathbb{R}^{I}$ and a start state $h_0$ (zeros), the
# Elman RNN computes, for $t = 1, \dots, T$,
#
# $$a_t = W_{ih}\, x_t + b_{ih} + W_{hh}\, h_{t-1} + b_{hh}, \qquad h_t = \tanh(a_t),$$
#
# with $W_{ih} \in \mathbb{R}^{H \times I}$, $W_{hh} \in \mathbb{R}^{H \times H}$ and
# biases in $\mathbb{R}^{H}$ (the shapes and names PyTorch uses). On a batch the vectors
# become rows, $a_t = x_t W_{ih}^\top + h_{t-1} W_{hh}^\top + b$, which is how the code
# below is written. The outputs are the states $h_1, \dots, h_T$ themselves; a language
# model puts a linear layer on top of each to score the next token.
#
# Unrolled in time, the RNN is just a very deep network whose layers all share one set of
# weights — and so its gradient is the chain rule through all those layers.

# %% [markdown]
# ## 2. From scratch, with tensor ops
#
# We write the loop ourselves, in float64 so that the checks below are exact. As a loss,
# take the squared distance of every state from a target, $L = \tfrac12 \sum_t \|h_t - y_t\|^2$.

# %%
B, T, I, H = 4, 6, 3, 5
x = tl.randn(B, T, I, dtype="float64")
targets = tl.randn(B, T, H, dtype="float64")
W_ih = tl.tensor(0.5 * rng.standard_normal((H, I)), requires_grad=True)  # NumPy's float64 is kept
W_hh = tl.tensor(0.5 * rng.standard_normal((H, H)), requires_grad=True)
b = tl.tensor(0.1 * rng.standard_normal(H), requires_grad=True)


def rnn_from_scratch(x, W_ih, W_hh, b):
    """All states h_1..h_T, shape (B, T, H), from h_0 = 0."""
    h = tl.zeros(x.shape[0], W_hh.shape[0], dtype=x.dtype)
    states = []
    for t in range(x.shape[1]):
        h = (x[:, t] @ W_ih.T + h @ W_hh.T + b).tanh()
        states.append(h)
    return tl.stack(states, axis=1)


def squared_error(states, targets):
    return 0.5 * ((states - targets) ** 2).sum()


states = rnn_from_scratch(x, W_ih, W_hh, b)
loss = squared_error(states, targets)
loss.backward()
print("states:", states.shape, " loss:", round(loss.item(), 4))

# %% [markdown]
# ## 3. Backpropagation through time, by hand
#
# $h_t$ influences the loss twice: directly, through its own term $\tfrac12\|h_t - y_t\|^2$,
# and through every later state, via $h_{t+1}$. So the **total** gradient
# $\delta_t = \partial L / \partial h_t$ obeys a recursion that runs *backwards* in time:
#
# $$\delta_T = h_T - y_T, \qquad
# \delta_t = (h_t - y_t) + \underbrace{\big(\delta_{t+1} \odot (1 - h_{t+1}^2)\big)}_{\partial L / \partial a_{t+1}}\, W_{hh},$$
#
# using $\tanh'(a) = 1 - \tanh^2(a)$. With $g_t = \partial L / \partial a_t = \delta_t \odot (1 - h_t^2)$,
# the weights, shared by all steps, collect one contribution per step:
#
# $$\frac{\partial L}{\partial W_{hh}} = \sum_{t=1}^{T} g_t^\top h_{t-1}, \qquad
# \frac{\partial L}{\partial W_{ih}} = \sum_{t=1}^{T} g_t^\top x_t, \qquad
# \frac{\partial L}{\partial b} = \sum_{t=1}^{T} \textstyle\sum_{\text{batch}} g_t.$$
#
# Here it is in plain NumPy, checked against what autograd found:

# %%
def bptt_by_hand(x, targets, W_ih, W_hh, b):
    """Forward and backward of the RNN in NumPy; returns dW_ih, dW_hh, db."""
    batch, steps, _ = x.shape
    h = np.zeros((steps + 1, batch, W_hh.shape[0]))  # h[0] = h_0, h[t] = h_t
    for t in range(steps):
        h[t + 1] = np.tanh(x[:, t] @ W_ih.T + h[t] @ W_hh.T + b)
    dW_ih, dW_hh, db = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros_like(b)
    carried = np.zeros_like(h[0])  # the part of delta_t that comes from step t + 1
    for t in reversed(range(steps)):
        delta = (h[t + 1] - targets[:, t]) + carried
        g = delta * (1 - h[t + 1] ** 2)
        dW_ih += g.T @ x[:, t]
        dW_hh += g.T @ h[t]
        db += g.sum(axis=0)
        carried = g @ W_hh
    return dW_ih, dW_hh, db


by_hand = bptt_by_hand(x.numpy(), targets.numpy(), W_ih.numpy(), W_hh.numpy(), b.numpy())
for name, manual, param in zip(("W_ih", "W_hh", "b"), by_hand, (W_ih, W_hh, b)):
    error = np.abs(manual - param.grad.numpy()).max()
    print(f"d{name}: largest difference between BPTT by hand and backward(): {error:.1e}")
    assert error < 1e-12

# %% [markdown]
# ## 4. The tinylm layer: `nn.RNN`
#
# `nn.RNN(input_size, hidden_size)` holds the same four parameters as PyTorch
# (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`; the two biases are simply
# added). It takes `(batch, time, features)` by default (`batch_first=True`; PyTorch's
# default is `False`) and returns the states of every step and the last one.
#
# It runs in two forms: `fused=False` is the loop above, one small graph node per op and
# step; `fused=True` (the default) runs the whole sequence as one hand-differentiated
# node — section 3's backward, written out in `tinylm/nn/recurrent_fused.py`. Both must
# give our numbers.

# %%
weights = {"weight_ih_l0": W_ih.numpy(), "weight_hh_l0": W_hh.numpy(), "bias_ih_l0": b.numpy(), "bias_hh_l0": np.zeros(H)}
for fused in (False, True):
    layer = nn.RNN(I, H, fused=fused, dtype="float64")
    layer.load_state_dict(weights)
    output, h_n = layer(x)
    squared_error(output, targets).backward()
    assert np.allclose(output.numpy(), states.numpy())
    assert np.allclose(h_n.numpy()[0], states.numpy()[:, -1])
    assert np.allclose(layer.weight_hh_l0.grad.numpy(), W_hh.grad.numpy())
    print(f"nn.RNN(fused={fused}): output {output.shape}, h_n {h_n.shape}; states and gradients match")

# %% [markdown]
# ## Check it
#
# The gradient check of [chapter 2](02_gradient_checking.ipynb) on the fused layer, every parameter and the input at
# once (errors around $10^{-9}$ or below are expected in float64):

# %%
small = nn.RNN(2, 3, dtype="float64")
x_small = tl.randn(2, 4, 2, dtype="float64", requires_grad=True)
tl.gradcheck(lambda inputs, *params: small(inputs)[0], [x_small, *small.parameters()], verbose=True)

# %%
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the comparison")

if torch is not None:
    torch_rnn = torch.nn.RNN(I, H, batch_first=True, dtype=torch.float64)
    torch_rnn.load_state_dict({name: torch.tensor(value) for name, value in weights.items()})
    torch_output, _ = torch_rnn(torch.tensor(x.numpy()))
    torch_loss = 0.5 * ((torch_output - torch.tensor(targets.numpy())) ** 2).sum()
    torch_loss.backward()
    print("PyTorch loss:", round(torch_loss.item(), 4), " ours:", round(loss.item(), 4))
    assert np.allclose(torch_output.detach().numpy(), states.numpy())
    assert np.allclose(torch_rnn.weight_hh_l0.grad.numpy(), W_hh.grad.numpy())

# %% [markdown]
# ## 5. Vanishing and exploding gradients
#
# Unroll the recursion of section 3 from a loss at the last step back to step $t$: the
# gradient is multiplied by one Jacobian per step,
#
# $$\frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial h_T}\,
# \prod_{k=t+1}^{T} \frac{\partial h_k}{\partial h_{k-1}}, \qquad
# \frac{\partial h_k}{\partial h_{k-1}} = \operatorname{diag}(1 - h_k^2)\, W_{hh},$$
#
# so, since $|\tanh'| \le 1$,
#
# $$\Big\|\frac{\partial L}{\partial h_t}\Big\| \le \Big\|\frac{\partial L}{\partial h_T}\Big\|\, \|W_{hh}\|^{\,T-t}.$$
#
# When the largest singular value of $W_{hh}$ is below $1$, the gradient shrinks
# **geometrically** with the distance $T - t$: what happened 30 steps ago gets no say in the
# update, and the RNN cannot learn long-range dependencies. When $W_{hh}$ is large, the
# product can instead grow geometrically and one update throws the weights far away.
#
# `hidden_gradient_norms` runs a layer step by step, keeps every $\partial L / \partial h_t$
# and returns their norms. We scale a random $W_{hh}$ to a **spectral radius** $\rho$
# (its largest eigenvalue magnitude) of $0.5$, $1$, $2$ and $4$, and put the loss on the
# last step only, $L = \|h_T\|^2$.

# %%
steps = 60
x_long = tl.randn(16, steps, 8)


def last_step_loss(output):
    return (output[:, -1] ** 2).sum()


norms = {}
for radius in (0.5, 1.0, 2.0, 4.0):
    tl.manual_seed(1)
    layer = nn.RNN(8, 32)
    W = layer.weight_hh_l0.data
    W *= radius / np.abs(np.linalg.eigvals(W)).max()
    norms[f"spectral radius {radius}"] = hidden_gradient_norms(layer, x_long, last_step_loss)[0]

# %% [markdown]
# ## See it
#
# On a log scale a geometric decay is a straight line. Read the plot from the right (the
# step with the loss) to the left (the start of the sequence): with $\rho = 0.5$ the
# gradient loses about 20 orders of magnitude over 60 steps; even $\rho = 1$ loses five,
# because $\tanh' < 1$ shrinks it further. With $\rho = 4$ it *grows* by about seven
# orders of magnitude; at $\rho = 2$ it roughly holds its size, the growth of $W_{hh}$ and
# the shrinking by $\tanh'$ (saturated units pass almost nothing) cancelling out.

# %%
fig = viz.plot_gradient_norms(norms)
fig.axes[0].set_title("RNN: gradient reaching step t from a loss at the last step")
fig

# %% [markdown]
# ## 6. Gradient clipping
#
# Exploding gradients have a cheap cure: if the gradient $g$ of all parameters together is
# longer than a threshold $\theta$, shrink it to length $\theta$ and keep its direction
# (Pascanu, Mikolov and Bengio, 2013):
#
# $$g \leftarrow g \cdot \min\Big(1, \frac{\theta}{\|g\|}\Big), \qquad
# \|g\| = \sqrt{\textstyle\sum_{p} \sum_i g_{p,i}^2}.$$
#
# `optim.clip_grad_norm_(model.parameters(), max_norm)` does this in place, between
# `backward()` and `step()`, and returns $\|g\|$ before clipping. (Vanishing gradients have
# no such fix: a tiny gradient has no direction worth amplifying. That needs a different
# cell — the LSTM of the next chapter.)
#
# A task that needs memory: read $T = 10$ random symbols out of 8 (one-hot), then name the
# **first** one. Guessing gives a loss of $\log 8 \approx 2.08$. We train the same RNN
# twice with plain SGD at a bold learning rate, once without and once with clipping.

# %%
SYMBOLS, SEQ_LEN = 8, 10


def first_symbol_batch(generator, batch_size):
    """One-hot sequences (B, T, 8) of random symbols, and the first symbol of each as target."""
    symbols = generator.integers(0, SYMBOLS, size=(batch_size, SEQ_LEN))
    return tl.tensor(np.eye(SYMBOLS, dtype=np.float32)[symbols]), symbols[:, 0]


class Recaller(nn.Module):
    """An RNN reads the sequence; a linear layer names the first symbol from the last state.

    W_hh starts at spectral radius 1, the edge between vanishing and exploding (section 5):
    with PyTorch's default initialisation (radius about 0.6) the first symbol's signal
    would fade by 0.6^10 on its way to the last step.
    """

    def __init__(self, hidden_size):
        self.rnn = nn.RNN(SYMBOLS, hidden_size)
        self.head = nn.Linear(hidden_size, SYMBOLS)
        W = self.rnn.weight_hh_l0.data
        W /= np.abs(np.linalg.eigvals(W)).max()

    def forward(self, x):
        output, _ = self.rnn(x)
        return self.head(output[:, -1])


# %% [markdown]
# `Recaller` is a model of our own: an `nn.Module` whose layers are attributes. The module
# finds their parameters itself and names them as PyTorch would (so a state dict moves
# between the two), and every layer starts from PyTorch's initialisation (`nn.init`:
# $U(-1/\sqrt{H}, 1/\sqrt{H})$ for the recurrent weights). Layers applied one after
# another need no class at all (`nn.Sequential`), and a list of layers goes in an
# `nn.ModuleList`, so that their parameters are found too:

# %%
print([name for name, _ in Recaller(4).named_parameters()])
print("bound of the initial W_ih:", np.abs(Recaller(64).rnn.weight_ih_l0.numpy()).max(), "<= 1/√64 =", 1 / np.sqrt(64))
readout = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, SYMBOLS))
stack = nn.ModuleList([nn.Linear(64, 64) for _ in range(3)])
print([name for name, _ in readout.named_parameters()], [name for name, _ in stack.named_parameters()][:2], "...")


# %%
def train(max_norm, num_steps):
    tl.manual_seed(0)  # both runs start from the same weights and see the same batches
    generator = np.random.default_rng(0)
    model = Recaller(64)
    optimizer = optim.SGD(model.parameters(), lr=0.5)
    losses, grad_norms = [], []
    for _ in progress_bar(range(num_steps), desc=f"max_norm={max_norm}"):
        x_batch, y_batch = first_symbol_batch(generator, 64)
        loss = F.cross_entropy(model(x_batch), y_batch)
        optimizer.zero_grad()
        loss.backward()
        grad_norms.append(optim.clip_grad_norm_(model.parameters(), max_norm))  # an infinite norm never clips
        optimizer.step()
        losses.append(loss.item())
    return losses, grad_norms


num_steps = 150 if FAST else 500
runs = {"no clipping": train(float("inf"), num_steps), "clipped to norm 1": train(1.0, num_steps)}
for name, (losses, _) in runs.items():
    print(f"{name:>18}: mean loss over the last 20 steps {np.mean(losses[-20:]):.3f}")

# %% [markdown]
# Left, the loss; right, the gradient norm before clipping (the dashed line is the
# threshold). Without clipping, a few large gradients throw the weights into a region where
# the network is confidently wrong, and it never recovers; with clipping the same model and
# learning rate solve the task.

# %%
fig, (loss_ax, norm_ax) = plt.subplots(1, 2, figsize=(11, 3.5), layout="constrained")
viz.plot_loss({name: losses for name, (losses, _) in runs.items()}, ax=loss_ax, smooth=10, ylabel="cross-entropy (nats)")
loss_ax.axhline(np.log(SYMBOLS), color="black", linestyle=":", label="chance")
loss_ax.legend()
for name, (_, grad_norms) in runs.items():
    norm_ax.semilogy(grad_norms, label=name)
norm_ax.axhline(1.0, color="black", linestyle="--")
norm_ax.set_xlabel("step")
norm_ax.set_ylabel(r"$\|g\|$ before clipping")
norm_ax.legend()
plt.show()

# %% [markdown]
# ## Exercises
#
# 1. Extend `bptt_by_hand` to return $\partial L / \partial x_t$ as well, and check it
#    against `x.grad` (create `x` with `requires_grad=True`).
# 2. Change the loss of section 2 to use only the last state. Which terms of the recursion
#    for $\delta_t$ disappear?
# 3. Repeat the gradient-flow plot with `nonlinearity="relu"`. Why does the $\rho = 1$
#    curve change so much? (Hint: what is $\max \tanh'$, and what is $\max \operatorname{relu}'$?)
# 4. Replace the random $W_{hh}$ by a scaled orthogonal matrix (`np.linalg.qr` of a random
#    one). Does the gradient still vanish at $\rho = 1$? Why not exactly constant?
# 5. Lengthen the memory task to `SEQ_LEN = 30`. Does the clipped RNN still learn it? Plot
#    `hidden_gradient_norms` of the trained model to explain what you see.
# 6. Clip each gradient *element* to $[-1, 1]$ instead of the norm. What happens to the
#    direction of the update?
