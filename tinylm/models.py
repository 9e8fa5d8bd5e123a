"""Language models chosen by name: "lstm", "gru", "rnn", "gpt" and "llama".

Every model here maps token ids to next-token logits the same way,

    logits, state = model(ids, state=None)      # ids (B, T) -> logits (B, T, vocab_size)

so one training loop, one sampler and one evaluator serve them all. A recurrent model
returns the hidden state after the last position (pass it back in to continue the text);
the GPT sees at most ``context_length`` tokens and keeps no state (it returns None),
unless it is given a key-value cache (``model.new_cache()``) as its state: then it reads
and extends that cache and returns it, which is how generation feeds one token at a time.
"gpt" and "llama" are the same ``nn.GPT`` with two recipes (GPT-2's parts, or LLaMA's:
RMSNorm, SwiGLU, rotary positions, no biases) and the same sizes, about equally many
parameters; either takes the other's switches, e.g. ``build_model("gpt", V, norm="rms")``.

``build_model(name, vocab_size, **config)`` makes a model and records everything needed
to make it again in ``model.config``; checkpoints store that config, so loading one
rebuilds the right model (``model_from_config``), and resuming a run with a different
model is caught with a clear error (``check_same_model``).
"""
from __future__ import annotations

from typing import Any

from . import nn
from .nn.kv_cache import KVCache
from .nn.transformer import GPT
from .tensor import Tensor


class ModelMismatchError(ValueError):
    """A checkpoint (or config) that belongs to a different model than the one asked for."""


class RecurrentLM(nn.Module):
    """Embedding -> recurrent layers (LSTM, GRU or Elman RNN) -> linear read-out.

        e = E[ids]                  (B, T, embed_dim)
        h, state = cell(e, state)   (B, T, hidden_size)   the recurrence
        logits = h Wᵀ + b           (B, T, vocab_size)
    """

    recurrent = True
    context_length = None
    CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 256, num_layers: int = 1, cell: str = "lstm"):
        if cell not in self.CELLS:
            raise ValueError(f"unknown recurrent cell {cell!r}: expected one of {sorted(self.CELLS)}")
        self.cell = cell
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.rnn = self.CELLS[cell](embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids, state=None) -> tuple[Tensor, Any]:
        hidden, state = self.rnn(self.embedding(ids), state)
        return self.head(hidden), state


class TransformerLM(GPT):
    """The GPT (``nn.transformer.GPT``) with the common ``(logits, state)`` interface; its
    state is a ``KVCache`` or None."""

    recurrent = False

    def forward(self, ids, state: KVCache | None = None) -> tuple[Tensor, KVCache | None]:
        return super().forward(ids, state), state


# The settings each model is built with unless the caller overrides them.
DEFAULTS: dict[str, dict[str, Any]] = {
    "lstm": {"embed_dim": 64, "hidden_size": 256, "num_layers": 1},
    "gru": {"embed_dim": 64, "hidden_size": 256, "num_layers": 1},
    "rnn": {"embed_dim": 64, "hidden_size": 256, "num_layers": 1},
    # 2 layers and a context of 64 (the default --seq-len): reaches validation loss ≤ 1.4 on
    # the built-in corpus in the 2-minute CPU budget of the demo (issue 6)
    "gpt": {"context_length": 64, "embed_dim": 128, "num_heads": 4, "num_layers": 2, "dropout": 0.0, "tie_weights": False, "layer_norm_eps": 1e-5,
            "norm": "layer", "mlp": "gelu", "positions": "learned", "bias": True, "num_kv_heads": None, "mlp_dim": None, "rope_theta": 10000.0},
}
# LLaMA's recipe at the gpt sizes: the SwiGLU width 2/3 · 4E keeps the MLP's 8E² parameters;
# without a position table and biases it is 2% smaller (422,272 against 431,360 parameters for
# the 103 characters of the built-in corpus), a fair match for comparing the recipes (issue 14)
DEFAULTS["llama"] = {**DEFAULTS["gpt"], "norm": "rms", "mlp": "swiglu", "positions": "rope", "bias": False}
TRANSFORMERS = ("gpt", "llama")
MODEL_NAMES = tuple(DEFAULTS)


def build_model(name: str, vocab_size: int, **config) -> nn.Module:
    """The model called ``name`` for a vocabulary of ``vocab_size`` tokens.

    ``config`` overrides entries of ``DEFAULTS[name]``; the complete settings are kept in
    ``model.config`` (a plain dict, saved in checkpoints).
    """
    if name not in DEFAULTS:
        raise ValueError(f"unknown model {name!r}: expected one of {list(MODEL_NAMES)}")
    unknown = sorted(set(config) - set(DEFAULTS[name]))
    if unknown:
        raise ValueError(f"model {name!r} has no setting {', '.join(unknown)}: its settings are {sorted(DEFAULTS[name])}")
    settings = {**DEFAULTS[name], **config}
    if name in TRANSFORMERS:
        model = TransformerLM(vocab_size, **settings)
    else:
        model = RecurrentLM(vocab_size, cell=name, **settings)
    model.config = {"model": name, "vocab_size": vocab_size, **settings}
    return model


def model_from_config(config: dict[str, Any]) -> nn.Module:
    """Rebuild a model from the ``config`` that ``build_model`` recorded."""
    settings = dict(config)
    return build_model(settings.pop("model"), settings.pop("vocab_size"), **settings)


def check_same_model(saved: dict[str, Any], current: dict[str, Any], source: str = "the checkpoint") -> None:
    """Raise ModelMismatchError naming the first settings that differ between two configs.

    A setting one config lacks counts as its default (``DEFAULTS``): a checkpoint saved
    before a model gained a setting still matches the model rebuilt from it.
    """
    defaults = DEFAULTS.get(current.get("model", saved.get("model")), {})
    differences = [
        f"{key} {saved.get(key, defaults.get(key))!r} (this run: {current.get(key, defaults.get(key))!r})"
        for key in sorted(set(saved) | set(current))
        if saved.get(key, defaults.get(key)) != current.get(key, defaults.get(key))
    ]
    if differences:
        raise ModelMismatchError(
            f"{source} holds a different model: {'; '.join(differences)}. "
            "Start a new run (another --out folder), or use the same model settings"
        )
