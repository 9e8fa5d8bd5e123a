"""Hugging Face model folders for the tests: small GPT-2s and LLaMAs written by transformers,
and spoiling a folder's weights or config to test the errors.

A module of its own (as ``assertions.py``) so that several test files can share it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

SMALL = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=300, n_positions=24)


def small_gpt2(folder: Path, seed: int = 0, **config):
    """A random ``GPT2LMHeadModel`` (eval mode, float64) saved with ``save_pretrained`` in ``folder``.

    Every parameter is drawn at random, LayerNorm weights and biases too (their usual start
    at 1 and 0 would leave mistakes in them unseen). The folder holds float32 weights, as
    a real one does; the returned model is float64 with those same values.
    """
    torch = pytest.importorskip("torch", reason="PyTorch not installed: cross-checks against it are skipped")
    transformers = pytest.importorskip("transformers", reason="transformers not installed: GPT-2 cross-checks are skipped")
    settings = {**SMALL, **config}
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(**settings, bos_token_id=settings["vocab_size"] - 1, eos_token_id=settings["vocab_size"] - 1)
    )
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.normal_(1.0 if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")) else 0.0, 0.2)
    model.save_pretrained(folder)
    return model.eval().double()


def small_gpt2_with_tokenizer(folder: Path, seed: int = 0, **config):
    """``small_gpt2`` with GPT-2's tokenizer files beside it (vocab.json, merges.txt): a
    byte-level BPE of a few dozen merges and ``<|endoftext|>``, its size the model's vocabulary."""
    from tinylm.data import BPETokenizer

    text = "a small corpus, a small test; 小小的语料。 " * 20
    tokenizer = BPETokenizer.train(text, num_merges=40, special_tokens=["<|endoftext|>"])
    model = small_gpt2(folder, seed, **{"vocab_size": tokenizer.vocab_size, **config})
    tokenizer.save_pretrained(folder)
    return model


SMALL_LLAMA = dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, num_key_value_heads=2, intermediate_size=48,
                   vocab_size=300, max_position_embeddings=24)


def small_llama(folder: Path, seed: int = 0, **config):
    """A random ``LlamaForCausalLM`` (eval mode, float64) saved with ``save_pretrained`` in ``folder``:
    grouped-query attention (4 query heads, 2 key-value heads); every parameter drawn at
    random, the RMSNorm weights around 1. The folder holds float32 weights.

    The returned model computes its rotary cos/sin tables and its RMSNorms in the model's
    dtype, as tinylm does: transformers computes both in float32 whatever the model's dtype,
    which moves float64 logits by about 2e-6 and would hide a real mistake of that size."""
    torch = pytest.importorskip("torch", reason="PyTorch not installed: cross-checks against it are skipped")
    transformers = pytest.importorskip("transformers", reason="transformers not installed: LLaMA cross-checks are skipped")
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**{**SMALL_LLAMA, **config}, bos_token_id=0, eos_token_id=0))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.normal_(1.0 if name.endswith("norm.weight") else 0.0, 0.2)
    model.save_pretrained(folder)
    rotary, head_dim = model.model.rotary_emb, model.config.hidden_size // model.config.num_attention_heads
    frequencies = model.config.rope_parameters["rope_theta"] ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)

    def float64_tables(x, position_ids):
        angles = position_ids[..., None].double() * frequencies
        angles = torch.cat((angles, angles), dim=-1)  # the half-split layout: pair j is (j, j + D/2)
        return angles.cos().to(x.dtype), angles.sin().to(x.dtype)

    rotary.forward = float64_tables
    for module in model.modules():
        if type(module).__name__ == "LlamaRMSNorm":
            module.forward = _rms_norm_in_the_input_dtype(module, torch)
    return model.eval().double()


def _rms_norm_in_the_input_dtype(norm, torch):
    """LlamaRMSNorm's formula, w · x / √(mean(x²) + eps), without its cast to float32."""
    return lambda x: norm.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon))


def rewrite_tensors(folder: Path, change) -> None:
    """Apply ``change`` to the dict of the folder's model.safetensors and write it back."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    change(tensors)
    save_file(tensors, folder / "model.safetensors")


def rewrite_config(folder: Path, change) -> None:
    """Apply ``change`` to the folder's parsed config.json and write it back."""
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))
