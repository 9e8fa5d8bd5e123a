"""The encoder-decoder with additive attention: shapes, padding, gradients, greedy decoding, training."""
from __future__ import annotations

import numpy as np
import pytest
from assertions import assert_close

import tinylm as tl
import tinylm.functional as F
from tinylm import nn, optim

START = 10  # target vocabulary: the digits 0-9 and a start token


def _reverse_task(rng, batch: int, length: int):
    """Random digit strings, their reverses, and the reverses shifted right behind START."""
    source = rng.integers(0, 10, (batch, length))
    target = source[:, ::-1].copy()
    target_in = np.concatenate([np.full((batch, 1), START), target[:, :-1]], axis=1)
    return source, target_in, target


def test_shapes_and_attention_weights(device):
    model = nn.Seq2Seq(10, 11, embed_dim=8, hidden_size=12).to(device)
    source, target_in, _ = _reverse_task(np.random.default_rng(0), 3, 5)
    source, target_in = tl.tensor(source, device=device), tl.tensor(target_in, device=device)
    logits = model(source, target_in)
    assert logits.shape == (3, 5, 11) and logits.dtype == np.float32
    tokens, weights = model.greedy_decode(source, START, 4)
    assert tokens.shape == (3, 4) and tokens.dtype.kind == "i"
    assert weights.shape == (3, 4, 5) and not weights.requires_grad
    assert_close(weights.numpy().sum(-1), np.ones((3, 4)), rtol=1e-5, atol=1e-6, name="attention rows sum to 1")


def test_greedy_decoding_agrees_with_teacher_forcing():
    """Fed its own greedy outputs as the target, the teacher-forced model picks them again."""
    model = nn.Seq2Seq(10, 11, embed_dim=8, hidden_size=12)
    source, _, _ = _reverse_task(np.random.default_rng(1), 4, 6)
    tokens, weights = model.greedy_decode(source, START, 6)
    target_in = np.concatenate([np.full((4, 1), START), tokens.numpy()[:, :-1]], axis=1)
    np.testing.assert_array_equal(model(source, target_in).numpy().argmax(-1), tokens.numpy())


def test_padding_changes_nothing_and_is_not_attended():
    model = nn.Seq2Seq(10, 11, embed_dim=8, hidden_size=12)
    source, target_in, _ = _reverse_task(np.random.default_rng(2), 2, 6)
    padded = source.copy()
    padded[1, 4:] = 7  # sequence 1 has 4 real tokens
    lengths = np.array([6, 4])
    logits = model(padded, target_in, source_lengths=lengths)
    alone = model(source[1:, :4], target_in[1:], source_lengths=np.array([4]))
    assert_close(logits.numpy()[1:], alone, rtol=1e-5, atol=1e-6, name="logits of the padded sequence")
    _, weights = model.greedy_decode(padded, START, 3, source_lengths=lengths)
    assert np.all(weights.numpy()[1, :, 4:] == 0)


def test_gradcheck(float64):
    model = nn.Seq2Seq(5, 6, embed_dim=3, hidden_size=4)
    rng = np.random.default_rng(3)
    source, target_in = rng.integers(0, 5, (2, 3)), rng.integers(0, 6, (2, 2))
    assert tl.gradcheck(lambda *params: model(source, target_in, source_lengths=np.array([3, 2])), model.parameters())


def test_source_shape_error():
    model = nn.Seq2Seq(10, 11)
    with pytest.raises(tl.ShapeError, match=r"expected source ids of shape \(batch, length\), got shape \(5,\)"):
        model(np.zeros(5, dtype=np.int64), np.zeros((1, 2), dtype=np.int64))


def reverse_accuracy(steps: int = 400, data_seed: int = 4) -> float:
    """Adam steps on batches of 32 random 5-digit strings, from tl's seed; then the share of
    the digits of 500 fresh strings that greedy decoding gets right."""
    model = nn.Seq2Seq(10, 11, embed_dim=16, hidden_size=32)
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    rng = np.random.default_rng(data_seed)
    for _ in range(steps):
        source, target_in, target = _reverse_task(rng, 32, 5)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(source, target_in), target)
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    source, _, target = _reverse_task(rng, 500, 5)
    tokens, _ = model.greedy_decode(source, START, 5)
    return (tokens.numpy() == target).mean()


@pytest.mark.trains
def test_learns_to_reverse_digit_strings():
    """400 steps: greedy decoding gets at least 80% of the digits right; a model that only
    learned digit frequencies would get 10%. Measured over seeds 0-3 (of the model and the
    data) and OpenBLAS's SkylakeX, Haswell (also single-threaded), Sandybridge and Prescott kernels:
    92.3-97.7% (seed 0: 92.3% with Sandybridge, 96.9% with SkylakeX; the old bound, 90%, was
    2 points away)."""
    accuracy = reverse_accuracy()
    assert accuracy >= 0.8, f"digit accuracy after training: {accuracy:.3f}, expected at least 0.8"
