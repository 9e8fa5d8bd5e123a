"""GPT-2 from a Hugging Face folder: ``GPT2LMHeadModel``'s config and weights in tinylm's GPT.

tinylm's ``nn.GPT`` already has GPT-2's architecture (see its docstring), so opening
GPT-2 is a matter of settings and names. The settings come from ``config.json``:

    n_layer, n_embd, n_head     -> num_layers, embed_dim, num_heads
    n_positions, vocab_size     -> context_length, vocab_size
    layer_norm_epsilon          -> layer_norm_eps
    tie_word_embeddings         -> tie_weights (True for every GPT-2)
    resid_pdrop                 -> dropout (on the embeddings and on each block's two branches)

and the weights change names (``h.{i}`` is block i; the names start with
``transformer.`` in a folder that ``GPT2LMHeadModel.save_pretrained`` wrote, and
without it in the hub's original files):

    wte.weight (V, E)                   token_embedding.weight
    wpe.weight (C, E)                   position_embedding.weight
    h.{i}.ln_1.weight, .bias            blocks.{i}.attention_norm.weight, .bias
    h.{i}.attn.c_attn.weight (E, 3E)    blocks.{i}.attention.in_proj_weight (3E, E)    transposed
    h.{i}.attn.c_attn.bias (3E,)        blocks.{i}.attention.in_proj_bias
    h.{i}.attn.c_proj.weight (E, E)     blocks.{i}.attention.out_proj.weight          transposed
    h.{i}.attn.c_proj.bias (E,)         blocks.{i}.attention.out_proj.bias
    h.{i}.ln_2.weight, .bias            blocks.{i}.mlp_norm.weight, .bias
    h.{i}.mlp.c_fc.weight (E, 4E)       blocks.{i}.mlp.0.weight (4E, E)               transposed
    h.{i}.mlp.c_fc.bias (4E,)           blocks.{i}.mlp.0.bias
    h.{i}.mlp.c_proj.weight (4E, E)     blocks.{i}.mlp.2.weight (E, 4E)               transposed
    h.{i}.mlp.c_proj.bias (E,)          blocks.{i}.mlp.2.bias
    ln_f.weight, .bias                  final_norm.weight, .bias
    lm_head.weight (V, E)               the token embedding (tied), or head.weight when untied

Why transposed: GPT-2's layers are ``Conv1D``s (a name from OpenAI's TensorFlow code)
that compute y = x W + b with W stored (in, out); tinylm's ``Linear``, like PyTorch's,
stores W as (out, in) and computes y = x Wᵀ + b. ``c_attn``'s 3E output columns are the
queries', the keys' and the values' side by side, so its transpose is exactly
``in_proj_weight`` = [W_q; W_k; W_v], and both split the E features into heads the same way.

Not reproduced: dropout on the attention weights (``attn_pdrop``); dropout is only
active while training, so every logit and gradient in eval mode is exactly GPT-2's.
"""
from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np

from ..models import TransformerLM, build_model
from . import ARCHITECTURES
from .files import PretrainedError, take

# Activations that are GPT-2's tanh-approximated GELU (gelu_fast writes the same formula
# with √(2/π) rounded to 10 digits).
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
# Buffers that older files store beside the weights (the causal mask): not weights, not used.
BUFFERS = (".attn.bias", ".attn.masked_bias")


def gpt2_settings(config: dict) -> dict:
    """tinylm ``build_model("gpt", ...)`` settings for a Hugging Face GPT-2 ``config.json``."""
    _check_supported(config)
    try:
        width = config["n_embd"]
        return {
            "vocab_size": config["vocab_size"],
            "context_length": config["n_positions"],
            "embed_dim": width,
            "num_heads": config["n_head"],
            "num_layers": config["n_layer"],
            "dropout": config.get("resid_pdrop", 0.1),
            "tie_weights": config.get("tie_word_embeddings", True),
            "layer_norm_eps": config.get("layer_norm_epsilon", 1e-5),
        }
    except KeyError as error:
        raise PretrainedError(f"config.json of a GPT-2 lacks the setting {error.args[0]!r}") from None


def _check_supported(config: dict) -> None:
    """Refuse the rare GPT-2 variants whose computation tinylm's GPT does not do."""
    activation = config.get("activation_function", "gelu_new")
    if activation not in TANH_GELUS:
        raise PretrainedError(f"this GPT-2 uses activation_function={activation!r}; tinylm's GPT has GPT-2's tanh GELU ({', '.join(TANH_GELUS)})")
    inner = config.get("n_inner")
    if inner is not None and inner != 4 * config.get("n_embd", 0):
        raise PretrainedError(f"this GPT-2 has n_inner={inner}; tinylm's GPT has an MLP 4 × n_embd = {4 * config.get('n_embd', 0)} wide")
    for name, value in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False), ("add_cross_attention", False)):
        if config.get(name, value) != value:
            raise PretrainedError(f"this GPT-2 sets {name}={config[name]!r}; tinylm's GPT computes GPT-2 with {name}={value!r}")


def gpt2_state_dict(tensors: Mapping[str, np.ndarray], settings: dict) -> dict[str, np.ndarray]:
    """tinylm parameter name -> array, from a GPT-2 file's tensors (names, shapes and layouts converted)."""
    prefix = "transformer." if any(name.startswith("transformer.") for name in tensors) else ""
    V, C, E = settings["vocab_size"], settings["context_length"], settings["embed_dim"]
    used = {"lm_head.weight"}  # tied to wte in the usual GPT-2: the same values, read once

    def weight(name: str, shape: tuple[int, ...]) -> np.ndarray:
        used.add(prefix + name)
        return take(tensors, prefix + name, shape)

    def conv1d(name: str, fan_in: int, fan_out: int) -> np.ndarray:
        """A Conv1D weight (in, out) as a Linear weight (out, in), in row-major order."""
        return np.ascontiguousarray(weight(name, (fan_in, fan_out)).T)

    state = {"token_embedding.weight": weight("wte.weight", (V, E)), "position_embedding.weight": weight("wpe.weight", (C, E))}
    for i in range(settings["num_layers"]):
        hf, ours = f"h.{i}.", f"blocks.{i}."
        state.update({
            ours + "attention_norm.weight": weight(hf + "ln_1.weight", (E,)),
            ours + "attention_norm.bias": weight(hf + "ln_1.bias", (E,)),
            ours + "attention.in_proj_weight": conv1d(hf + "attn.c_attn.weight", E, 3 * E),
            ours + "attention.in_proj_bias": weight(hf + "attn.c_attn.bias", (3 * E,)),
            ours + "attention.out_proj.weight": conv1d(hf + "attn.c_proj.weight", E, E),
            ours + "attention.out_proj.bias": weight(hf + "attn.c_proj.bias", (E,)),
            ours + "mlp_norm.weight": weight(hf + "ln_2.weight", (E,)),
            ours + "mlp_norm.bias": weight(hf + "ln_2.bias", (E,)),
            ours + "mlp.0.weight": conv1d(hf + "mlp.c_fc.weight", E, 4 * E),
            ours + "mlp.0.bias": weight(hf + "mlp.c_fc.bias", (4 * E,)),
            ours + "mlp.2.weight": conv1d(hf + "mlp.c_proj.weight", 4 * E, E),
            ours + "mlp.2.bias": weight(hf + "mlp.c_proj.bias", (E,)),
        })
    state["final_norm.weight"] = weight("ln_f.weight", (E,))
    state["final_norm.bias"] = weight("ln_f.bias", (E,))
    if not settings["tie_weights"]:
        state["head.weight"] = take(tensors, "lm_head.weight", (V, E))
    unused = sorted(name for name in tensors if name not in used and not name.endswith(BUFFERS))
    if unused:  # a sign of another model's file under GPT-2's name
        warnings.warn(f"GPT-2: the file's tensors {unused[:5]}{' …' if len(unused) > 5 else ''} are not GPT-2 weights and were not used", stacklevel=4)
    return state


def build_gpt2(config: dict, tensors: Mapping[str, np.ndarray]) -> TransformerLM:
    """The tinylm GPT of a ``GPT2LMHeadModel`` folder, its weights loaded.

    A model from ``build_model("gpt", ...)``: ``model.config`` records its settings, so the
    Trainer's checkpoints rebuild it (``models.model_from_config``).
    """
    settings = gpt2_settings(config)
    model = build_model("gpt", **settings)
    model.load_state_dict(gpt2_state_dict(tensors, settings))
    return model


ARCHITECTURES["GPT2LMHeadModel"] = build_gpt2
