"""LLaMA from a Hugging Face folder: ``LlamaForCausalLM``'s config and weights in tinylm's GPT.

tinylm's ``nn.GPT`` with LLaMA's recipe (``build_model("llama", ...)``: RMSNorm, SwiGLU,
rotary positions, no biases, grouped-query attention) computes what ``LlamaForCausalLM``
computes. The settings come from ``config.json``:

    num_hidden_layers, hidden_size       -> num_layers, embed_dim
    num_attention_heads                  -> num_heads
    num_key_value_heads                  -> num_kv_heads (default: num_attention_heads)
    intermediate_size                    -> mlp_dim
    max_position_embeddings, vocab_size  -> context_length, vocab_size
    rms_norm_eps                         -> layer_norm_eps
    rope_theta                           -> rope_theta (in transformers 5: rope_parameters["rope_theta"])
    tie_word_embeddings                  -> tie_weights

and the weights change names (``model.layers.{i}`` is block i):

    model.embed_tokens.weight (V, E)            token_embedding.weight
    layers.{i}.input_layernorm.weight           blocks.{i}.attention_norm.weight
    layers.{i}.self_attn.q_proj.weight (E, E)   blocks.{i}.attention.in_proj_weight, rows 0 … E-1           rows permuted
    layers.{i}.self_attn.k_proj.weight          … rows E … E + H_kv·D - 1                                    rows permuted
    layers.{i}.self_attn.v_proj.weight          … the last H_kv·D rows
    layers.{i}.self_attn.o_proj.weight          blocks.{i}.attention.out_proj.weight
    layers.{i}.post_attention_layernorm.weight  blocks.{i}.mlp_norm.weight
    layers.{i}.mlp.gate_proj.weight (F, E)      blocks.{i}.mlp.w1.weight   (the one through SiLU)
    layers.{i}.mlp.up_proj.weight (F, E)        blocks.{i}.mlp.w3.weight
    layers.{i}.mlp.down_proj.weight (E, F)      blocks.{i}.mlp.w2.weight
    model.norm.weight                           final_norm.weight
    lm_head.weight (V, E)                       head.weight (or the token embedding, when tied)

The three projections are stacked into tinylm's one ``in_proj_weight`` (see
``nn.MultiheadAttention``). **Why the rows of W_q and W_k are permuted:** Hugging Face's
rotary embedding turns the pairs (x_j, x_{j + D/2}) of each head ("rotate_half"), tinylm's
the interleaved pairs (x_{2j}, x_{2j+1}) (``tinylm/functional/rotary.py``). Reordering each
head's D rows as 0, D/2, 1, D/2 + 1, … puts Hugging Face's pair j at tinylm's features 2j
and 2j + 1, where tinylm turns it by the same angle; a score q·k sums over the same pairs
either way, so the attention is the same. The values and the output are not turned, so
their rows stay as they are.

The tokenizer is not read: LLaMA's is a SentencePiece model (``tokenizer.model``), which
tinylm has no reader for; ``load`` gives the model, and the ids come from elsewhere.

Not supported (refused with a message): rope scaling (LLaMA 3.1's "llama3" and the others),
biases in the attention or the MLP, an activation other than SiLU, a head size other than
hidden_size / num_attention_heads.
"""
from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np

from ..models import TransformerLM, build_model
from . import ARCHITECTURES
from .files import PretrainedError, take


def llama_settings(config: dict) -> dict:
    """tinylm ``build_model("llama", ...)`` settings for a Hugging Face LLaMA ``config.json``."""
    _check_supported(config)
    try:
        heads = config["num_attention_heads"]
        rope = config.get("rope_parameters") or {}
        return {
            "vocab_size": config["vocab_size"],
            "context_length": config["max_position_embeddings"],
            "embed_dim": config["hidden_size"],
            "num_heads": heads,
            "num_kv_heads": config.get("num_key_value_heads") or heads,
            "num_layers": config["num_hidden_layers"],
            "mlp_dim": config["intermediate_size"],
            "layer_norm_eps": config.get("rms_norm_eps", 1e-6),
            "rope_theta": float(rope.get("rope_theta", config.get("rope_theta", 10000.0))),
            "tie_weights": config.get("tie_word_embeddings", False),
        }
    except KeyError as error:
        raise PretrainedError(f"config.json of a LLaMA lacks the setting {error.args[0]!r}") from None


def _check_supported(config: dict) -> None:
    """Refuse the LLaMA variants whose computation tinylm's GPT does not do."""
    rope_type = (config.get("rope_parameters") or {}).get("rope_type", "default")
    if config.get("rope_scaling") or rope_type != "default":
        raise PretrainedError(f"this LLaMA scales its rotary positions (rope type {rope_type!r}); tinylm's rotary embedding has no scaling")
    for name in ("attention_bias", "mlp_bias"):
        if config.get(name):
            raise PretrainedError(f"this LLaMA sets {name}=True; tinylm's LLaMA recipe has no biases")
    if config.get("hidden_act", "silu") != "silu":
        raise PretrainedError(f"this LLaMA uses hidden_act={config['hidden_act']!r}; tinylm's SwiGLU has SiLU")
    width, heads = config.get("hidden_size", 0), config.get("num_attention_heads", 1)
    if config.get("head_dim", width // heads) != width // heads:
        raise PretrainedError(f"this LLaMA has head_dim={config['head_dim']}; tinylm's heads have hidden_size / num_attention_heads = {width // heads} features")


def interleaving_rows(heads: int, head_dim: int) -> np.ndarray:
    """The row order that takes Hugging Face's half-split rotary pairs to tinylm's
    interleaved ones, head by head: 0, D/2, 1, D/2 + 1, …, D/2 - 1, D - 1 (plus h·D)."""
    within = np.arange(head_dim).reshape(2, head_dim // 2).T.reshape(-1)
    return (np.arange(heads)[:, None] * head_dim + within).reshape(-1)


def llama_state_dict(tensors: Mapping[str, np.ndarray], settings: dict) -> dict[str, np.ndarray]:
    """tinylm parameter name -> array, from a LLaMA file's tensors (names, stacking and the rotary row order converted)."""
    V, E, width = settings["vocab_size"], settings["embed_dim"], settings["mlp_dim"]
    H, K = settings["num_heads"], settings["num_kv_heads"]
    D = E // H
    used = set()

    def weight(name: str, shape: tuple[int, ...]) -> np.ndarray:
        used.add(name)
        return take(tensors, name, shape)

    state = {"token_embedding.weight": weight("model.embed_tokens.weight", (V, E))}
    for i in range(settings["num_layers"]):
        hf, ours = f"model.layers.{i}.", f"blocks.{i}."
        q = weight(hf + "self_attn.q_proj.weight", (H * D, E))[interleaving_rows(H, D)]
        k = weight(hf + "self_attn.k_proj.weight", (K * D, E))[interleaving_rows(K, D)]
        v = weight(hf + "self_attn.v_proj.weight", (K * D, E))
        state.update({
            ours + "attention_norm.weight": weight(hf + "input_layernorm.weight", (E,)),
            ours + "attention.in_proj_weight": np.concatenate([q, k, v]),
            ours + "attention.out_proj.weight": weight(hf + "self_attn.o_proj.weight", (E, E)),
            ours + "mlp_norm.weight": weight(hf + "post_attention_layernorm.weight", (E,)),
            ours + "mlp.w1.weight": weight(hf + "mlp.gate_proj.weight", (width, E)),
            ours + "mlp.w3.weight": weight(hf + "mlp.up_proj.weight", (width, E)),
            ours + "mlp.w2.weight": weight(hf + "mlp.down_proj.weight", (E, width)),
        })
    state["final_norm.weight"] = weight("model.norm.weight", (E,))
    if settings["tie_weights"]:
        used.add("lm_head.weight")  # when a file stores it, it is the token embedding again
    else:
        state["head.weight"] = weight("lm_head.weight", (V, E))
    unused = sorted(name for name in tensors if name not in used and not name.endswith("rotary_emb.inv_freq"))
    if unused:  # a sign of another model's file under LLaMA's name
        warnings.warn(f"LLaMA: the file's tensors {unused[:5]}{' …' if len(unused) > 5 else ''} are not LLaMA weights and were not used", stacklevel=4)
    return state


def build_llama(config: dict, tensors: Mapping[str, np.ndarray]) -> TransformerLM:
    """The tinylm GPT (LLaMA's recipe) of a ``LlamaForCausalLM`` folder, its weights loaded.

    A model from ``build_model("llama", ...)``: ``model.config`` records its settings, so
    the Trainer's checkpoints rebuild it (``models.model_from_config``).
    """
    settings = llama_settings(config)
    model = build_model("llama", **settings)
    model.load_state_dict(llama_state_dict(tensors, settings))
    return model


ARCHITECTURES["LlamaForCausalLM"] = build_llama
