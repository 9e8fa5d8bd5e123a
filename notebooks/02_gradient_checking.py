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
# # Chapter 2 — Gradient checking
#
# Every backward pass in tinylm is written by hand, and a hand-written derivative can be
# wrong in ways that never crash: a missing term, a sign, a transposed matrix. The network
# still trains, only worse, and nobody notices. The cure is cheap: compare `backward()` with
# the slope you get by **nudging the inputs**, as in [chapter 1](01_tensors_and_autograd.ipynb), done carefully.
#
# This chapter covers why the *central* difference is the right nudge, how to compare two
# gradients (the **relative error**), why the comparison must run in **float64**, where it
# legitimately fails (**kinks**), and how `tl.gradcheck` finds a planted bug and reports it.
#
# `TINYLM_FAST=1` samples fewer step sizes for the plot; everything here takes seconds.

# %%
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
import tinylm.functional as F

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)

# %% [markdown]
# ## 1. Forward and central differences
#
# Taylor's expansion says how far a nudge of size $h$ moves a smooth function:
#
# $$f(x \pm h) = f(x) \pm h f'(x) + \frac{h^2}{2} f''(x) \pm \frac{h^3}{6} f'''(x) + O(h^4).$$
#
# The **forward difference** keeps an error proportional to $h$:
#
# $$\frac{f(x+h) - f(x)}{h} = f'(x) + \frac{h}{2} f''(x) + O(h^2),$$
#
# while in the **central difference** the even terms cancel and the error is proportional
# to $h^2$:
#
# $$\frac{f(x+h) - f(x-h)}{2h} = f'(x) + \frac{h^2}{6} f'''(x) + O(h^4).$$
#
# With $h = 10^{-6}$ that is an error around $10^{-12}$ instead of $10^{-6}$.
#
# But computers round. Each value of $f$ carries a rounding error of about
# $\epsilon_{\text{mach}} |f|$, and dividing by $h$ magnifies it to
# $\epsilon_{\text{mach}} |f| / h$: the smaller $h$, the larger. The total error of the
# central difference is therefore about
#
# $$\underbrace{\tfrac{h^2}{6}|f'''|}_{\text{truncation}} + \underbrace{\epsilon_{\text{mach}} |f| / h}_{\text{rounding}},$$
#
# smallest near $h \approx \epsilon_{\text{mach}}^{1/3}$. For float64,
# $\epsilon_{\text{mach}} \approx 2.2 \times 10^{-16}$; for float32 it is
# $1.2 \times 10^{-7}$, a billion times larger. Let us measure it, with $f = \tanh$ at
# $x = 0.5$, where $f'(x) = 1 - \tanh^2 x$ is known exactly.

# %%
def central(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


def forward_difference(f, x, h):
    return (f(x + h) - f(x)) / h


x0 = 0.5
exact = 1 - np.tanh(x0) ** 2
step_sizes = np.logspace(-12, -1, 12 if FAST else 45)
errors = {}
for dtype in (np.float64, np.float32):
    for name, rule in (("forward", forward_difference), ("central", central)):
        estimates = [rule(np.tanh, dtype(x0), dtype(h)) for h in step_sizes]
        errors[f"{name}, {np.dtype(dtype).name}"] = np.abs(np.array(estimates, dtype=np.float64) - exact) + 1e-17

fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for label, error in errors.items():
    ax.loglog(step_sizes, error, "o-" if "central" in label else "s--", markersize=3, label=label)
ax.set_xlabel("step size h")
ax.set_ylabel("|estimate - exact derivative|")
ax.set_title("Truncation error falls with h, rounding error rises")
ax.legend()
ax.grid(alpha=0.3, which="both")
plt.show()

# %% [markdown]
# Read the plot from right to left. At large $h$ the lines fall with slope 1 (forward) and
# slope 2 (central): that is the truncation error. Further left they turn and *rise*
# again: that is rounding. In float64 the central difference reaches about $10^{-11}$
# near $h = 10^{-5}$ to $10^{-6}$. In float32 the best it does is about $10^{-5}$, near
# $h = 10^{-3}$; at $h = 10^{-6}$ (the step `tl.gradcheck` uses) it is off by a few
# percent, and below $h \approx 10^{-8}$ the nudge is smaller than the spacing of float32
# numbers near $x_0$, so $x_0 \pm h$ rounds to $x_0$ and the estimate is $0$.

# %%
for dtype in (np.float64, np.float32):
    estimate = central(np.tanh, dtype(x0), dtype(1e-6))
    print(f"{np.dtype(dtype).name}: central difference {estimate:.10f}, exact {exact:.10f}")

# %% [markdown]
# ## 2. Comparing two gradients: the relative error
#
# An absolute difference means little on its own: $10^{-4}$ is terrible for a gradient of
# size $10^{-5}$ and excellent for one of size $10^{3}$. The **relative error** scales it:
#
# $$\text{rel}(a, n) = \frac{|a - n|}{\max(|a|, |n|)}.$$
#
# Rules of thumb for float64 and a smooth function: below $10^{-7}$, the gradient is right;
# $10^{-4}$ and above, something is wrong (unless there is a kink — section 4); in between,
# look closer. `tl.gradcheck` accepts an element when
# $|a - n| \le \text{atol} + \text{rtol} \cdot |n|$, an absolute floor for gradients near
# zero plus a relative part for the others.

# %%
def relative_error(analytic, numeric):
    analytic, numeric = np.asarray(analytic), np.asarray(numeric)
    return np.abs(analytic - numeric) / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1e-300)


x = tl.tensor([0.5, -1.0, 2.0], dtype="float64", requires_grad=True)
(x.tanh() * x).sum().backward()
(numeric,) = tl.numerical_grad(lambda v: (v.tanh() * v).sum(), [x])
print("analytic:", x.grad.numpy())
print("numeric :", numeric)
print("relative error:", relative_error(x.grad.numpy(), numeric))

# %% [markdown]
# ## 3. `tl.gradcheck`
#
# `tl.gradcheck(fn, inputs)` does this for every input that requires a gradient, element
# by element. A function with a non-scalar output is checked through
# $s = \sum v \odot \text{fn}(x)$ with a random $v$, so every row of the Jacobian matters.
# `verbose=True` prints the largest error found next to the tolerance used.

# %%
def layer(x, W, b):
    return (x @ W + b).tanh()


x = tl.randn(4, 3, dtype="float64", requires_grad=True)
W = tl.randn(3, 5, dtype="float64", requires_grad=True)
b = tl.randn(5, dtype="float64", requires_grad=True)
tl.gradcheck(layer, [x, W, b], verbose=True)

# %% [markdown]
# ### Why float64: the same check in float32
#
# In float32 the numerical gradient itself is noise, as the plot above predicted, so the
# check fails although `backward()` is right. `tl.gradcheck` warns about it.

# %%
x32, W32, b32 = (t.detach().to(np.float32) for t in (x, W, b))
for t in (x32, W32, b32):
    t.requires_grad = True
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    passed = tl.gradcheck(layer, [x32, W32, b32], raise_exception=False, verbose=True)
print("float32 check passed:", passed)
print("warning:", caught[0].message)

# %% [markdown]
# ## 4. Kinks
#
# $\text{relu}(x) = \max(0, x)$ has no derivative at $0$. If an input lies within $h$ of the
# kink, the central difference straddles it and returns a value between the two one-sided
# slopes, $\frac{x + h}{2h} \in (0, 1)$, while `backward()` returns $0$ or $1$. The check
# fails although nothing is wrong. The picture, with a large $h$ so the effect is visible:

# %%
xs = np.linspace(-0.3, 0.3, 301)
relu = lambda v: np.maximum(v, 0)
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
ax.plot(xs, (xs > 0).astype(float), color="black", label="relu'(x) (what backward returns)")
for h in (0.1, 0.03):
    ax.plot(xs, central(relu, xs, h), "--", label=f"central difference, h = {h}")
ax.set_xlabel("x")
ax.legend()
plt.show()

# %% [markdown]
# Within $h$ of zero the numerical slope is a ramp, not a step. With $h = 10^{-6}$ the ramp
# is narrow, but an input that happens to land in it still fails:

# %%
x = tl.tensor([-2e-7, 3e-7, 1.0, -1.0], dtype="float64", requires_grad=True)
try:
    tl.gradcheck(lambda v: v.relu().sum(), [x])
except tl.GradcheckError as error:
    print(error)

# %% [markdown]
# The cure is to choose test inputs away from kinks (tinylm's own tests keep relu and max
# inputs at least $10^{-3}$ from their kinks and from ties). The same applies to `max`
# with two equal values, `abs` at $0$ and the clipping of gradient norms.

# %% [markdown]
# ## 5. Finding a planted bug
#
# Here is a softmax written as a tinylm `Function`, forward and backward side by side.
# Its Jacobian is $\partial y_i / \partial x_j = y_i([i = j] - y_j)$, so for an upstream
# gradient $\bar y$:
#
# $$\bar x_j = \sum_i \bar y_i\, y_i ([i = j] - y_j) = y_j \Big(\bar y_j - \sum_i \bar y_i y_i\Big).$$
#
# The backward below forgets the off-diagonal part of the Jacobian, the
# $-\sum_i \bar y_i y_i$ term: a typical slip when deriving by hand.

# %%
class BuggySoftmax(tl.Function):
    """y = softmax(x) over the last axis (backward deliberately wrong)."""

    def forward(self, x):
        xp = tl.backend.array_module(x)
        e = xp.exp(x - x.max(axis=-1, keepdims=True))
        self.y = e / e.sum(axis=-1, keepdims=True)
        return self.y

    def backward(self, grad):
        return self.y * grad  # BUG: should be self.y * (grad - (grad * self.y).sum(-1, keepdims=True))


logits = tl.randn(3, 4, dtype="float64", requires_grad=True)
try:
    tl.gradcheck(BuggySoftmax.apply, [logits])
except tl.GradcheckError as error:
    report = str(error)
    print(report)

# %% [markdown]
# How to read the report:
# * **which input**: input 0, shape (3, 4), float64 — the logits;
# * **how many elements** are wrong: all of them, so the mistake is systematic rather than
#   a kink or an unlucky input (a kink would hit one or two elements);
# * **the worst elements**, with the analytic (backward) and numeric values side by side,
#   and their absolute and relative errors: a relative error near 1 or above means a term
#   is missing or has the wrong sign, not a rounding issue.
#
# Now the fix, and the check again:

# %%
class Softmax(BuggySoftmax):
    """y = softmax(x) over the last axis;  x̄ = y ⊙ (ȳ - Σ ȳ ⊙ y)."""

    def backward(self, grad):
        return self.y * (grad - (grad * self.y).sum(axis=-1, keepdims=True))


print("fixed softmax passes:", tl.gradcheck(Softmax.apply, [logits], verbose=True))
np.testing.assert_allclose(Softmax.apply(logits).numpy(), F.softmax(logits).numpy(), atol=1e-12)
print("and agrees with F.softmax")

# %% [markdown]
# ## See it: where the buggy gradient goes wrong
#
# Analytic against numeric gradient for every element: a correct backward puts every point
# on the diagonal. The buggy one does not, for every element.

# %%
(numeric,) = tl.numerical_grad(lambda v: (Softmax.apply(v) ** 3).sum(), [logits])
fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
for name, function in (("buggy", BuggySoftmax), ("fixed", Softmax)):
    logits.zero_grad()
    (function.apply(logits) ** 3).sum().backward()
    ax.plot(numeric.ravel(), logits.grad.numpy().ravel(), "o" if name == "fixed" else "x", label=name)
limits = [numeric.min() * 1.2, numeric.max() * 1.2]
ax.plot(limits, limits, color="gray", linewidth=0.8)
ax.set_xlabel("numeric gradient")
ax.set_ylabel("analytic gradient (backward)")
ax.legend()
plt.show()

# %% [markdown]
# ## Exercises
#
# 1. From the error model $\frac{h^2}{6}|f'''| + \epsilon_{\text{mach}}|f|/h$, derive the
#    best step $h^*$ and the smallest error for float32 and float64. Compare with the plot.
# 2. Write a `Function` for $y = x^3$ whose backward returns $3x$ instead of $3x^2$. Does
#    `tl.gradcheck` catch it for every input? Which input would let it slip through?
# 3. Check `lambda v: v.max()` on `[1.0, 1.0, 0.0]` (float64). What does the numeric
#    gradient give for the two tied elements, and why is that not a bug of `max`?
# 4. `tl.gradcheck(fn, inputs, rtol=..., atol=...)`: how small can you make the tolerances
#    for `layer` above before the (correct) gradient fails? What limits you?
# 5. Plant a bug in `Softmax.backward` that a check with $v = \mathbf{1}$ (the gradient of
#    the plain sum) would miss but the random $v$ of `tl.gradcheck` catches. Hint: what is
#    $\sum_j y_j$?
