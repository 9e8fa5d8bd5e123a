"""BERT (tinylm.nn.bert) and its Hugging Face loader (tinylm.pretrained.bert).

Tiny ``BertConfig`` models with random weights are saved with ``save_pretrained`` and
loaded in tinylm: outputs equal to Hugging Face's in float64 and float32, gradients of a
loss with respect to every weight equal (mapped by name), padding through the attention
mask; gradient checks of the tinylm models; fine-tuning through tinylm.pretraining; one
clear error per kind of bad file or input. Hugging Face cross-checks skip without
transformers (and PyTorch)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import tinylm as tl
import tinylm.pretrained
from tinylm import metrics, nn
from tinylm import pretraining as P
from tinylm.data import WordPieceTokenizer
from tinylm.pretrained import PretrainedError
from tinylm.pretrained.bert import current_names, hugging_face_names, state_from

from assertions import assert_close
from hf_folders import rewrite_config, rewrite_tensors

SIZES = dict(
    vocab_size=40,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=24,
    max_position_embeddings=20,
    type_vocab_size=2,
)
ARCHITECTURES = ["BertModel", "BertForMaskedLM", "BertForSequenceClassification"]
NUM_LABELS = 3


@pytest.fixture(scope="module")
def transformers():
    pytest.importorskip("torch", reason="PyTorch not installed: Hugging Face cross-checks are skipped")
    return pytest.importorskip("transformers", reason="transformers not installed: Hugging Face cross-checks are skipped")


@pytest.fixture(scope="module")
def folders(transformers, tmp_path_factory):
    """One save_pretrained folder per architecture; every weight moved off its initial value
    (biases and LayerNorms too), so a misplaced tensor cannot hide."""
    import torch

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("bert")
    config = transformers.BertConfig(**SIZES, num_labels=NUM_LABELS)
    for architecture in ARCHITECTURES:
        model = getattr(transformers, architecture)(config)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.2)
        model.save_pretrained(root / architecture)
    return root


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ids (3, 9) with padding (id 0) after 9, 6 and 3 real tokens; token types; the attention mask."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, SIZES["vocab_size"], size=(3, 9))
    mask = (np.arange(9) < np.array([[9], [6], [3]])).astype(np.int64)
    ids[mask == 0] = 0
    types = (np.arange(9) >= 4).astype(np.int64) * np.ones((3, 1), dtype=np.int64)
    return ids, types, mask


def hugging_face_output(transformers, folder, architecture: str, dtype, ids, types, mask, attention: str = "sdpa"):
    import torch

    model = getattr(transformers, architecture).from_pretrained(folder / architecture, attn_implementation=attention)
    model = model.to(getattr(torch, np.dtype(dtype).name)).eval()
    out = model(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types), attention_mask=torch.tensor(mask))
    return model, (out.last_hidden_state if architecture == "BertModel" else out.logits)


TOLERANCES = pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-10), (np.float32, 1e-4)], ids=["float64", "float32"])


@TOLERANCES
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_outputs_equal_hugging_face(transformers, folders, device, architecture, attention, dtype, tolerance):
    ids, types, mask = batch()
    model, config = tinylm.pretrained.load(folders / architecture, dtype=dtype, device=device)
    assert type(model).__name__ == architecture and config["architectures"] == [architecture]
    assert not model.training  # loaded for inference, as from_pretrained
    _, theirs = hugging_face_output(transformers, folders, architecture, dtype, ids, types, mask, attention)
    ours = model(ids, types, mask)
    assert ours.dtype == dtype and ours.device == device
    assert_close(ours, theirs, rtol=tolerance, atol=tolerance, name=f"{architecture} output")  # padded positions too


@TOLERANCES
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_weight_gradients_equal_hugging_face(transformers, folders, architecture, dtype, tolerance):
    """The gradient of Σ output ⊙ U (U random) for every weight, Hugging Face's renamed to tinylm's names."""
    import torch

    ids, types, mask = batch(1)
    model, _ = tinylm.pretrained.load(folders / architecture, dtype=dtype)
    theirs_model, theirs = hugging_face_output(transformers, folders, architecture, dtype, ids, types, mask)
    ours = model(ids, types, mask)
    upstream = np.random.default_rng(2).standard_normal(ours.shape).astype(dtype)
    ours.backward(upstream)
    theirs.backward(torch.from_numpy(upstream))
    their_grads = {name: p.grad.numpy() for name, p in theirs_model.named_parameters() if p.grad is not None}
    expected = state_from(model, current_names(their_grads), hugging_face_names(model))
    for name, parameter in model.named_parameters():
        assert parameter.grad.dtype == dtype
        assert_close(parameter.grad, expected[name], rtol=tolerance, atol=tolerance, name=f"gradient of {name}")
    word_embedding = (model if architecture == "BertModel" else model.bert).token_embedding.weight
    if architecture != "BertForMaskedLM":  # the tied decoder gives the padding row a gradient of its own
        assert not word_embedding.grad.numpy()[0].any()  # padding (id 0) never moves, as Hugging Face's


def test_every_parameter_has_a_hugging_face_name():
    bert = nn.BertModel(30, context_length=8, embed_dim=8, num_heads=2, num_layers=2, mlp_dim=12)
    for model in (bert, nn.BertForMaskedLM(bert), nn.BertForSequenceClassification(bert, 2)):
        names = hugging_face_names(model)
        assert sorted(names) == sorted(name for name, _ in model.named_parameters())
    assert names["bert.layers.1.attention.in_proj_weight"] == [
        f"bert.encoder.layer.1.attention.self.{part}.weight" for part in ("query", "key", "value")
    ]


# ---------------------------------------------------------------- the tinylm models alone


def tiny_bert(**options) -> nn.BertModel:
    sizes = dict(context_length=6, embed_dim=8, num_heads=2, num_layers=1, mlp_dim=12, dropout=0.0)
    return nn.BertModel(11, **(sizes | options))


# In the gradient checks no input is the padding id 0: by design (as PyTorch's) its
# embedding row gets no gradient, where central differences would see one.


def test_masked_lm_gradcheck(float64):
    model = nn.BertForMaskedLM(tiny_bert())
    ids, types, mask = np.array([[2, 3, 4, 9], [5, 6, 7, 8]]), np.array([[0, 0, 1, 1], [0, 1, 1, 1]]), np.array([[1, 1, 1, 0], [1, 1, 1, 1]])
    tl.gradcheck(lambda *parameters: model(ids, types, mask), model.parameters())


def test_sequence_classifier_gradcheck(float64):
    model = nn.BertForSequenceClassification(tiny_bert(approximate="tanh"), num_labels=3, dropout=0.0)
    ids, mask = np.array([[2, 3, 4, 9], [5, 6, 7, 8]]), np.array([[1, 1, 1, 0], [1, 1, 1, 1]])
    tl.gradcheck(lambda *parameters: model(ids, attention_mask=mask), model.parameters())


def test_padding_changes_nothing_for_the_real_tokens():
    model = nn.BertForMaskedLM(tiny_bert()).eval()
    alone = model(np.array([[2, 3, 4]]))
    padded = model(np.array([[2, 3, 4, 0, 0], [5, 6, 7, 8, 9]]), attention_mask=np.array([[1, 1, 1, 0, 0], [1] * 5]))
    assert_close(padded.numpy()[0, :3], alone.numpy()[0], 1e-5, 1e-6, name="real tokens next to padding")
    other_padding = model(np.array([[2, 3, 4, 9, 1]]), attention_mask=np.array([[1, 1, 1, 0, 0]]))
    assert_close(other_padding.numpy()[0, :3], alone.numpy()[0], 1e-5, 1e-6, name="whatever the padded ids")


def test_encoder_is_bidirectional_and_token_types_count():
    bert = tiny_bert().eval()
    ids = np.array([[2, 3, 4, 5]])
    assert bert(ids).shape == (1, 4, 8)
    assert not np.allclose(bert(ids).numpy()[0, 0], bert(np.array([[2, 3, 4, 9]])).numpy()[0, 0])
    assert not np.allclose(bert(ids).numpy(), bert(ids, token_type_ids=np.array([[0, 0, 1, 1]])).numpy())
    hidden, attention = bert(ids, attention_mask=np.array([[1, 1, 1, 0]]), return_attention=True)
    assert len(attention) == 1 and attention[0].shape == (1, 2, 4, 4)
    assert not attention[0].numpy()[..., 3].any()  # nobody attends to the padded token
    assert_close(attention[0].numpy().sum(axis=-1), np.ones((1, 2, 4)), name="attention rows")


def test_masked_lm_logits_at_positions_and_tied_decoder():
    model = nn.BertForMaskedLM(tiny_bert()).eval()
    ids = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    positions = np.array([1, 6])
    assert model(ids).shape == (2, 4, 11) and model(ids, positions=positions).shape == (2, 11)
    assert_close(model(ids, positions=positions), model(ids).numpy().reshape(8, 11)[positions], name="logits at positions")
    vocabulary_matrices = [name for name, p in model.named_parameters() if p.shape == (11, 8)]
    assert vocabulary_matrices == ["bert.token_embedding.weight"]  # tied: the embedding is the decoder
    assert (model.vocab_size, model.context_length) == (11, 6)


def test_initialised_as_bert():
    bert = nn.BertModel(500, context_length=64, embed_dim=64, num_heads=4, num_layers=1, mlp_dim=128)
    weights = bert.layers[0].mlp[0].weight.numpy()
    assert abs(weights.std() - 0.02) < 0.002 and not bert.layers[0].mlp[0].bias.numpy().any()
    assert not bert.token_embedding.weight.numpy()[0].any()  # the padding row
    assert (bert.embedding_norm.weight.numpy() == 1).all()
    assert nn.BertModel(5, pad_token_id=None, embed_dim=8, num_heads=2, num_layers=1, mlp_dim=8).token_embedding.padding_idx is None


@pytest.mark.trains
def test_fine_tuning_a_bert_through_pretraining_learns_a_keyword_task():
    """Stated figure: ≥ 90% accuracy on 100 held-out padded sequences after 80 steps (measured
    100% on three draws of the data, under two BLAS kernels): the class is which of two keywords (ids 2, 3) a sequence of random words holds;
    the sequences have 4 to 8 real tokens, then padding (chance: 50%)."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(4, 9, 200)
    mask = (np.arange(8) < lengths[:, None]).astype(np.int64)
    ids = rng.integers(4, 20, (200, 8)) * mask
    labels = rng.integers(0, 2, 200)
    ids[np.arange(200), rng.integers(0, lengths)] = 2 + labels
    bert = nn.BertModel(20, context_length=8, embed_dim=16, num_heads=2, num_layers=1, mlp_dim=32, dropout=0.0)
    classifier = nn.BertForSequenceClassification(bert, num_labels=2, dropout=0.0)
    losses = P.fine_tune(classifier, ids[:100], labels[:100], steps=80, batch_size=32, lr=1e-2, attention_mask=mask[:100])
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    predictions = P.predict(classifier, ids[100:], batch_size=64, attention_mask=mask[100:])
    assert metrics.accuracy(labels[100:], predictions) >= 0.9


def test_masked_lm_pretraining_takes_a_bert():
    model = nn.BertForMaskedLM(tiny_bert(context_length=8))
    stream = np.random.default_rng(0).integers(2, 11, 400)
    losses = P.pretrain_masked_lm(model, stream, steps=3, batch_size=4, mask_id=1, first_word_id=2, window=5)
    assert len(losses) == 3 and all(np.isfinite(losses))


def test_mask_tokens_leaves_special_ids_alone():
    ids = np.random.default_rng(0).integers(0, 30, (200, 50))
    inputs, targets = P.mask_tokens(ids, 30, mask_probability=0.5, mask_id=29, first_word_id=5, special_ids=(0, 1, 2))
    special = np.isin(ids, (0, 1, 2))
    assert (targets[special] == P.IGNORE).all() and (inputs[special] == ids[special]).all()
    chosen = targets != P.IGNORE
    assert chosen.mean() == pytest.approx(0.5 * (1 - special.mean()), abs=0.02)
    assert (inputs[chosen] == 29).mean() == pytest.approx(0.8, abs=0.02)


def test_a_loaded_encoder_takes_a_new_classification_head(folders):
    masked_lm, _ = tinylm.pretrained.load(folders / "BertForMaskedLM")
    classifier = nn.BertForSequenceClassification(masked_lm.bert, num_labels=4)
    ids, types, mask = batch()
    assert classifier(ids, types, mask).shape == (3, 4)
    assert classifier.bert is masked_lm.bert  # shared, not copied


def test_tokenizer_and_model_together_equal_hugging_face(transformers, folders, tmp_path):
    """WordPieceTokenizer.encode_batch feeds the loaded BERT as BertTokenizer feeds Hugging Face's."""
    import torch

    folder = shutil.copytree(folders / "BertForMaskedLM", tmp_path / "with-vocab")
    words = ["the", "cat", "sat", "on", "mat", "a", "dog", "##s", ".", ",", "!", "play", "##ing"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    vocab += [f"[unused{i}]" for i in range(SIZES["vocab_size"] - len(vocab))]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    texts = ["The cat sat on the [MASK].", "Dogs playing!", "a mat, a dog, a cat"]
    tokenizer = WordPieceTokenizer.from_pretrained(folder)
    ids, mask = tokenizer.encode_batch(texts, max_length=10)
    theirs_tokenizer = transformers.BertTokenizer.from_pretrained(folder)
    batch_theirs = theirs_tokenizer(texts, padding="max_length", truncation=True, max_length=10, return_tensors="pt")
    model, _ = tinylm.pretrained.load(folder, dtype=np.float64)
    theirs = transformers.BertForMaskedLM.from_pretrained(folder).double().eval()
    with torch.no_grad():
        expected = theirs(**batch_theirs).logits
    assert_close(model(ids, attention_mask=mask), expected, 1e-10, 1e-10, name="logits of the tokenized texts")
    where = np.flatnonzero(ids[0] == tokenizer.mask_id)
    assert len(where) == 1 and tokenizer.decode(ids[0], skip_special_tokens=True) == "the cat sat on the."


# ---------------------------------------------------------------- bad inputs and files


def test_bad_inputs():
    bert = tiny_bert()
    with pytest.raises(tl.ShapeError, match=r"expected token ids of shape \(batch, time\), got shape \(3,\)"):
        bert(np.array([1, 2, 3]))
    with pytest.raises(tl.ShapeError, match=r"a sequence of 7 tokens is longer than the model's context_length .* 6"):
        bert(np.ones((1, 7), dtype=np.int64))
    with pytest.raises(tl.ShapeError, match=r"token_type_ids must have the shape of the ids \(1, 3\), got \(1, 2\)"):
        bert(np.array([[1, 2, 3]]), token_type_ids=np.array([[0, 1]]))
    with pytest.raises(tl.ShapeError, match=r"attention_mask must have the shape of the ids \(1, 3\) \(1 = real token"):
        bert(np.array([[1, 2, 3]]), attention_mask=np.array([1, 1, 0]))
    with pytest.raises(IndexError, match=r"ids must lie in \[0, 1\]"):
        bert(np.array([[1, 2, 3]]), token_type_ids=np.array([[0, 1, 2]]))


@pytest.fixture
def folder(folders, tmp_path):
    """A copy of the masked-LM folder to spoil."""
    return shutil.copytree(folders / "BertForMaskedLM", tmp_path / "spoiled")


def test_a_missing_tensor_is_named(folder):
    rewrite_tensors(folder, lambda tensors: tensors.pop("bert.encoder.layer.1.attention.self.key.bias"))
    with pytest.raises(PretrainedError, match=r"no tensor 'bert.encoder.layer.1.attention.self.key.bias'"):
        tinylm.pretrained.load(folder)


def test_a_tensor_of_the_wrong_shape_is_named(folder):
    rewrite_tensors(folder, lambda tensors: tensors.update({"cls.predictions.bias": np.zeros(39, dtype=np.float32)}))
    with pytest.raises(PretrainedError, match=r"tensor 'cls.predictions.bias' has shape \(39,\), but the config asks for \(40,\)"):
        tinylm.pretrained.load(folder)


def test_a_config_that_disagrees_with_the_weights(folder):
    rewrite_config(folder, lambda config: config.update(hidden_size=32))
    with pytest.raises(PretrainedError, match=r"'bert.embeddings.word_embeddings.weight' has shape \(40, 16\), but the config asks for \(40, 32\)"):
        tinylm.pretrained.load(folder)


def test_an_unknown_architecture(folder):
    rewrite_config(folder, lambda config: config.update(architectures=["BertForQuestionAnswering"]))
    with pytest.raises(PretrainedError, match=r"architecture 'BertForQuestionAnswering' is not one tinylm can build.*'BertForMaskedLM'"):
        tinylm.pretrained.load(folder)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda config: config.pop("num_attention_heads"), r"config.json lacks \['num_attention_heads'\]"),
        (lambda config: config.update(hidden_act="relu"), r"hidden_act 'relu' is not one tinylm's BERT has; it knows \['gelu'"),
        (lambda config: config.update(position_embedding_type="relative_key"), r"position_embedding_type 'relative_key'"),
    ],
    ids=["missing size", "activation", "positions"],
)
def test_a_config_tinylm_cannot_build(folder, change, message):
    rewrite_config(folder, change)
    with pytest.raises(PretrainedError, match=message):
        tinylm.pretrained.load(folder)


def test_a_pickle_is_read_only_on_request(transformers, folders, tmp_path):
    import torch

    model = transformers.BertForMaskedLM.from_pretrained(folders / "BertForMaskedLM")
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(folders / "BertForMaskedLM" / "config.json", folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(PretrainedError, match=r"only as pytorch_model.bin, a pickle.*allow_pickle=True"):
        tinylm.pretrained.load(folder)
    with pytest.warns(UserWarning, match="with pickle"):
        loaded, _ = tinylm.pretrained.load(folder, allow_pickle=True)
    safe, _ = tinylm.pretrained.load(folders / "BertForMaskedLM")
    ids, types, mask = batch()
    assert_close(loaded(ids, types, mask), safe(ids, types, mask), 0, 0, name="logits from the pickle")


def test_old_checkpoint_names_load(folder, folders):
    """bert-base-uncased's file says LayerNorm.gamma/beta and cls.predictions.decoder.bias."""

    def to_old_names(tensors):
        for name in [name for name in tensors if name.endswith("LayerNorm.weight") or name.endswith("LayerNorm.bias")]:
            tensors[name.replace(".weight", ".gamma").replace(".bias", ".beta")] = tensors.pop(name)
        tensors["cls.predictions.decoder.bias"] = tensors.pop("cls.predictions.bias")
        tensors["bert.pooler.dense.weight"] = np.zeros((16, 16), dtype=np.float32)  # left out by the masked LM

    rewrite_tensors(folder, to_old_names)
    old, _ = tinylm.pretrained.load(folder)
    new, _ = tinylm.pretrained.load(folders / "BertForMaskedLM")
    ids, types, mask = batch()
    assert_close(old(ids, types, mask), new(ids, types, mask), 0, 0, name="logits from old names")
