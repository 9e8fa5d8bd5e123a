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
# # Chapter 1 — Tensors and automatic differentiation
#
# Training a network means nudging millions of numbers so that one number, the loss, goes
# down. To know which way to nudge each one we need its **derivative**: how much the loss
# moves when that number moves a little. This chapter builds that idea from a single number
# you can nudge by hand, up to tinylm's `backward()`, which computes every derivative of a
# computation in one sweep.
#
# You will:
# 1. estimate a slope by nudging an input;
# 2. see how a computation is recorded as a **graph**, and draw it;
# 3. apply the chain rule by hand, node by node, and compare with `backward()`;
# 4. see why `backward()` refuses to run on values written over since the forward pass;
# 5. see what happens to gradients when NumPy **broadcasting** copies a value.
#
# `TINYLM_FAST=1` (set by the test suite) only shortens the list of step sizes below: nothing
# in this chapter takes more than a second.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
from tinylm import optim, viz

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)

# %% [markdown]
# ## 1. A number you can nudge
#
# Take $f(x) = 3x^2 - 4x + 5$. Its derivative at $x$ is the slope of the curve there:
#
# $$f'(x) = \lim_{h \to 0} \frac{f(x + h) - f(x)}{h}.$$
#
# Before any calculus, we can just *try*: move $x$ by a small $h$ and see how far $f$ moves.

# %%
def f(x):
    return 3 * x**2 - 4 * x + 5


x0 = 3.0
steps = [1.0, 0.1, 0.001] if FAST else [1.0, 0.1, 0.01, 0.001, 1e-4, 1e-6]
for h in steps:
    print(f"h = {h:<7g} (f(x0 + h) - f(x0)) / h = {(f(x0 + h) - f(x0)) / h:.6f}")
print("calculus says f'(x) = 6x - 4 =", 6 * x0 - 4)

# %% [markdown]
# As $h$ shrinks the estimate settles on $14$: if we nudge $x$ up by a tiny amount, $f$ goes
# up by about 14 times that amount. A picture of the same thing: each nudge gives a secant
# line through $(x_0, f(x_0))$, and they tilt towards the tangent.

# %%
xs = np.linspace(0.5, 4.5, 200)
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.plot(xs, f(xs), color="black", label="$f(x)$")
for h in [1.5, 0.5, 0.1]:
    slope = (f(x0 + h) - f(x0)) / h
    ax.plot(xs, f(x0) + slope * (xs - x0), "--", label=f"secant, h = {h}: slope {slope:.1f}")
ax.plot(xs, f(x0) + (6 * x0 - 4) * (xs - x0), color="red", label="tangent: slope 14")
ax.plot([x0], [f(x0)], "ko")
ax.set_ylim(0, 45)
ax.set_xlabel("x")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 2. Several inputs, one output: the graph
#
# Real computations have many inputs. Here is a small one:
#
# $$e = a \cdot b, \qquad d = e + c, \qquad L = d \cdot g.$$
#
# Nudging works for each input separately; this gives $\partial L / \partial a$, the
# **partial derivative**: how $L$ moves when only $a$ moves.

# %%
def forward(a, b, c, g):
    e = a * b
    d = e + c
    return d * g


values = {"a": 2.0, "b": -3.0, "c": 10.0, "g": -2.0}
h = 1e-6
for name in values:
    nudged = dict(values, **{name: values[name] + h})
    print(f"dL/d{name} ≈ {(forward(**nudged) - forward(**values)) / h: .4f}")

# %% [markdown]
# In tinylm the same code runs on **tensors**. A tensor created with `requires_grad=True`
# is a *leaf* whose gradient we want; every operation on it returns a new tensor that
# remembers the operation that made it and that operation's inputs. The computation is
# recorded as a graph, which `tinylm.viz` can print as Graphviz DOT text or draw.

# %%
a = tl.tensor(2.0, dtype="float64", requires_grad=True)
b = tl.tensor(-3.0, dtype="float64", requires_grad=True)
c = tl.tensor(10.0, dtype="float64", requires_grad=True)
g = tl.tensor(-2.0, dtype="float64", requires_grad=True)
for name, leaf in zip("abcg", (a, b, c, g)):
    leaf.name = name
e = a * b
d = e + c
L = d * g
e.name, d.name, L.name = "e", "d", "L"
print(viz.to_dot(L))

# %%
viz.draw_graph(L)

# %% [markdown]
# ## 3. The chain rule, by hand
#
# Walk the graph **backwards**, from $L$ to the leaves. At each node, the gradient that
# arrives from above is multiplied by the node's *local* derivative:
#
# $$\frac{\partial L}{\partial L} = 1, \quad
# \frac{\partial L}{\partial d} = g, \quad
# \frac{\partial L}{\partial g} = d, \quad
# \frac{\partial L}{\partial e} = \frac{\partial L}{\partial d}\cdot\frac{\partial d}{\partial e} = g \cdot 1, \quad
# \frac{\partial L}{\partial c} = g \cdot 1,$$
#
# $$\frac{\partial L}{\partial a} = \frac{\partial L}{\partial e}\cdot\frac{\partial e}{\partial a} = g\, b, \qquad
# \frac{\partial L}{\partial b} = g\, a.$$
#
# A sum passes its gradient through unchanged; a product sends each input the gradient
# times the *other* input. That is the whole of backpropagation: local derivatives,
# multiplied along the paths from the loss to each leaf.

# %%
dL_dd = g.item()
by_hand = {
    "a": dL_dd * 1 * b.item(),
    "b": dL_dd * 1 * a.item(),
    "c": dL_dd * 1,
    "g": d.item(),
}
print(by_hand)

# %% [markdown]
# `backward()` does exactly this walk, for every node, in one pass. It keeps the gradients
# of the leaves only, unless an intermediate tensor asks with `retain_grad()`; keeping the
# graph (`retain_graph=True`) lets us draw it again, now with every gradient in it.

# %%
for intermediate in (e, d, L):
    intermediate.retain_grad()
L.backward(retain_graph=True)
for name, leaf in zip("abcg", (a, b, c, g)):
    print(f"dL/d{name}: backward() {leaf.grad.item(): .4f}   by hand {by_hand[name]: .4f}")
    assert abs(leaf.grad.item() - by_hand[name]) < 1e-12
print("dL/dd:", d.grad.item(), "  dL/de:", e.grad.item(), "  (both g, as derived)")

# %%
viz.draw_graph(L)

# %% [markdown]
# ## 4. A neuron, in vectors
#
# The same machinery works on arrays. A neuron with weights $w \in \mathbb{R}^3$, bias $b$
# and input $x$ computes $y = \tanh(w \cdot x + b)$. With $\tanh'(u) = 1 - \tanh^2(u)$ the
# chain rule gives
#
# $$\frac{\partial y}{\partial w} = (1 - y^2)\, x, \qquad \frac{\partial y}{\partial b} = 1 - y^2.$$

# %%
x = tl.tensor([0.5, -1.0, 2.0], dtype="float64")
w = tl.tensor([0.3, 0.1, -0.2], dtype="float64", requires_grad=True)
bias = tl.tensor(0.1, dtype="float64", requires_grad=True)
x.name, w.name, bias.name = "x", "w", "bias"
y = ((w * x).sum() + bias).tanh()
y.backward(retain_graph=True)

local = 1 - y.item() ** 2
print("dy/dw backward():", w.grad.numpy(), "  by hand:", local * x.numpy())
print("dy/db backward():", bias.grad.item(), "  by hand:", local)
viz.draw_graph(y)

# %% [markdown]
# ## 5. A tensor used twice: gradients add up
#
# In $z = x \cdot x$ the tensor $x$ feeds the product through two paths, and each path
# contributes its own share: $\partial z / \partial x = x + x = 2x$. This is why autograd
# **accumulates** gradients, and why an optimizer must reset them (`zero_grad()`) before
# the next backward pass.

# %%
x = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
(x * x).sum().backward()
print("after one backward :", x.grad)
(x * x).sum().backward()
print("after a second one :", x.grad, "(added to the first!)")
x.zero_grad()

# %% [markdown]
# ## 6. Written over since the forward pass: versions
#
# To save memory, an operation keeps its inputs *by reference*, not as copies: the
# backward of $w \cdot x$ reads the arrays of $w$ and $x$ as they are when `backward()`
# runs. An optimizer step writes new values into the parameters' arrays in place. A
# gradient computed after that would belong to values the forward pass never used, and
# nothing in the numbers would show it. So every tensor carries a **version**, a count
# that each in-place write through tinylm raises (`optimizer.step()`,
# `load_state_dict()`); an operation records its inputs' versions in the forward pass, and
# `backward()` refuses to run if one has changed since.
#
# The classic slip: the next loss computed before the update, its backward after it.

# %%
w = tl.tensor([1.0, -2.0, 0.5], requires_grad=True)
w.name = "w"
x = tl.tensor([3.0, 1.0, 2.0])
optimizer = optim.SGD([w], lr=0.1)

loss = ((w * x) ** 2).sum()
loss.backward()
next_loss = ((w * x) ** 2).sum()  # the forward pass sees w at version 0
print("version of w before the step:", w.version)
optimizer.step()
print("version of w after the step :", w.version)
try:
    next_loss.backward()
except RuntimeError as error:
    print(error)

# %% [markdown]
# The message names the operation, the input and both versions, and the fix: backward
# before the step, or the loss again after it.
#
# Writing into `.data` directly (`w.data[0] = 10.0`) is *not* counted: it is the way out of
# autograd for code that knows what it does (`tl.gradcheck` nudges its inputs this way
# and puts them back exactly). Below, the backward of $\sum_i w_i^2$ reads the new
# $w_0 = 10$ and returns $2 \cdot 10 = 20$ where the forward pass used $w_0 = 1$ (true
# gradient 2). After such a write, `bump_version()` records it, and backward refuses again.

# %%
w = tl.tensor([1.0, -2.0, 0.5], requires_grad=True)
squares = (w * w).sum()
w.data[0] = 10.0
print("version after writing into .data:", w.version)
squares.backward(retain_graph=True)
print("gradient:", w.grad.numpy(), "(the forward pass saw w = [1, -2, 0.5]: the true gradient is [2, -4, 1])")
w.bump_version()
try:
    squares.backward()
except RuntimeError as error:
    print("after bump_version():", str(error).split(", e.g.")[0])  # the versions, without the advice again

# %% [markdown]
# ## 7. Broadcasting gradients
#
# NumPy broadcasting lets a bias vector $b \in \mathbb{R}^{4}$ be added to every row of a
# batch $X \in \mathbb{R}^{3 \times 4}$: $Y_{ij} = X_{ij} + b_j$. Each $b_j$ was **copied**
# into 3 rows, so it influences 3 outputs and its gradient is the sum of theirs:
#
# $$\frac{\partial L}{\partial b_j} = \sum_{i} \frac{\partial L}{\partial Y_{ij}}.$$
#
# In general: the gradient of a broadcast input is the upstream gradient summed over
# every axis that broadcasting stretched (tinylm does it in `ops.unbroadcast`).

# %%
X = tl.randn(3, 4, requires_grad=True)
b = tl.zeros(4, requires_grad=True)
upstream = np.arange(12, dtype=np.float32).reshape(3, 4)
(X + b).backward(upstream)
print("upstream gradient:\n", upstream)
print("b.grad           :", b.grad.numpy())
print("column sums      :", upstream.sum(axis=0))
assert np.allclose(b.grad.numpy(), upstream.sum(axis=0))
assert np.allclose(X.grad.numpy(), upstream)

# %% [markdown]
# A size-1 axis stretches too: a column $s \in \mathbb{R}^{3 \times 1}$ scaling each row,
# $Y_{ij} = s_i X_{ij}$, gets $\partial L/\partial s_i = \sum_j X_{ij}\, \partial L / \partial Y_{ij}$,
# summed over the stretched axis but kept as shape $(3, 1)$.

# %%
s = tl.ones((3, 1), requires_grad=True)
(s * X).backward(upstream)
print("s.grad shape:", s.grad.shape)
print(s.grad.numpy().ravel(), "=", (X.numpy() * upstream).sum(axis=1))

# %% [markdown]
# ## Check it
#
# Nudging is the honest check of any derivative, and [chapter 2](02_gradient_checking.ipynb) makes it rigorous. Here we
# also compare with PyTorch when it is installed: the same computation must give the same
# gradients.

# %%
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the comparison")

if torch is not None:
    Xt = torch.tensor(X.numpy(), requires_grad=True)
    st = torch.ones((3, 1), requires_grad=True)
    (st * Xt).backward(torch.tensor(upstream))
    print("PyTorch s.grad:", st.grad.numpy().ravel())
    assert np.allclose(st.grad.numpy(), s.grad.numpy(), atol=1e-5)

# %% [markdown]
# ## See it
#
# A two-layer computation, drawn after `backward()`. The yellow boxes are operations, the
# blue ones parameters (leaves that require gradients), dashed ones inputs and constants
# that need no gradient. The
# gradient norms tell you how strongly the loss reacts to each parameter — the quantity
# chapters [7](07_rnn_and_bptt.ipynb) and [8](08_lstm.ipynb) will follow through time.

# %%
tl.manual_seed(0)
inputs = tl.randn(4, 3)
W1 = tl.randn(3, 5, requires_grad=True)
W2 = tl.randn(5, 1, requires_grad=True)
inputs.name, W1.name, W2.name = "inputs", "W1", "W2"
hidden = (inputs @ W1).tanh()
hidden.retain_grad()
loss = ((hidden @ W2) ** 2).mean()
loss.backward(retain_graph=True)
viz.draw_graph(loss)

# %% [markdown]
# ## Exercises
#
# 1. Estimate $f'(x_0)$ with the *central* difference $\frac{f(x_0+h) - f(x_0-h)}{2h}$ for
#    the same list of $h$. Which converges faster, and why? ([Chapter 2](02_gradient_checking.ipynb) answers.)
# 2. Derive $\partial L/\partial a$ for $L = (a b + c)^2$ by hand, then check it with
#    `backward()`. Draw the graph: how many nodes does `viz.to_dot` list?
# 3. Replace `tanh` by `sigmoid` in the neuron of section 4. Derive the gradient
#    ($\sigma' = \sigma(1-\sigma)$) and check it against `w.grad`.
# 4. Broadcast a tensor of shape $(1, 4)$ against one of shape $(3, 1)$ and call
#    `backward` with an upstream gradient of ones. Predict both gradients before you run it.
# 5. Call `loss.backward()` twice *without* `retain_graph=True`. Read the error message:
#    what does it suggest, and why does tinylm free the graph by default?
