"""The key-value cache: feeding a GPT piece by piece through a cache gives the logits of one full pass."""
from __future__ import annotations

import numpy as np
import pytest
from assertions import assert_close

import tinylm as tl
from tinylm import nn


LLAMA = {"norm": "rms", "mlp": "swiglu", "positions": "rope", "bias": False}
RECIPES = {"gpt-2": {}, "llama": LLAMA, "llama gqa": {**LLAMA, "num_kv_heads": 2}}


def small_gpt(device: str = "cpu", context_length: int = 12, **recipe) -> nn.GPT:
    return nn.GPT(vocab_size=17, context_length=context_length, embed_dim=16, num_heads=4, num_layers=2, tie_weights=True, **recipe).to(device)


@pytest.mark.parametrize("recipe", list(RECIPES))
@pytest.mark.parametrize("pieces", [[12], [1] * 12, [5, 1, 3, 1, 2], [2, 7, 3]])
def test_pieces_through_a_cache_give_the_logits_of_one_pass(float64, device, pieces, recipe):
    model = small_gpt(device, **RECIPES[recipe])
    ids = np.random.default_rng(0).integers(0, 17, (3, 12))
    with tl.no_grad():
        expected = model(ids)
        cache = model.new_cache(capacity=2)  # small: the buffers grow on the way
        logits, start = [], 0
        for size in pieces:
            logits.append(model(ids[:, start : start + size], cache))
            start += size
            assert cache.length == start  # the position of the next token
    assert_close(tl.concat(logits, axis=1), expected, rtol=0, atol=1e-12, name="logits through the cache")
    assert cache.layers[0].keys.shape[1] == model.blocks[0].attention.num_kv_heads  # GQA: fewer heads held


def test_the_cache_keeps_what_it_held_when_it_grows():
    layer = nn.LayerCache(capacity=2)
    keys = np.random.default_rng(0).standard_normal((1, 2, 5, 3))
    for t in range(5):
        held_keys, held_values = layer.append(tl.tensor(keys[:, :, t : t + 1]), tl.tensor(-keys[:, :, t : t + 1]))
        assert_close(held_keys, keys[:, :, : t + 1], rtol=0, atol=0, name=f"keys after {t + 1} appends")
        assert_close(held_values, -keys[:, :, : t + 1], rtol=0, atol=0, name=f"values after {t + 1} appends")
    assert layer.keys.shape[2] == 8  # 2 -> 4 -> 8: doubling, not one copy per token
    layer.clear()
    assert layer.length == 0 and layer.append(tl.tensor(keys[:, :, :1]), tl.tensor(keys[:, :, :1]))[0].shape == (1, 2, 1, 3)


def test_cache_errors():
    model = small_gpt(context_length=6)
    cache = model.new_cache()
    assert repr(cache) == "KVCache(layers=2, length=0)"
    with pytest.raises(RuntimeError, match=r"the key-value cache is for generation and keeps no graph: run the model under tl.no_grad\(\)"):
        model(np.zeros((1, 3), dtype=np.int64), cache)
    with tl.no_grad():
        model(np.zeros((1, 4), dtype=np.int64), model.new_cache())
        cache = model.new_cache()
        model(np.zeros((1, 4), dtype=np.int64), cache)
        with pytest.raises(tl.ShapeError, match="the cache holds 4 positions, and 3 more would go past the model's context_length 6"):
            model(np.zeros((1, 3), dtype=np.int64), cache)
        with pytest.raises(tl.ShapeError, match=r"the cache holds \(batch, heads, head size\) = \(1, 4, 4\), the new keys are \(2, 4, 1, 4\)"):
            model(np.zeros((2, 1), dtype=np.int64), cache)
        attention = nn.MultiheadAttention(16, 4)
        x = tl.zeros((1, 2, 16))
        with pytest.raises(ValueError, match="with a cache, only is_causal masks the keys"):
            attention(x, attn_mask=np.zeros((2, 2), dtype=bool), cache=nn.LayerCache())
    with pytest.raises(ValueError, match="a cache needs a capacity of at least one position, got 0"):
        nn.LayerCache(0)


def test_positions_past_the_table_are_refused():
    positions = nn.LearnedPositionalEncoding(4, 2)
    assert positions(tl.zeros((1, 1, 2)), start=3).shape == (1, 1, 2)
    with pytest.raises(tl.ShapeError, match="positions 3..4 go past the last one it has, 3"):
        positions(tl.zeros((1, 2, 2)), start=3)
