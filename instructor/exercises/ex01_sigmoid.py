# %% [markdown]
# # Exercise 1: the backward pass of the sigmoid
#
# $$\sigma(x) = \frac{1}{1 + e^{-x}}, \qquad \frac{d\sigma}{dx} = \sigma(x)\,\bigl(1 - \sigma(x)\bigr)$$
#
# The forward pass below is given. It returns the output and a *cache*: what the backward
# pass needs. Write `sigmoid_backward(grad_out, cache)` returning $\partial L/\partial x$,
# given $\partial L/\partial \sigma$ (`grad_out`, same shape as the output). Then run the check.

# %%
import numpy as np

from tinylm.exercises import check, show

show("sigmoid")


# %%
def sigmoid_backward(grad_out, cache):
    (s,) = cache
    # BEGIN SOLUTION
    return grad_out * s * (1 - s)
    # END SOLUTION


# %%
check("sigmoid", sigmoid_backward)
