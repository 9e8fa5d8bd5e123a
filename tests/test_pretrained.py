"""tinylm.pretrained: Hugging Face GPT-2 and LLaMA folders opened as tinylm models, equal to
transformers (logits and every weight's gradient); bad folders, one clear error each."""
from __future__ import annotations

import json

import numpy as np
import pytest
from assertions import assert_close
from hf_folders import SMALL, SMALL_LLAMA, rewrite_config, rewrite_tensors, small_gpt2, small_llama

import tinylm as tl
import tinylm.functional as F
from tinylm import pretrained
from tinylm.data import BPETokenizer
from tinylm.lm import TrainConfig, Trainer, generate_tokens, load_checkpoint
from tinylm.pretrained import PretrainedError
from tinylm.pretrained.gpt2 import gpt2_settings, gpt2_state_dict
from tinylm.pretrained.llama import interleaving_rows, llama_settings, llama_state_dict

IDS = np.random.default_rng(0).integers(0, SMALL["vocab_size"], (2, 13))
TARGETS = np.random.default_rng(1).integers(0, SMALL["vocab_size"], (2, 13))
# the tolerances: logits equal to 1e-6 in float64, 1e-4 in float32
TOLERANCE = {np.float64: 1e-6, np.float32: 1e-4}


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "gpt2"


def torch_logits_and_grads(hf, dtype, ids=IDS):
    """transformers' logits and the gradient of the mean cross-entropy w.r.t. every weight."""
    import torch

    hf = hf.to(torch.float64 if dtype == np.float64 else torch.float32)
    hf.zero_grad()
    logits = hf(torch.tensor(ids)).logits
    torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.tensor(TARGETS).reshape(-1)).backward()
    return logits.detach().numpy(), {name: p.grad.numpy() for name, p in hf.named_parameters()}


def tinylm_logits_and_grads(model, ids=IDS):
    model.eval()
    logits, _ = model(ids)
    F.cross_entropy(logits, TARGETS).backward()
    return logits, {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpt2_logits_and_gradients_equal_transformers(folder, dtype, device):
    hf = small_gpt2(folder)
    model, config = pretrained.load(folder, dtype=dtype, device=device)
    assert type(model).__name__ == "TransformerLM" and config["architectures"] == ["GPT2LMHeadModel"]
    assert model.parameters()[0].dtype == dtype and model.parameters()[0].device == device
    assert tl.get_default_dtype() == np.float32, "load must leave the default dtype as it was"
    logits, grads = tinylm_logits_and_grads(model)
    expected_logits, torch_grads = torch_logits_and_grads(hf, dtype)
    tolerance = TOLERANCE[dtype]
    assert_close(logits, expected_logits, rtol=0, atol=tolerance, name="logits")
    # the same conversion as the weights (names, Conv1D transposes) maps PyTorch's gradients
    expected_grads = gpt2_state_dict(torch_grads, gpt2_settings(config))
    assert set(grads) == set(expected_grads)
    for name, grad in grads.items():
        scale = max(1.0, float(np.abs(expected_grads[name]).max()))
        assert_close(grad, expected_grads[name], rtol=0, atol=tolerance * scale, name=f"gradient of {name}")


def test_the_model_is_gpt2_shaped_and_tied(folder):
    small_gpt2(folder)
    model, _ = pretrained.load(folder)
    assert model.tie_weights and model.head is None
    assert model.config == {
        "model": "gpt", "vocab_size": 300, "context_length": 24, "embed_dim": 64, "num_heads": 4, "num_layers": 2,
        "dropout": 0.1, "tie_weights": True, "layer_norm_eps": 1e-5,
        "norm": "layer", "mlp": "gelu", "positions": "learned", "bias": True, "num_kv_heads": None, "mlp_dim": None, "rope_theta": 10000.0,
    }
    assert model.blocks[0].mlp_norm.eps == 1e-5


def test_a_float64_file_keeps_its_precision(folder):
    hf = small_gpt2(folder)
    hf.save_pretrained(folder)  # now float64 in the file
    model, _ = pretrained.load(folder, dtype=np.float64)
    logits, _ = tinylm_logits_and_grads(model)
    expected, _ = torch_logits_and_grads(hf, np.float64)
    assert_close(logits, expected, rtol=0, atol=1e-10, name="logits")


def test_sharded_safetensors(folder):
    hf = small_gpt2(folder)
    hf.float().save_pretrained(folder, max_shard_size="100KB")
    assert (folder / "model.safetensors.index.json").is_file()
    (folder / "model.safetensors").unlink(missing_ok=True)
    model, _ = pretrained.load(folder, dtype=np.float64)
    expected, _ = torch_logits_and_grads(hf, np.float64)
    assert_close(tinylm_logits_and_grads(model)[0], expected, rtol=0, atol=1e-6, name="logits")


def test_a_pickle_is_read_only_on_request_and_with_a_warning(folder):
    import torch

    hf = small_gpt2(folder)
    (folder / "model.safetensors").unlink()
    torch.save(hf.float().state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(PretrainedError, match="only as pytorch_model.bin, a pickle: loading a pickle runs any code"):
        pretrained.load(folder)
    with pytest.warns(UserWarning, match="with pickle .allow_pickle=True.: only do this for files you trust"):
        model, _ = pretrained.load(folder, allow_pickle=True, dtype=np.float64)
    logits, grads = tinylm_logits_and_grads(model)
    expected_logits, torch_grads = torch_logits_and_grads(hf, np.float64)
    assert_close(logits, expected_logits, rtol=0, atol=1e-6, name="logits")
    expected_grads = gpt2_state_dict(torch_grads, gpt2_settings(json.loads((folder / "config.json").read_text())))
    for name, grad in grads.items():
        assert_close(grad, expected_grads[name], rtol=0, atol=1e-6, name=f"gradient of {name}")


@pytest.mark.parametrize("small_model", [small_gpt2, small_llama], ids=["gpt2", "llama"])
def test_cached_greedy_generation_equals_transformers_generate(folder, small_model):
    """A prompt of 5 tokens and 19 new ones fill the context of 24 (tinylm's window then
    slides on; transformers cannot go past its positions). LLaMA: the keys in the cache are
    turned by their positions, each new query by its own."""
    import torch

    hf = small_model(folder)
    model, _ = pretrained.load(folder, dtype=np.float64)
    prompt = [int(i) for i in IDS[0, :5]]
    ours = list(generate_tokens(model, prompt, 19, temperature=0))
    theirs = hf.generate(
        torch.tensor([prompt]), max_new_tokens=19, min_new_tokens=19, do_sample=False, use_cache=True,
        output_logits=True, return_dict_in_generate=True, pad_token_id=0,
    )
    assert [token for token, _ in ours] == theirs.sequences[0, 5:].tolist()
    for step, ((_, logits), expected) in enumerate(zip(ours, theirs.logits)):
        assert_close(logits, expected[0], rtol=0, atol=1e-6, name=f"logits of step {step}")


# ------------------------------------------------------------------ LLaMA


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_llama_logits_and_gradients_equal_transformers(folder, dtype, device, tied):
    """Grouped-query attention, rotary positions (the rows of W_q and W_k reordered from the
    half-split pairs), RMSNorm, SwiGLU: logits and the gradient of every weight."""
    hf = small_llama(folder, tie_word_embeddings=tied)
    model, config = pretrained.load(folder, dtype=dtype, device=device)
    assert config["architectures"] == ["LlamaForCausalLM"] and model.config["model"] == "llama"
    assert model.blocks[0].attention.num_kv_heads == 2 and model.tie_weights is tied
    logits, grads = tinylm_logits_and_grads(model)
    expected_logits, torch_grads = torch_logits_and_grads(hf, dtype)
    tolerance = TOLERANCE[dtype]
    assert_close(logits, expected_logits, rtol=0, atol=tolerance, name="logits")
    expected_grads = llama_state_dict(torch_grads, llama_settings(config))  # the weights' conversion maps the gradients too
    assert set(grads) == set(expected_grads)
    for name, grad in grads.items():
        scale = max(1.0, float(np.abs(expected_grads[name]).max()))
        assert_close(grad, expected_grads[name], rtol=0, atol=tolerance * scale, name=f"gradient of {name}")


def test_llama_rows_are_interleaved_head_by_head():
    np.testing.assert_array_equal(interleaving_rows(2, 4), [0, 2, 1, 3, 4, 6, 5, 7])
    np.testing.assert_array_equal(interleaving_rows(1, 6), [0, 3, 1, 4, 2, 5])


def test_llama_settings(folder):
    small_llama(folder)
    model, _ = pretrained.load(folder)
    assert {key: model.config[key] for key in ("num_heads", "num_kv_heads", "mlp_dim", "layer_norm_eps", "rope_theta", "context_length")} == {
        "num_heads": 4, "num_kv_heads": 2, "mlp_dim": 48, "layer_norm_eps": 1e-6, "rope_theta": 10000.0, "context_length": 24,
    }
    assert (model.config["norm"], model.config["mlp"], model.config["positions"], model.config["bias"]) == ("rms", "swiglu", "rope", False)


BAD_LLAMAS = {
    "rope scaling": (lambda c: c.update(rope_parameters={"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0}), r"scales its rotary positions \(rope type 'llama3'\)"),
    "old-style rope scaling": (lambda c: c.update(rope_scaling={"type": "linear", "factor": 2.0}), "scales its rotary positions"),
    "attention biases": (lambda c: c.update(attention_bias=True), "sets attention_bias=True; tinylm's LLaMA recipe has no biases"),
    "another activation": (lambda c: c.update(hidden_act="gelu"), "uses hidden_act='gelu'; tinylm's SwiGLU has SiLU"),
    "another head size": (lambda c: c.update(head_dim=4), r"has head_dim=4; tinylm's heads have hidden_size / num_attention_heads = 8"),
    "a missing setting": (lambda c: c.pop("intermediate_size"), "config.json of a LLaMA lacks the setting 'intermediate_size'"),
}


@pytest.mark.parametrize("spoil, message", list(BAD_LLAMAS.values()), ids=list(BAD_LLAMAS))
def test_a_llama_tinylm_cannot_compute_is_refused(folder, spoil, message):
    small_llama(folder)
    rewrite_config(folder, spoil)
    with pytest.raises(PretrainedError, match=message):
        pretrained.load(folder)


# ------------------------------------------------------------------ bad folders


def in_tensors(change):
    return lambda folder: rewrite_tensors(folder, change)


def in_config(change):
    return lambda folder: rewrite_config(folder, change)


BAD_FOLDERS = {
    "a missing tensor": (
        in_tensors(lambda tensors: tensors.pop("transformer.h.1.mlp.c_fc.bias")),
        r"the weights have no tensor 'transformer.h.1.mlp.c_fc.bias' .tensors with the same last part",
    ),
    "a wrong shape": (
        in_tensors(lambda tensors: tensors.update({"transformer.wpe.weight": np.zeros((10, 64), np.float32)})),
        r"tensor 'transformer.wpe.weight' has shape \(10, 64\), but the config asks for \(24, 64\)",
    ),
    "another architecture": (
        in_config(lambda config: config.update(architectures=["GPT2DoubleHeadsModel"])),
        r"architecture 'GPT2DoubleHeadsModel' is not one tinylm can build; it knows \[.*'GPT2LMHeadModel'",
    ),
    "another activation": (
        in_config(lambda config: config.update(activation_function="relu")),
        r"activation_function='relu'; tinylm's GPT has GPT-2's tanh GELU",
    ),
    "another MLP width": (in_config(lambda config: config.update(n_inner=100)), r"n_inner=100; tinylm's GPT has an MLP 4 × n_embd = 256 wide"),
    "attention scaled by depth": (
        in_config(lambda config: config.update(scale_attn_by_inverse_layer_idx=True)),
        r"sets scale_attn_by_inverse_layer_idx=True",
    ),
    "a missing setting": (in_config(lambda config: config.pop("n_layer")), r"config.json of a GPT-2 lacks the setting 'n_layer'"),
}


@pytest.mark.parametrize("spoil, message", BAD_FOLDERS.values(), ids=BAD_FOLDERS)
def test_a_bad_folder_gets_one_clear_error(folder, spoil, message):
    small_gpt2(folder)
    spoil(folder)
    with pytest.raises(PretrainedError, match=message):
        pretrained.load(folder)


def test_tensors_of_another_model_are_named_in_a_warning(folder):
    small_gpt2(folder)
    rewrite_tensors(folder, lambda tensors: tensors.update({"multiple_choice_head.summary.weight": np.zeros((1, 64), np.float32)}))
    with pytest.warns(UserWarning, match=r"tensors \['multiple_choice_head.summary.weight'\] are not GPT-2 weights"):
        pretrained.load(folder)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(PretrainedError, match="no model folder at .*nope: expected a folder with config.json"):
        pretrained.load(tmp_path / "nope")
    with pytest.raises(PretrainedError, match="has no config.json"):
        pretrained.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(PretrainedError, match="config.json is not valid JSON"):
        pretrained.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(PretrainedError, match="has no weights: expected model.safetensors"):
        pretrained.load(tmp_path)


# ------------------------------------------------------------------ fine-tuning


@pytest.mark.trains
def test_fine_tuning_a_loaded_gpt2_lowers_the_loss_and_checkpoints_rebuild_it(folder, tmp_path):
    small_gpt2(folder)
    model, _ = pretrained.load(folder)
    model.dropout.p = 0.0  # a repeatable run
    tokenizer = BPETokenizer({byte: bytes([byte]) for byte in range(256)}, [])  # ids below the model's 300
    ids = tokenizer.encode("abcabdabe " * 80)
    config = TrainConfig(steps=30, batch_size=8, seq_len=16, lr=1e-3, warmup_steps=2, eval_every=0)
    trainer = Trainer(model, tokenizer, ids[:500], ids[500:], config, tmp_path / "run")
    history = trainer.train(progress=False)
    assert np.mean(history.train_losses[-5:]) < 0.7 * np.mean(history.train_losses[:3])
    loaded, _, checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert checkpoint["model_config"]["tie_weights"] and loaded.config == model.config
    for (name, ours), (_, theirs) in zip(model.named_parameters(), loaded.named_parameters()):
        assert_close(theirs, ours, rtol=0, atol=0, name=name)
