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
# # Chapter 8 — Long short-term memory (LSTM)
#
# [Chapter 7](07_rnn_and_bptt.ipynb) ended with a problem: in an RNN the gradient reaching a step $k$ steps back is
# multiplied by $k$ matrices $\operatorname{diag}(1 - h^2)\,W_{hh}$ and fades away
# geometrically. The **LSTM** (Hochreiter and Schmidhuber, 1997; the forget gate from Gers
# et al., 2000) fixes this with a second state, the **cell** $c_t$, which is updated by
# *adding* to it rather than by multiplying it with a matrix. Small sigmoid **gates**
# decide what to forget, what to write and what to show.
#
# This chapter writes the cell from tensor ops, derives its backward pass by hand, holds
# the hand-derived (**fused**) layer equal to the autograd (**composed**) one, and plots
# how far the gradient reaches back in an LSTM compared with an RNN.
#
# `TINYLM_FAST=1` uses shorter sequences for the timing comparison. The whole chapter
# takes a few seconds either way.

# %%
import os
import time

import numpy as np

import tinylm as tl
from tinylm import nn, viz
from tinylm.nn.gradient_flow import hidden_gradient_norms

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)

# %% [markdown]
# ## 1. The gates
#
# At step $t$, from the input $x_t$ and the previous state $(h_{t-1}, c_{t-1})$, four
# blocks of $H$ pre-activations are computed with one matrix product each (stacked in the
# order $i, f, g, o$, as in PyTorch):
#
# $$[a_i, a_f, a_g, a_o] = W_{ih}\, x_t + b_{ih} + W_{hh}\, h_{t-1} + b_{hh}, \qquad W_{ih} \in \mathbb{R}^{4H \times I},\ W_{hh} \in \mathbb{R}^{4H \times H},$$
#
# $$i = \sigma(a_i), \quad f = \sigma(a_f), \quad g = \tanh(a_g), \quad o = \sigma(a_o),$$
#
# $$c_t = f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t).$$
#
# * the **input gate** $i \in (0, 1)^H$ says how much of the candidate $g$ to write;
# * the **forget gate** $f$ how much of the old cell to keep;
# * the **output gate** $o$ how much of the cell to show as $h_t$, the state the rest of
#   the network (and the next step's gates) sees.
#
# ## 2. The cell state as a gradient highway
#
# Follow the gradient along the cell alone. Holding the gates fixed,
#
# $$\frac{\partial c_t}{\partial c_{t-1}} = \operatorname{diag}(f_t)
# \quad\Longrightarrow\quad
# \frac{\partial c_T}{\partial c_t} = \operatorname{diag}\Big(\prod_{k=t+1}^{T} f_k\Big).$$
#
# No weight matrix, no $\tanh'$: the gradient is scaled element by element by the forget
# gates, which the network *learns*. Where it needs to remember, it can hold $f \approx 1$
# and the gradient passes through hundreds of steps untouched. (The gates themselves depend
# on $h_{t-1}$, which adds further, RNN-like paths; the additive path is the one that
# survives.)

# %% [markdown]
# ## 3. From scratch, with tensor ops

# %%
def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """One LSTM step: x (B, I), h and c (B, H) -> the next (h, c)."""
    H = h.shape[1]
    a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (B, 4H)
    i, f = a[:, :H].sigmoid(), a[:, H : 2 * H].sigmoid()
    g, o = a[:, 2 * H : 3 * H].tanh(), a[:, 3 * H :].sigmoid()
    c = f * c + i * g
    return o * c.tanh(), c


def lstm_from_scratch(x, *weights):
    """All states h_1..h_T, shape (B, T, H), from h_0 = c_0 = 0."""
    H = weights[1].shape[1]
    h = c = tl.zeros(x.shape[0], H, dtype=x.dtype)
    outputs = []
    for t in range(x.shape[1]):
        h, c = lstm_step(x[:, t], h, c, *weights)
        outputs.append(h)
    return tl.stack(outputs, axis=1)


B, T, I, H = 3, 5, 4, 6
layer = nn.LSTM(I, H, dtype="float64")
x = tl.randn(B, T, I, dtype="float64", requires_grad=True)
ours = lstm_from_scratch(x, *layer.parameters())
theirs, (h_n, c_n) = layer(x)
print("from scratch:", ours.shape, " nn.LSTM:", theirs.shape, " h_n:", h_n.shape, " c_n:", c_n.shape)
assert np.allclose(ours.numpy(), theirs.numpy())

# %% [markdown]
# ## 4. The backward pass by hand: fused vs composed
#
# Autograd differentiates `lstm_step` through about twenty graph nodes per step. The fused
# layer (`nn.LSTM(..., fused=True)`, the default) runs the whole sequence as **one** node
# whose backward is worked out by hand. Going backwards from $t = T$, with $\delta h_t$ and
# $\delta c_t$ the gradients arriving at $h_t$ and $c_t$ (from the output at step $t$ plus
# what step $t+1$ sends back):
#
# $$\delta o = \delta h_t \odot \tanh(c_t), \qquad \delta c_t \mathrel{+}= \delta h_t \odot o \odot (1 - \tanh^2 c_t),$$
#
# $$\delta i = \delta c_t \odot g, \qquad \delta f = \delta c_t \odot c_{t-1}, \qquad \delta g = \delta c_t \odot i, \qquad \delta c_{t-1} = \delta c_t \odot f,$$
#
# then through the activations, with $\sigma' = \sigma(1 - \sigma)$ and $\tanh' = 1 - \tanh^2$,
#
# $$\delta a_i = \delta i \odot i(1 - i), \quad \delta a_f = \delta f \odot f(1 - f), \quad
# \delta a_g = \delta g \odot (1 - g^2), \quad \delta a_o = \delta o \odot o(1 - o),$$
#
# and finally $\delta h_{t-1} = \delta a_t\, W_{hh}$ with $\delta a_t = [\delta a_i, \delta a_f, \delta a_g, \delta a_o]$.
# The weight gradients are sums over the steps, $\partial L/\partial W_{hh} = \sum_t \delta a_t^\top h_{t-1}$
# and $\partial L/\partial W_{ih} = \sum_t \delta a_t^\top x_t$, each computed as **one** matrix
# product after the loop. Note $\delta c_{t-1} = \delta c_t \odot f$: the highway of section 2,
# line for line. (`tinylm/nn/recurrent_fused.py` has this code beside the forward.)
#
# Same weights, both forms: the outputs and every gradient must agree.

# %%
composed = nn.LSTM(I, H, fused=False, dtype="float64")
composed.load_state_dict(layer.state_dict())
results = {}
for name, model in (("fused", layer), ("composed", composed)):
    x.zero_grad()
    model.zero_grad()
    output, _ = model(x)
    loss = (output * output).sum()
    nodes, _ = viz.graph_of(loss)
    loss.backward()
    print(f"{name:>8}: loss {loss.item():.6f}, {len(nodes)} nodes in the graph")
    results[name] = [x.grad.numpy()] + [p.grad.numpy() for p in model.parameters()]

for (param_name, _), fused_grad, composed_grad in zip([("x", None)] + list(layer.named_parameters()), *results.values()):
    print(f"d{param_name:<14} largest difference {np.abs(fused_grad - composed_grad).max():.1e}")
    assert np.allclose(fused_grad, composed_grad)

# %% [markdown]
# Why bother writing it by hand? Fewer nodes means less Python bookkeeping per step, and
# the input projections of all steps become one big matrix product. A rough timing of one
# forward and backward pass, the best of three (numbers vary by machine; `benchmarks/`
# measures this properly):

# %%
timing_steps = 20 if FAST else 100
x_timing = tl.randn(32, timing_steps, 64)


def forward_backward_ms(model):
    start = time.perf_counter()
    output, _ = model(x_timing)
    output.sum().backward()
    return 1000 * (time.perf_counter() - start)


for fused in (True, False):
    timed = nn.LSTM(64, 128, fused=fused)
    best = min(forward_backward_ms(timed) for _ in range(3))
    print(f"fused={fused!s:<5}: {best:6.1f} ms for B=32, T={timing_steps}, H=128")

# %% [markdown]
# ## Check it
#
# Both forms pass the gradient check in float64, and the layer matches PyTorch's
# `torch.nn.LSTM` loaded with the same state dict (same names, same gate order).

# %%
small = nn.LSTM(2, 3, dtype="float64")
small_composed = nn.LSTM(2, 3, fused=False, dtype="float64")
small_composed.load_state_dict(small.state_dict())
x_small = tl.randn(2, 4, 2, dtype="float64", requires_grad=True)
for model in (small, small_composed):
    tl.gradcheck(lambda inputs, *params: model(inputs)[0], [x_small, *model.parameters()], verbose=True)

# %%
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the comparison")

if torch is not None:
    torch_lstm = torch.nn.LSTM(I, H, batch_first=True, dtype=torch.float64)
    torch_lstm.load_state_dict({name: torch.tensor(value) for name, value in layer.state_dict().items()})
    torch_output, (torch_h, torch_c) = torch_lstm(torch.tensor(x.numpy()))
    (torch_output * torch_output).sum().backward()
    assert np.allclose(torch_output.detach().numpy(), theirs.numpy())
    assert np.allclose(torch_c.detach().numpy(), c_n.numpy())
    assert np.allclose(torch_lstm.weight_hh_l0.grad.numpy(), results["fused"][2])
    print("PyTorch agrees: outputs, c_n and the gradient of weight_hh_l0")

# %% [markdown]
# ## 5. See it: how far back does the gradient reach?
#
# As in [chapter 7](07_rnn_and_bptt.ipynb): 60 steps, the loss $L = \|h_T\|^2$ on the last step only, and
# $\|\partial L / \partial h_t\|$ for every $t$. The highway is only as open as the forget
# gates: with PyTorch's initialisation the pre-activations are near $0$, so
# $f \approx \sigma(0) = 0.5$ and the cell halves its memory at every step. That is why
# the forget-gate bias is often started at $1$ or more (Gers et al., 2000; Jozefowicz
# et al., 2015); we try $0$, $1$ and $3$ ($f \approx 0.95$), next to an RNN of the same
# size.

# %%
steps = 60
x_long = tl.randn(16, steps, 8)


def last_step_loss(output):
    return (output[:, -1] ** 2).sum()


norms = {}
tl.manual_seed(1)
norms["RNN"] = hidden_gradient_norms(nn.RNN(8, 32), x_long, last_step_loss)[0]
for forget_bias in (0.0, 1.0, 3.0):
    tl.manual_seed(1)
    lstm = nn.LSTM(8, 32)
    lstm.bias_hh_l0.data[32:64] += forget_bias  # the f block of the stacked i, f, g, o biases
    norms[f"LSTM, forget bias +{forget_bias:g}"] = hidden_gradient_norms(lstm, x_long, last_step_loss)[0]

fig = viz.plot_gradient_norms(norms)
fig.axes[0].set_title("gradient reaching step t from a loss at the last step")
fig

# %% [markdown]
# Read from the right. The RNN loses more than ten orders of magnitude over 60 steps. The
# LSTM with $f \approx 0.5$ is no better: its cell halves what it carries at every step.
# Each unit of forget bias bends the line up, and at $f \approx 0.95$ the gradient from 60
# steps back is still of order one — the highway is open. Training finds such gates on
# its own where a task needs memory: [chapter 9](09_gru.ipynb) trains the three cells on a memory task.

# %% [markdown]
# ## Exercises
#
# 1. Derive $\partial h_t / \partial h_{t-1}$ for the LSTM including the paths through the
#    gates. Which term is missing from the highway argument of section 2?
# 2. Set the forget-gate bias to $-3$ ($f \approx 0.05$). Predict the gradient-flow curve
#    before you plot it.
# 3. Extend `lstm_step` with a **peephole**: $f = \sigma(a_f + w_f \odot c_{t-1})$. Check
#    its gradient with `tl.gradcheck`.
# 4. Break the fused layer on purpose: in a copy of `LSTMSequence.backward`, drop the
#    factor `f` in `d_c *= f`. Which test of section 4 fails first, and by how much?
# 5. Time the two forms for $T = 10, 100, 1000$. How does the ratio change, and why?
