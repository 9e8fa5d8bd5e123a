"""Pretraining and fine-tuning: BERT-style masking, the bidirectional encoder (and the GPT
backbone), gradient checks, training to stated figures on small tasks, the derived
labelled task, save/load, errors. The pretrained-vs-scratch comparison on the built-in
corpus takes minutes, so it lives in benchmarks/pretraining.py."""
from __future__ import annotations

import numpy as np
import pytest

import tinylm as tl
from tinylm import metrics, nn
from tinylm import pretraining as P

from assertions import assert_close


def test_mask_tokens_chooses_15_percent_and_corrupts_80_10_10():
    ids = np.random.default_rng(0).integers(len(P.SPECIAL_TOKENS), 50, (400, 250))
    inputs, targets = P.mask_tokens(ids, vocab_size=50)
    chosen = targets != P.IGNORE
    assert chosen.mean() == pytest.approx(0.15, abs=0.005)
    np.testing.assert_array_equal(targets[chosen], ids[chosen])
    np.testing.assert_array_equal(inputs[~chosen], ids[~chosen])
    masked = inputs[chosen] == P.MASK
    replaced = ~masked & (inputs[chosen] != ids[chosen])
    assert masked.mean() == pytest.approx(0.8, abs=0.01)
    # a random word equals the original 1 time in 48, so "replaced" is 10% · 47/48
    assert replaced.mean() == pytest.approx(0.1 * 47 / 48, abs=0.01)
    assert inputs.min() >= 0 and not np.isin(inputs[chosen][~masked], [P.UNKNOWN, P.MASK]).any()


def tiny_encoder(vocab_size: int = 7, context_length: int = 5, embed_dim: int = 8) -> P.TransformerEncoder:
    return P.TransformerEncoder(vocab_size, context_length, embed_dim, num_heads=2, num_layers=1, dropout=0.0)


def test_encoder_is_bidirectional_and_gpt_backbone_is_causal():
    ids = np.array([[2, 3, 4, 5, 6]])
    changed_last = np.array([[2, 3, 4, 5, 2]])
    encoder = tiny_encoder()
    assert encoder(ids).shape == (1, 5, 8)
    assert not np.allclose(encoder(ids).numpy()[0, 0], encoder(changed_last).numpy()[0, 0])
    backbone = P.GPTBackbone(nn.GPT(7, 5, embed_dim=8, num_heads=2, num_layers=1))
    assert_close(backbone(changed_last).numpy()[0, :4], backbone(ids).numpy()[0, :4], name="causal prefix")


def test_gpt_backbone_is_gpt_without_its_head():
    gpt = nn.GPT(7, 5, embed_dim=8, num_heads=2, num_layers=2)
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    assert_close(P.GPTBackbone(gpt)(ids) @ gpt.head.weight.T, gpt(ids), 1e-5, 1e-6, name="logits")


@pytest.mark.parametrize("pooling", P.POOLINGS)
def test_classifier_gradcheck(float64, pooling):
    classifier = P.SequenceClassifier(tiny_encoder(embed_dim=4), 4, num_classes=3, pooling=pooling, dropout=0.0)
    ids = np.array([[1, 2, 3, 4], [5, 6, 0, 1]])
    tl.gradcheck(lambda *parameters: classifier(ids), classifier.parameters())


def test_masked_lm_gradcheck_at_chosen_positions(float64):
    model = P.MaskedLanguageModel(tiny_encoder(embed_dim=4))
    ids, positions = np.array([[1, 2, 3, 4], [5, 6, 0, 1]]), np.array([1, 6])
    assert model(ids).shape == (2, 4, 7) and model(ids, positions).shape == (2, 7)
    assert_close(model(ids, positions), model(ids).numpy().reshape(8, 7)[positions], name="logits at positions")
    tl.gradcheck(lambda *parameters: model(ids, positions), model.parameters())


def grouped_text(seed: int = 0) -> np.ndarray:
    """100 paragraphs of 32 words; each paragraph draws its words from one of two groups of five
    (ids 2-6 or 7-11). Without context a word is one of 10 (loss ln 10 = 2.30); its neighbours
    tell the group, leaving one of 5 (ln 5 = 1.61)."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 2, 100)
    return (2 + 5 * groups[:, None] + rng.integers(0, 5, (100, 32))).ravel()


def masked_lm_losses(steps: int = 120) -> list[float]:
    model = P.MaskedLanguageModel(tiny_encoder(vocab_size=12, context_length=8, embed_dim=16))
    return P.pretrain_masked_lm(model, grouped_text(), steps=steps, batch_size=32, lr=1e-2)


def causal_lm_losses(steps: int = 120) -> list[float]:
    gpt = nn.GPT(12, 8, embed_dim=16, num_heads=2, num_layers=1)
    return P.pretrain_causal_lm(gpt, grouped_text(), steps=steps, batch_size=32, lr=1e-2)


@pytest.mark.trains
def test_masked_lm_learns_from_both_sides():
    """Stated figure: within 120 steps the masked-word loss falls from ≈ ln 12 = 2.48 to below
    1.95, well under the 2.30 of a model that ignores the context. Measured over seeds 0-3 and
    five OpenBLAS kernels (see test_fine_tuning_learns_a_keyword_task): first loss 2.62-2.74,
    last 20 steps 1.66-1.70."""
    losses = masked_lm_losses()
    assert losses[0] == pytest.approx(np.log(12), abs=0.5)
    assert np.mean(losses[-20:]) < 1.95, f"loss of the last 20 steps {np.mean(losses[-20:]):.3f}, expected below 1.95"


@pytest.mark.trains
def test_causal_lm_pretraining_learns_from_the_past():
    """Stated figure: the GPT's next-word loss on the same text falls below 1.95 within 120
    steps. Measured (seeds 0-3, five kernels): 1.68."""
    losses = causal_lm_losses()
    assert np.mean(losses[-20:]) < 1.95, f"loss of the last 20 steps {np.mean(losses[-20:]):.3f}, expected below 1.95"


def keyword_task_accuracy(kind: str, pooling: str, steps: int = 60) -> float:
    """Fine-tune a tiny backbone on 100 sequences whose class is which of two keywords each
    holds among random words; the accuracy on 100 held-out ones."""
    rng = np.random.default_rng(0)
    ids = rng.integers(4, 20, (200, 8))
    labels = rng.integers(0, 2, 200)
    ids[np.arange(200), rng.integers(0, 8, 200)] = 2 + labels  # keyword 2 or 3 at a random place
    if kind == "encoder":
        backbone = tiny_encoder(20, 8, 16)
    else:
        backbone = P.GPTBackbone(nn.GPT(20, 8, embed_dim=16, num_heads=2, num_layers=1))
    classifier = P.SequenceClassifier(backbone, 16, num_classes=2, pooling=pooling)
    P.fine_tune(classifier, ids[:100], labels[:100], steps=steps, batch_size=32, lr=1e-2)
    return metrics.accuracy(labels[100:], P.predict(classifier, ids[100:]))


@pytest.mark.trains
@pytest.mark.parametrize("kind, pooling", [("encoder", "mean"), ("encoder", "first"), ("gpt", "last")])
def test_fine_tuning_learns_a_keyword_task(kind, pooling):
    """Stated figure: ≥ 80% accuracy on 100 held-out sequences after 60 steps (chance: 50%).
    Measured over seeds 0-3 and OpenBLAS's SkylakeX, Haswell (also single-threaded), Sandybridge and Prescott kernels:
    encoder-mean and gpt-last 100%, encoder-first 95-100% (the old bound, 90%, was 5 sequences away)."""
    accuracy = keyword_task_accuracy(kind, pooling)
    assert accuracy >= 0.8, f"held-out accuracy {accuracy:.3f}, expected at least 0.8"


def test_topic_passages_and_few_labels_split():
    from pydoc_data.topics import topics

    vocabulary = P.word_vocabulary(P.corpus_words(topics["debugger"] + topics["try"]), min_count=1)
    assert vocabulary.words[:2] == list(P.SPECIAL_TOKENS)
    passages, labels = P.topic_passages(vocabulary, length=16, topics=("debugger", "try"))
    assert passages.shape == (len(labels), 16) and set(labels.tolist()) == {0, 1}
    assert (labels == 0).sum() == len(P.corpus_words(topics["debugger"])) // 16
    first = " ".join(vocabulary.words[i] for i in passages[0])
    assert first == " ".join(P.corpus_words(topics["debugger"])[:16])
    train, test = P.few_labels_split(labels, per_class=3, seed=0)
    assert np.bincount(labels[train]).tolist() == [3, 3]
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(labels)
    encoded = P.encode_words(vocabulary, ["the", "qwertyuiop"])
    np.testing.assert_array_equal(encoded, [vocabulary.index["the"], P.UNKNOWN])


def test_save_and_load(tmp_path):
    classifier = P.SequenceClassifier(tiny_encoder(), 8, num_classes=3).eval()
    tl.save(classifier.state_dict(), tmp_path / "classifier.npz")
    loaded = P.SequenceClassifier(tiny_encoder(), 8, num_classes=3).eval()
    loaded.load_state_dict(tl.load(tmp_path / "classifier.npz"))
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    assert_close(loaded(ids), classifier(ids), name="logits after loading")
    assert "backbone.token_embedding.weight" in classifier.state_dict()


def test_errors():
    with pytest.raises(ValueError, match=r"pooling must be one of \('mean', 'first', 'last'\), got 'max'"):
        P.SequenceClassifier(tiny_encoder(), 8, 2, pooling="max")
    with pytest.raises(tl.ShapeError, match=r"expected token ids of shape \(batch, time\), got shape \(3,\)"):
        tiny_encoder()(np.array([1, 2, 3]))
    with pytest.raises(tl.ShapeError, match="a sequence of 9 tokens is longer than the model's context_length 8"):
        tiny_encoder(context_length=8)(np.zeros((1, 9), dtype=np.int64))
    with pytest.raises(KeyError, match=r"topics \['no-such-topic'\] are not in this Python's pydoc_data.topics"):
        P.topic_passages(P.word_vocabulary(["a", "a"]), topics=("no-such-topic",))
