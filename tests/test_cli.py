"""The `tinylm` command: train, generate and eval with tiny settings; one-line errors with status 2."""
from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest

import tinylm as tl
from hf_folders import small_gpt2_with_tokenizer, small_llama
from tinylm.cli import build_parser, main
from tinylm.data import builtin_corpus

TINY_LSTM = ["--embed-dim", "8", "--hidden-size", "16", "--batch-size", "4", "--seq-len", "8", "--eval-every", "2", "--no-progress"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("a small corpus, a small test; 小小的语料。 " * 40, encoding="utf-8")
    return path


def train(tmp_path, corpus, *extra: str, out: str = "run") -> int:
    return main(["train", "--data", str(corpus), "--out", str(tmp_path / out), *TINY_LSTM, *extra])


def test_train_generate_and_eval(tmp_path, corpus, capsys, device):
    assert train(tmp_path, corpus, "--steps", "4", "--device", device) == 0
    assert (tmp_path / "run" / "checkpoint.npz").is_file() and (tmp_path / "run" / "loss.png").is_file()
    checkpoint = str(tmp_path / "run" / "checkpoint.npz")

    capsys.readouterr()
    generate = ["generate", "--checkpoint", checkpoint, "--device", device]
    assert main(generate + ["--prompt", "a sm", "--max-new-tokens", "12", "--seed", "3"]) == 0
    written = capsys.readouterr().out
    assert written.startswith("a sm") and len(written) == len("a sm") + 12 + 1  # and the newline of print
    main(generate + ["--prompt", "a sm", "--max-new-tokens", "12", "--seed", "3"])
    assert capsys.readouterr().out == written
    assert main(generate + ["--prompt", "a", "--greedy", "--top-k", "2", "--top-p", "0.9"]) == 0

    assert main(["eval", "--checkpoint", checkpoint, "--ngram-order", "3", "--device", device]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith("lstm after 4 steps, on ") and "perplexity" in lines[-2] and "bits/char" in lines[-2]
    assert lines[-1].startswith("3-gram Kneser-Ney baseline: loss ")


@pytest.mark.parametrize("model, options", [("gru", ["--hidden-size", "8"]), ("gpt", ["--context-length", "8", "--embed-dim", "8", "--num-heads", "2", "--num-layers", "1"])])
def test_other_models_and_tokenizers(tmp_path, corpus, model, options):
    args = ["train", "--model", model, "--data", str(corpus), "--out", str(tmp_path / model), "--steps", "2", "--batch-size", "2", "--seq-len", "8", "--no-progress"]
    assert main(args + options + ["--tokenizer", "bpe", "--bpe-merges", "20"]) == 0
    assert tl.load(tmp_path / model / "checkpoint.npz")["tokenizer"]["type"] == "bpe"


def test_train_generate_and_eval_the_llama_recipe(tmp_path, corpus, capsys):
    """`tinylm train --model llama` trains the GPT with LLaMA's parts; its checkpoint rebuilds it,
    and generation through the key-value cache writes what generation without it writes."""
    options = ["--context-length", "8", "--embed-dim", "16", "--num-heads", "4", "--num-kv-heads", "2", "--num-layers", "1"]
    args = ["train", "--model", "llama", "--data", str(corpus), "--out", str(tmp_path / "llama"), "--steps", "3", "--batch-size", "2", "--seq-len", "8", "--no-progress"]
    assert main(args + options) == 0
    checkpoint = tmp_path / "llama" / "checkpoint.npz"
    config = tl.load(checkpoint)["model_config"]
    assert config["model"] == "llama" and config["num_kv_heads"] == 2
    assert (config["norm"], config["mlp"], config["positions"], config["bias"]) == ("rms", "swiglu", "rope", False)
    capsys.readouterr()
    generate = ["generate", "--checkpoint", str(checkpoint), "--prompt", "a sm", "--max-new-tokens", "12", "--seed", "3"]
    assert main(generate) == 0  # 4 + 12 tokens: past the context of 8, where the window slides
    written = capsys.readouterr().out
    assert written.startswith("a sm") and len(written) == len("a sm") + 12 + 1
    assert main(generate + ["--no-cache"]) == 0 and capsys.readouterr().out == written
    assert main(["eval", "--checkpoint", str(checkpoint), "--ngram-order", "0"]) == 0
    assert capsys.readouterr().out.startswith("llama after 3 steps, on ")


def test_resuming_in_a_fresh_process_continues_bit_for_bit(tmp_path, corpus):
    """4 steps in one go == 1 step (the time limit), then a new `python -m tinylm.cli` resuming to 4."""
    assert train(tmp_path, corpus, "--steps", "4", out="straight") == 0
    assert train(tmp_path, corpus, "--steps", "4", "--max-seconds", "1e-9", out="halves") == 0  # stops after 1 step
    command = [sys.executable, "-m", "tinylm.cli", "train", "--resume", str(tmp_path / "halves" / "checkpoint.npz"), "--steps", "4", "--no-progress"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    straight, resumed = tl.load(tmp_path / "straight" / "checkpoint.npz"), tl.load(tmp_path / "halves" / "checkpoint.npz")
    assert resumed["step"] == straight["step"] == 4
    for name, expected in straight["model"].items():
        np.testing.assert_array_equal(resumed["model"][name], expected, err_msg=f"{name} differs after resuming")


def test_resuming_changes_only_the_settings_given(tmp_path, corpus, capsys):
    """A resumed run keeps the checkpoint's settings (its 6 steps, not the default 1000) except
    those on the command line (--lr); a changed batch shape or tokenizer is refused in one line."""
    assert train(tmp_path, corpus, "--steps", "6", "--lr", "0.01", "--max-seconds", "1e-9") == 0  # stops after 1 step
    checkpoint = str(tmp_path / "run" / "checkpoint.npz")
    assert main(["train", "--resume", checkpoint, "--lr", "0.002", "--no-progress"]) == 0
    resumed = tl.load(checkpoint)
    assert resumed["step"] == 6
    assert resumed["train_config"]["lr"] == 0.002 and resumed["train_config"]["steps"] == 6
    assert resumed["train_config"]["warmup_steps"] == tl.lm.TrainConfig().warmup_steps
    assert "(lr 0.002)" in capsys.readouterr().err

    message = one_line_error(capsys, ["train", "--resume", checkpoint, "--steps", "8", "--batch-size", "8"])
    assert "was trained with batch_size=4; a resumed run keeps it (got batch_size=8)" in message
    message = one_line_error(capsys, ["train", "--resume", checkpoint, "--tokenizer", "bpe", "--val-fraction", "0.2"])
    assert "keeps its checkpoint's tokenizer and validation split: leave out --tokenizer, --val-fraction" in message


@pytest.mark.trains
def test_a_diverging_run_ends_in_one_line_with_status_1_and_keeps_its_checkpoint(tmp_path, corpus, capsys):
    """The first step at lr 1e6 is still measured on sane weights; its checkpoint is the last good one."""
    assert train(tmp_path, corpus, "--steps", "30", "--lr", "1e6", "--checkpoint-every", "1") == 1
    captured = capsys.readouterr()
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    assert "Traceback" not in captured.err
    assert captured.err.strip().splitlines()[-1].startswith("tinylm train: training diverged at step 2: loss ")
    assert f"lower it (--lr), clip gradients (--clip-grad-norm), or check the data. The step was not taken; {checkpoint} is left as it was" in captured.err
    assert tl.load(checkpoint)["step"] == 1

    assert main(["eval", "--checkpoint", str(checkpoint), "--ngram-order", "0"]) == 0  # the weights after that step
    assert "perplexity inf," in capsys.readouterr().out


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err, captured.err
    return captured.err


def test_a_missing_file(tmp_path, capsys):
    assert "tinylm train: error: no such file or folder: " in one_line_error(capsys, ["train", "--data", str(tmp_path / "nope.txt")])
    assert "error: no checkpoint at " in one_line_error(capsys, ["generate", "--checkpoint", str(tmp_path / "nope.npz")])


def test_an_empty_corpus(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    assert "is empty: it holds no text to learn from" in one_line_error(capsys, ["train", "--data", str(tmp_path / "empty.txt")])


def test_a_checkpoint_of_a_different_model(tmp_path, corpus, capsys):
    train(tmp_path, corpus, "--steps", "1")
    capsys.readouterr()
    checkpoint = str(tmp_path / "run" / "checkpoint.npz")
    message = one_line_error(capsys, ["train", "--resume", checkpoint, "--model", "gpt"])
    assert "holds a different model: model 'lstm' (this run: 'gpt')" in message
    message = one_line_error(capsys, ["train", "--resume", checkpoint, "--hidden-size", "32"])
    assert "hidden_size 16 (this run: 32)" in message


def test_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    (tmp_path / "notes.npz").write_text("not a checkpoint")
    assert "could not be read as a tinylm checkpoint" in one_line_error(capsys, ["eval", "--checkpoint", str(tmp_path / "notes.npz")])


@pytest.mark.parametrize("command", [["train"], ["generate", "--checkpoint", "x.npz"], ["eval", "--checkpoint", "x.npz"]])
def test_an_unknown_device(capsys, command):
    assert "unknown device 'tpu': expected one of ('cpu', 'cuda')" in one_line_error(capsys, command + ["--device", "tpu"])


def test_help_explains_every_option(capsys):
    parser = build_parser()
    subcommands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for name, subparser in subcommands.choices.items():
        for action in subparser._actions:
            assert action.help, f"`tinylm {name} {action.option_strings}` has no help text"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0 and "--hidden-size" in capsys.readouterr().out


def test_a_checkpoint_saved_from_python_needs_data_to_be_named(tmp_path, corpus, capsys):
    from tinylm.data import CharTokenizer, train_val_split
    from tinylm.lm import TrainConfig, Trainer
    from tinylm.models import build_model

    text = corpus.read_text(encoding="utf-8")
    tokenizer = CharTokenizer.train(text)
    train_ids, val_ids = train_val_split(tokenizer.encode(text))
    model = build_model("rnn", tokenizer.vocab_size, embed_dim=4, hidden_size=8)
    Trainer(model, tokenizer, train_ids, val_ids, TrainConfig(steps=1, batch_size=2, seq_len=8), tmp_path).train(progress=False)
    capsys.readouterr()
    checkpoint = str(tmp_path / "checkpoint.npz")
    assert "does not say which text it was trained on" in one_line_error(capsys, ["eval", "--checkpoint", checkpoint])
    assert main(["eval", "--checkpoint", checkpoint, "--data", str(corpus), "--ngram-order", "0"]) == 0
    assert "rnn after 1 steps" in capsys.readouterr().out


# ------------------------------------------------------------------ pretrained models (a local folder: offline)


@pytest.fixture
def gpt2_folder(tmp_path):
    small_gpt2_with_tokenizer(tmp_path / "gpt2")
    return tmp_path / "gpt2"


def test_generate_with_a_pretrained_folder(gpt2_folder, capsys):
    argv = ["generate", "--pretrained", str(gpt2_folder), "--prompt", "a small", "--max-new-tokens", "30", "--seed", "3", "--ignore-eos"]
    assert main(argv) == 0
    written = capsys.readouterr().out
    assert written.startswith("a small") and len(written) > len("a small") + 1
    assert main(argv + ["--no-cache"]) == 0  # 7 + 30 tokens: past the context of 24, where the window slides
    assert capsys.readouterr().out == written
    assert main(argv[:-1]) == 0  # by default the text ends at <|endoftext|>, if the model writes it
    stopped = capsys.readouterr().out.rstrip("\n")
    assert written.startswith(stopped) and written.split("<|endoftext|>")[0].rstrip("\n") == stopped


def test_fine_tune_a_pretrained_folder_then_generate_from_its_checkpoint(gpt2_folder, corpus, tmp_path, capsys):
    argv = ["train", "--init", str(gpt2_folder), "--data", str(corpus), "--out", str(tmp_path / "tuned"), "--steps", "3",
            "--batch-size", "2", "--seq-len", "16", "--eval-every", "0", "--no-progress"]
    assert main(argv) == 0
    checkpoint = tl.load(tmp_path / "tuned" / "checkpoint.npz")
    assert checkpoint["model_config"]["tie_weights"] and checkpoint["model_config"]["embed_dim"] == 64
    assert checkpoint["tokenizer"]["type"] == "bpe" and checkpoint["step"] == 3
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(tmp_path / "tuned" / "checkpoint.npz"), "--prompt", "a small", "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("a small")


def test_pretrained_mistakes(gpt2_folder, tmp_path, corpus, capsys):
    message = one_line_error(capsys, ["train", "--init", str(gpt2_folder), "--model", "lstm", "--data", str(corpus)])
    assert "--init takes the model and its settings from the pretrained model" in message
    message = one_line_error(capsys, ["train", "--init", str(gpt2_folder), "--tokenizer", "char", "--data", str(corpus)])
    assert "--init brings the pretrained model's own tokenizer: leave out --tokenizer" in message
    message = one_line_error(capsys, ["train", "--init", str(gpt2_folder), "--resume", str(tmp_path / "x.npz")])
    assert "--resume continues a run with its own model; --init starts a new one" in message
    (gpt2_folder / "model.safetensors").rename(tmp_path / "elsewhere.safetensors")
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(tmp_path / "elsewhere.safetensors"), gpt2_folder / "pytorch_model.bin")
    generate = ["generate", "--pretrained", str(gpt2_folder), "--max-new-tokens", "2"]
    assert "Pass allow_pickle=True (tinylm: --allow-pickle) if you trust the file" in one_line_error(capsys, generate)
    with pytest.warns(UserWarning, match="with pickle"):
        assert main(generate + ["--allow-pickle"]) == 0


def test_a_pretrained_name_offline_says_where_to_put_the_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "huggingface"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing answers
    message = one_line_error(capsys, ["generate", "--pretrained", "gpt2"])
    assert "could not download 'gpt2' from the Hugging Face hub" in message
    assert f"config.json, model.safetensors, vocab.json, merges.txt from https://huggingface.co/openai-community/gpt2/tree/main by hand and put them in {tmp_path / 'cache' / 'models' / 'gpt2'}" in message


def test_a_folder_without_gpt2_tokenizer_files_is_named_in_one_line(tmp_path, capsys):
    """A LLaMA folder loads as a model, but its tokenizer is SentencePiece's, which tinylm does not read."""
    small_llama(tmp_path / "llama")
    capsys.readouterr()
    message = one_line_error(capsys, ["generate", "--pretrained", str(tmp_path / "llama")])
    assert "has no vocab.json and merges.txt: a GPT-2 tokenizer folder has" in message
    assert message.strip().endswith("tinylm reads only GPT-2-style tokenizer files")


def test_a_tokenizer_larger_than_the_model_is_refused(tmp_path, capsys):
    small_gpt2_with_tokenizer(tmp_path / "gpt2", vocab_size=260)
    capsys.readouterr()
    message = one_line_error(capsys, ["generate", "--pretrained", str(tmp_path / "gpt2")])
    assert "tokens, more than the model's vocabulary of 260" in message


# ------------------------------------------------------------------ short texts, with the default batches

TINY_MODELS = {
    "lstm": ["--embed-dim", "8", "--hidden-size", "16"],
    "gru": ["--embed-dim", "8", "--hidden-size", "16"],
    "rnn": ["--embed-dim", "8", "--hidden-size", "16"],
    "gpt": ["--embed-dim", "16", "--num-heads", "2", "--num-layers", "1"],
}
# What the trainer says for each text (characters = tokens: the char tokenizer), with the
# default --batch-size 32, --seq-len 64, --val-fraction 0.1. Recurrent rows lie side by
# side (B rows of 64 need 64·B + 1 tokens); a GPT's random windows may overlap.
SHORT_TEXT_LINES = {
    (200, True): "Short text, so smaller batches: training 2 rows of 64 tokens (not 32 rows: 180 training tokens), "
                 "validation 1 row of 19 tokens (20 validation tokens).",
    (200, False): "Short text, so smaller batches: validation 1 row of 19 tokens (20 validation tokens).",
    (2_000, True): "Short text, so smaller batches: training 28 rows of 64 tokens (not 32 rows: 1,800 training tokens), "
                   "validation 3 rows of 64 tokens (200 validation tokens).",
    (2_000, False): "Short text, so smaller batches: validation 3 rows of 64 tokens (200 validation tokens).",
    (20_000, True): "Short text, so smaller batches: validation 31 rows of 64 tokens (2,000 validation tokens).",
    (20_000, False): "Short text, so smaller batches: validation 31 rows of 64 tokens (2,000 validation tokens).",
    (1_000_000, True): None,  # long enough: nothing to say
}


def text_file(tmp_path, characters: int):
    path = tmp_path / f"text_{characters}.txt"
    text = builtin_corpus()
    path.write_text((text * (characters // len(text) + 1))[:characters], encoding="utf-8")
    return path


@pytest.mark.parametrize("characters, model", [
    *((characters, model) for characters in (200, 2_000, 20_000) for model in TINY_MODELS),
    (1_000_000, "lstm"),
])
def test_a_short_text_trains_generates_and_evaluates_with_the_default_batches(tmp_path, capsys, characters, model):
    path, out = text_file(tmp_path, characters), tmp_path / "run"
    assert main(["train", "--model", model, "--data", str(path), "--out", str(out), "--steps", "2", "--no-progress",
                 *TINY_MODELS[model]]) == 0
    said = capsys.readouterr().err.splitlines()
    expected = SHORT_TEXT_LINES[characters, model != "gpt"]
    assert [line for line in said if line.startswith("Short text")] == ([expected] if expected else [])
    checkpoint = str(out / "checkpoint.npz")
    assert main(["generate", "--checkpoint", checkpoint, "--max-new-tokens", "20"]) == 0
    assert main(["eval", "--checkpoint", checkpoint]) == 0
    measured = capsys.readouterr().out.splitlines()
    held_out = {200: 19, 2_000: 192, 20_000: 1_984, 1_000_000: 98_304}[characters]  # rows x row length
    assert measured[-2].startswith(f"{model} after 2 steps, on {held_out:,} held-out tokens: loss ")
    assert measured[-1].startswith("5-gram Kneser-Ney baseline: loss ")


def test_a_text_shorter_than_one_training_window_names_its_sizes_and_the_flag(tmp_path, capsys):
    path = text_file(tmp_path, 60)
    message = one_line_error(capsys, ["train", "--data", str(path), "--steps", "2"])
    assert (f"{path} holds 60 characters: 54 tokens to train on and 6 held out for validation (--val-fraction 0.1), "
            "but one training window takes --seq-len 64 + 1 tokens. Pass --seq-len 53 or less, or a longer text") in message
    assert main(["train", "--data", str(path), "--steps", "2", "--seq-len", "53", "--out", str(tmp_path / "run"),
                 "--no-progress", *TINY_MODELS["lstm"]]) == 0
