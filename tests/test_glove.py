"""GloVe: co-occurrence counts by hand, the weighted least-squares loss (gradient checks,
PyTorch), training on the built-in corpus to stated figures, agreement with word2vec, save/load."""
from __future__ import annotations

import numpy as np
import pytest

import tinylm as tl
from tinylm import glove as G
from tinylm import word2vec as W
from tinylm.data import builtin_corpus

from assertions import assert_close


def test_cooccurrence_counts_by_hand():
    # text: 0 1 2 0, window 2. Pairs at distance 1: (0,1) (1,2) (2,0); at distance 2: (0,2) (1,0)
    counts = G.cooccurrence_matrix(np.array([0, 1, 2, 0]), 3, window=2)
    expected = np.array([[0, 1 + 0.5, 1 + 0.5], [1 + 0.5, 0, 1], [1 + 0.5, 1, 0]])
    np.testing.assert_allclose(counts, expected)


def test_weighting():
    np.testing.assert_allclose(G.weighting(np.array([1.0, 50.0, 100.0, 500.0])), [0.01**0.75, 0.5**0.75, 1.0, 1.0])


def loss_inputs(device: str = "cpu", n: int = 6, d: int = 4) -> list[tl.Tensor]:
    rng = np.random.default_rng(0)
    w, w_context = (tl.randn(n, d, device=device, requires_grad=True) for _ in range(2))
    b, b_context = (tl.randn(n, device=device, requires_grad=True) for _ in range(2))
    log_counts = tl.tensor(np.log(rng.uniform(1, 50, n)), dtype=tl.get_default_dtype(), device=device)
    weights = tl.tensor(rng.uniform(0.1, 1, n), dtype=tl.get_default_dtype(), device=device)
    return [w, w_context, b, b_context, log_counts, weights]


def test_glove_loss_gradcheck(device, float64):
    tl.gradcheck(G.glove_loss, loss_inputs(device))


def test_glove_loss_forward_float32_and_pytorch(torch):
    inputs = loss_inputs()
    w, w_context, b, b_context, log_counts, weights = (t.numpy() for t in inputs)
    loss = G.glove_loss(*inputs)
    assert loss.dtype == np.float32
    expected = np.mean(weights * ((w * w_context).sum(-1) + b + b_context - log_counts) ** 2)
    assert_close(loss, expected, 1e-5, 1e-6, name="loss")
    theirs = [torch.tensor(t.numpy(), requires_grad=t.requires_grad) for t in inputs]
    tw, twc, tb, tbc, tlog, tweights = theirs
    their_loss = (tweights * ((tw * twc).sum(-1) + tb + tbc - tlog) ** 2).mean()
    loss.backward()
    their_loss.backward()
    for name, ours, their in zip(["w", "w_context", "b", "b_context"], inputs, theirs):
        assert_close(ours.grad, their.grad, 1e-5, 1e-6, name=f"gradient of {name}")


def test_glove_model_gradcheck(float64):
    model = G.GloVe(5, 3)
    rows, columns = np.array([0, 1, 4, 1]), np.array([2, 2, 3, 0])
    log_counts, weights = tl.tensor([0.5, 1.0, 2.0, 0.1]), tl.tensor([0.2, 1.0, 0.7, 0.5])
    tl.gradcheck(lambda *parameters: model(rows, columns, log_counts, weights), model.parameters())


def glove_and_word2vec(seed: int = 0):
    """GloVe (words of count ≥ 10, about 840; D = 32; window 5; x_max 10; 6 epochs) and a
    skip-gram word2vec on the built-in corpus: (GloVe's loss per epoch, its vectors, the
    mean share of the 10 nearest neighbours the two give 50 frequent words)."""
    words = W.corpus_words(builtin_corpus())
    model, vocabulary, history = G.train_glove(
        words, embed_dim=32, window=5, min_count=10, x_max=10.0, epochs=6, lr=0.1, seed=seed
    )
    glove_vectors = W.WordVectors(model.vectors(), vocabulary)
    skipgram, skipgram_vocabulary, _ = W.train_word2vec(
        words, embed_dim=32, window=2, min_count=10, lr=0.02, batch_size=1024, seed=seed
    )
    assert skipgram_vocabulary.words == vocabulary.words
    word2vec_vectors = W.WordVectors(skipgram.input_vectors, skipgram_vocabulary)
    overlap = G.neighbour_overlap(glove_vectors, word2vec_vectors, vocabulary.words[20:70], k=10)
    return history, glove_vectors, np.mean(list(overlap.values()))


@pytest.mark.trains
def test_trains_on_the_builtin_corpus_and_agrees_with_word2vec():
    """Stated figures: the mean weighted loss of the last epoch is below 60% of the first's;
    "false" is among the 5 nearest neighbours of "true"; GloVe's and word2vec's 10 nearest
    neighbours share ≥ 10% on average (chance, k/V, is ~1.2%). Measured over seeds 0-3 and
    OpenBLAS's SkylakeX, Haswell (also single-threaded), Sandybridge and Prescott
    kernels: last / first 0.480-0.494 (0.494 with seed 0: the old bound, one half, sat on it),
    "false" 1st to 3rd, overlap 0.198-0.202."""
    history, glove_vectors, overlap = glove_and_word2vec()
    assert history[-1] < 0.6 * history[0], f"loss per epoch {history}: the last should be below 60% of the first"
    assert "false" in [word for word, _ in glove_vectors.most_similar("true", 5)]
    assert overlap >= 0.10, f"neighbour overlap {overlap:.3f}, expected at least 0.10"


def test_neighbour_overlap_by_hand():
    vocabulary = W.Vocabulary(["a", "b", "c", "d"], np.ones(4, dtype=np.int64))
    first = W.WordVectors(np.array([[1.0, 0], [0.9, 0.1], [0, 1], [-1, 0]]), vocabulary)
    second = W.WordVectors(np.array([[1.0, 0], [0, 1], [0.9, 0.1], [-1, 0]]), vocabulary)
    # nearest of "a": b in the first, c in the second; top-2 of "a": {b, c} in both
    assert G.neighbour_overlap(first, second, ["a"], k=1) == {"a": 0.0}
    assert G.neighbour_overlap(first, second, ["a"], k=2) == {"a": 1.0}
    assert G.neighbour_overlap(first, first, ["a", "d"], k=2) == {"a": 1.0, "d": 1.0}


def test_save_and_load(tmp_path):
    words = "the cat sat on the mat and the dog sat on the log".split() * 5
    model, vocabulary, _ = G.train_glove(words, embed_dim=4, min_count=1, epochs=2)
    tl.save({"model": model.state_dict(), "vocabulary": vocabulary.to_dict()}, tmp_path / "glove.npz")
    state = tl.load(tmp_path / "glove.npz")
    loaded = G.GloVe(len(state["vocabulary"]["words"]), 4)
    loaded.load_state_dict(state["model"])
    np.testing.assert_array_equal(loaded.vectors(), model.vectors())


def test_loss_shape_error():
    w, w_context, b, b_context, log_counts, weights = loss_inputs()
    expected = r"expected w and w_context \(N, D\) and b, b_context, log_counts, weights \(N,\)"
    with pytest.raises(tl.ShapeError, match=expected):
        G.glove_loss(w, w_context, b, b_context, log_counts[:3], weights)
