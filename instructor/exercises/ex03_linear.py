# %% [markdown]
# # Exercise 3: matrix multiplication with broadcasting
#
# $$y = xW + b, \qquad x \in \mathbb{R}^{B \times N \times K},\; W \in \mathbb{R}^{K \times M},\; b \in \mathbb{R}^{M}$$
#
# $W$ and $b$ are *broadcast*: the same $W$ is used for every one of the $B$ batch entries,
# the same $b$ for every row. A parameter used several times collects the gradient of every
# use, so the gradients of $W$ and $b$ are sums over the broadcast axes:
#
# $$\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} W^\top, \qquad
#   \frac{\partial L}{\partial W} = \sum_{\text{batch}} x^\top \frac{\partial L}{\partial y}, \qquad
#   \frac{\partial L}{\partial b} = \sum_{\text{all but the last axis}} \frac{\partial L}{\partial y}$$
#
# Each gradient has the shape of its input. Return `dx, dW, db`.

# %%
import numpy as np

from tinylm.exercises import check, show

show("linear")


# %%
def linear_backward(grad_out, cache):
    x, W = cache
    # BEGIN SOLUTION
    dx = grad_out @ W.T
    dW = x.reshape(-1, x.shape[-1]).T @ grad_out.reshape(-1, grad_out.shape[-1])
    db = grad_out.reshape(-1, grad_out.shape[-1]).sum(axis=0)
    return dx, dW, db
    # END SOLUTION


# %%
check("linear", linear_backward)
