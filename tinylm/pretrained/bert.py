"""Hugging Face BERT folders as tinylm models (``tinylm.nn.bert``): sizes from the config,
weights renamed from Hugging Face's names to tinylm's.

    model, config = tinylm.pretrained.load("path/to/bert-base-uncased")   # a BertForMaskedLM

Registered architectures: ``BertModel``, ``BertForMaskedLM``, ``BertForSequenceClassification``.
Each tinylm parameter comes from one Hugging Face tensor of the same layout
(``hugging_face_names`` lists them all), except that

* query, key and value, (E, E) each, are stacked into ``MultiheadAttention``'s
  ``in_proj_weight`` (3E, E) (and their biases into ``in_proj_bias``);
* the masked-LM decoder's weight is the word embedding (tied), so it is not read again;
* older checkpoints (bert-base-uncased among them) call a LayerNorm's weight and bias
  ``gamma`` and ``beta``, and some call the decoder's bias ``cls.predictions.decoder.bias``:
  both are read under their current names;
* a pooler in a masked-LM checkpoint is left out (tinylm's BertModel has none; only
  BertForSequenceClassification has one).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..nn import BertForMaskedLM, BertForSequenceClassification, BertModel, Module
from . import ARCHITECTURES
from .files import PretrainedError, take

# Hugging Face's hidden_act -> F.gelu's approximate
ACTIVATIONS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}
REQUIRED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings")
LEGACY_NAMES = {"LayerNorm.gamma": "LayerNorm.weight", "LayerNorm.beta": "LayerNorm.bias"}


def bert_options(config: dict) -> dict:
    """``BertModel``'s keyword arguments from a Hugging Face BERT config."""
    missing = [key for key in REQUIRED if key not in config]
    if missing:
        raise PretrainedError(f"config.json lacks {missing}: a BERT config names {list(REQUIRED)}")
    activation = config.get("hidden_act", "gelu")
    if activation not in ACTIVATIONS:
        raise PretrainedError(f"config.json: hidden_act {activation!r} is not one tinylm's BERT has; it knows {sorted(ACTIVATIONS)}")
    positions = config.get("position_embedding_type", "absolute")
    if positions != "absolute":
        raise PretrainedError(f"config.json: position_embedding_type {positions!r}: tinylm's BERT has learned absolute positions only")
    return dict(
        vocab_size=config["vocab_size"],
        context_length=config["max_position_embeddings"],
        embed_dim=config["hidden_size"],
        num_heads=config["num_attention_heads"],
        num_layers=config["num_hidden_layers"],
        mlp_dim=config["intermediate_size"],
        type_vocab_size=config.get("type_vocab_size", 2),
        layer_norm_eps=config.get("layer_norm_eps", 1e-12),
        dropout=config.get("hidden_dropout_prob", 0.1),
        approximate=ACTIVATIONS[activation],
        pad_token_id=config.get("pad_token_id", 0),
    )


def _weight_and_bias(ours: str, theirs: str) -> dict[str, list[str]]:
    return {f"{ours}.weight": [f"{theirs}.weight"], f"{ours}.bias": [f"{theirs}.bias"]}


def encoder_names(bert: BertModel, ours: str = "", theirs: str = "") -> dict[str, list[str]]:
    """tinylm parameter name -> the Hugging Face tensor names it is made of (stacked along the
    first axis), for an encoder whose names start with ``ours`` here and ``theirs`` there."""
    names = {
        "token_embedding.weight": ["embeddings.word_embeddings.weight"],
        "position_embedding.weight": ["embeddings.position_embeddings.weight"],
        "token_type_embedding.weight": ["embeddings.token_type_embeddings.weight"],
        **_weight_and_bias("embedding_norm", "embeddings.LayerNorm"),
    }
    for i in range(len(bert.layers)):
        layer, hf = f"layers.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            names[f"{layer}attention.in_proj_{kind}"] = [f"{hf}attention.self.{part}.{kind}" for part in ("query", "key", "value")]
        names |= _weight_and_bias(layer + "attention.out_proj", hf + "attention.output.dense")
        names |= _weight_and_bias(layer + "attention_norm", hf + "attention.output.LayerNorm")
        names |= _weight_and_bias(layer + "mlp.0", hf + "intermediate.dense")
        names |= _weight_and_bias(layer + "mlp.2", hf + "output.dense")
        names |= _weight_and_bias(layer + "mlp_norm", hf + "output.LayerNorm")
    return {ours + name: [theirs + source for source in sources] for name, sources in names.items()}


def hugging_face_names(model: Module) -> dict[str, list[str]]:
    """tinylm parameter name -> Hugging Face tensor name(s), for every parameter of ``model``
    (a BertModel, BertForMaskedLM or BertForSequenceClassification)."""
    if isinstance(model, BertModel):
        return encoder_names(model)
    names = encoder_names(model.bert, "bert.", "bert.")
    if isinstance(model, BertForMaskedLM):
        names |= _weight_and_bias("transform", "cls.predictions.transform.dense")
        names |= _weight_and_bias("transform_norm", "cls.predictions.transform.LayerNorm")
        names["decoder_bias"] = ["cls.predictions.bias"]
    else:
        names |= _weight_and_bias("pooler", "bert.pooler.dense")
        names |= _weight_and_bias("classifier", "classifier")
    return names


def state_from(model: Module, tensors: Mapping[str, np.ndarray], names: Mapping[str, list[str]]) -> dict[str, np.ndarray]:
    """``model``'s state dict made from Hugging Face ``tensors`` (weights, or gradients),
    each checked to have the shape that ``model`` asks for (``take``)."""
    state = {}
    for name, parameter in model.named_parameters():
        sources = names[name]
        shape = (parameter.shape[0] // len(sources),) + parameter.shape[1:]
        parts = [take(tensors, source, shape) for source in sources]
        state[name] = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return state


def current_names(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The tensors under today's names (``gamma``/``beta`` -> ``weight``/``bias``, the decoder's bias)."""
    renamed = {}
    for name, array in tensors.items():
        for old, new in LEGACY_NAMES.items():
            if name.endswith(old):
                name = name[: -len(old)] + new
        renamed[name] = array
    if "cls.predictions.bias" not in renamed and "cls.predictions.decoder.bias" in renamed:
        renamed["cls.predictions.bias"] = renamed["cls.predictions.decoder.bias"]
    return renamed


def _loaded(model: Module, tensors: Mapping[str, np.ndarray], names: Mapping[str, list[str]]) -> Module:
    model.load_state_dict(state_from(model, current_names(tensors), names))
    return model.eval()


def build_bert_model(config: dict, tensors: Mapping[str, np.ndarray]) -> BertModel:
    """A ``BertModel`` folder (its names have no ``bert.`` in front; a pooler is left out)."""
    model = BertModel(**bert_options(config))
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""
    return _loaded(model, tensors, encoder_names(model, theirs=prefix))


def build_masked_lm(config: dict, tensors: Mapping[str, np.ndarray]) -> BertForMaskedLM:
    model = BertForMaskedLM(BertModel(**bert_options(config)))
    return _loaded(model, tensors, hugging_face_names(model))


def build_sequence_classifier(config: dict, tensors: Mapping[str, np.ndarray]) -> BertForSequenceClassification:
    """The number of labels from ``id2label`` (or ``num_labels``); dropout from ``classifier_dropout``."""
    options = bert_options(config)
    num_labels = len(config["id2label"]) if "id2label" in config else config.get("num_labels", 2)
    dropout = config.get("classifier_dropout")
    model = BertForSequenceClassification(BertModel(**options), num_labels, options["dropout"] if dropout is None else dropout)
    return _loaded(model, tensors, hugging_face_names(model))


ARCHITECTURES["BertModel"] = build_bert_model
ARCHITECTURES["BertForMaskedLM"] = build_masked_lm
ARCHITECTURES["BertForSequenceClassification"] = build_sequence_classifier
