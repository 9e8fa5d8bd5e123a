# %% [markdown]
# # Exercise 2: the backward pass of tanh
#
# $$t = \tanh(x), \qquad \frac{dt}{dx} = 1 - t^2$$
#
# Write `tanh_backward(grad_out, cache)` returning $\partial L/\partial x$.

# %%
import numpy as np

from tinylm.exercises import check, show

show("tanh")


# %%
def tanh_backward(grad_out, cache):
    (t,) = cache
    # BEGIN SOLUTION
    return grad_out * (1 - t * t)
    # END SOLUTION


# %%
check("tanh", tanh_backward)
