# %% [markdown]
# # Exercise 4: softmax cross-entropy
#
# For logits $z \in \mathbb{R}^{N \times C}$ and integer targets $y_n$:
#
# $$L = -\frac{1}{N}\sum_n \log p_{n, y_n}, \qquad p_n = \mathrm{softmax}(z_n)$$
#
# $$\frac{\partial L}{\partial z_{n}} = \frac{1}{N}\,\bigl(p_n - \mathrm{onehot}(y_n)\bigr)$$
#
# The loss is a scalar; `grad_out` is its upstream gradient (a 0-d array), which multiplies
# everything. Return `dlogits`.

# %%
import numpy as np

from tinylm.exercises import check, show

show("softmax_cross_entropy")


# %%
def softmax_cross_entropy_backward(grad_out, cache):
    probs, targets = cache
    # BEGIN SOLUTION
    n = probs.shape[0]
    dlogits = probs.copy()
    dlogits[np.arange(n), targets] -= 1
    return dlogits * grad_out / n
    # END SOLUTION


# %%
check("softmax_cross_entropy", softmax_cross_entropy_backward)
