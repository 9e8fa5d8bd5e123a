# %% [markdown]
# # Exercise 5: layer normalisation
#
# Per row of $x \in \mathbb{R}^{N \times D}$:
#
# $$\mu = \tfrac{1}{D}\sum_j x_j,\quad \sigma^2 = \tfrac{1}{D}\sum_j (x_j - \mu)^2,\quad
#   \hat{x} = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}},\quad y = \hat{x}\odot\gamma + \beta$$
#
# $\gamma$ and $\beta$ are shared by every row, so their gradients sum over rows. For $x$,
# with $g = \partial L/\partial y \odot \gamma$ and $s = 1/\sqrt{\sigma^2+\epsilon}$, per row:
#
# $$\frac{\partial L}{\partial x} = s\,\Bigl(g - \overline{g} - \hat{x}\,\overline{g\odot\hat{x}}\Bigr)$$
#
# where a bar is the mean over the row. Return `dx, dgamma, dbeta`.

# %%
import numpy as np

from tinylm.exercises import check, show

show("layer_norm")


# %%
def layer_norm_backward(grad_out, cache):
    x_hat, inv_std, gamma = cache
    # BEGIN SOLUTION
    dbeta = grad_out.sum(axis=0)
    dgamma = (grad_out * x_hat).sum(axis=0)
    g = grad_out * gamma
    dx = inv_std * (g - g.mean(axis=1, keepdims=True) - x_hat * (g * x_hat).mean(axis=1, keepdims=True))
    return dx, dgamma, dbeta
    # END SOLUTION


# %%
check("layer_norm", layer_norm_backward)
