# %% [markdown]
# # Exercise 9: scaled dot-product attention with a causal mask
#
# $$S = \frac{q k^\top}{\sqrt{d}} + M, \qquad P = \mathrm{softmax}(S), \qquad \text{out} = P v$$
#
# with $M_{ij} = -\infty$ for $j > i$ (a query does not see later keys), so $P_{ij} = 0$ there.
# Backward, for each batch entry:
#
# $$\partial v = P^\top \partial\text{out}, \qquad \partial P = \partial\text{out}\, v^\top, \qquad
#   \partial S = P \odot \Bigl(\partial P - \textstyle\sum_j (\partial P \odot P)_{\cdot j}\Bigr)$$
#
# $$\partial q = \partial S\, k / \sqrt{d}, \qquad \partial k = \partial S^\top q / \sqrt{d}$$
#
# Return `dq, dk, dv`.

# %%
import numpy as np

from tinylm.exercises import check, show

show("causal_attention")


# %%
def causal_attention_backward(grad_out, cache):
    q, k, v, weights = cache
    # BEGIN SOLUTION
    scale = 1.0 / np.sqrt(q.shape[-1])
    dv = weights.transpose(0, 2, 1) @ grad_out
    dweights = grad_out @ v.transpose(0, 2, 1)
    dscores = weights * (dweights - (dweights * weights).sum(axis=-1, keepdims=True))
    return dscores @ k * scale, dscores.transpose(0, 2, 1) @ q * scale, dv
    # END SOLUTION


# %%
check("causal_attention", causal_attention_backward)
