"""The ``tinylm`` command: train a language model, let it write, measure it.

    tinylm train --model lstm --data builtin --steps 2000
    tinylm train --model llama --steps 2000                 (the GPT with LLaMA's parts)
    tinylm generate --checkpoint runs/lstm/checkpoint.npz --prompt "The "
    tinylm generate --pretrained gpt2 --prompt "The "      (GPT-2 from the hub, or a model folder)
    tinylm train --init gpt2 --data my_text.txt             (fine-tune GPT-2 on your text)
    tinylm eval --checkpoint runs/lstm/checkpoint.npz
    tinylm grade submissions/ --out grades/      (exercise submissions; see tinylm.exercises.grade)

``tinylm COMMAND --help`` explains every option. A mistake in the input (a missing file,
an empty corpus, a checkpoint of another model, an unknown device) is reported in one
line and exits with status 2. Training that diverges (the loss or the gradients blow up,
usually from a learning rate far too large) stops in one line that says what to change,
leaves the last checkpoint as it was, and exits with status 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from . import backend
from .data.batching import train_val_split
from .data.corpus import BUILTIN, DATASETS, load_corpus
from .data.tokenizers import TOKENIZERS, BPETokenizer, train_tokenizer
from .lm import Evaluation, TextTooShortError, TrainConfig, Trainer, TrainingDiverged, evaluate, generate, load_checkpoint
from .models import MODEL_NAMES, build_model, check_same_model
from .ngram import KneserNeyLM
from .pretrained import hub
from .pretrained import load as load_pretrained

DATA_HELP = f"the text: {BUILTIN!r} (CPython's reference documentation, offline), " + ", ".join(
    f"{name!r} ({dataset.description}, downloaded once)" for name, dataset in DATASETS.items()
) + ", or the path of a UTF-8 text file or of a folder of them"

# Model settings as command-line options; each goes to the models that have it (see models.DEFAULTS).
MODEL_OPTIONS = {
    "embed_dim": (int, "size of the token embeddings"),
    "hidden_size": (int, "size of the recurrent state (lstm, gru, rnn)"),
    "num_layers": (int, "number of stacked recurrent layers or Transformer blocks"),
    "num_heads": (int, "attention heads per block (gpt, llama)"),
    "num_kv_heads": (int, "key-value heads per block, each shared by a group of query heads (gpt, llama; default: one per head)"),
    "context_length": (int, "the most tokens the GPT sees at once (gpt, llama)"),
    "dropout": (float, "dropout probability (gpt, llama)"),
}


# What a new run uses for the options that shape its data (a resumed run keeps its checkpoint's).
DATA_DEFAULTS = {"tokenizer": "char", "bpe_merges": 256, "min_frequency": 2, "val_fraction": 0.1}
TRAINING_SETTINGS = ("steps", "max_seconds", "batch_size", "seq_len", "lr", "warmup_steps", "weight_decay",
                     "clip_grad_norm", "eval_every", "checkpoint_every", "device", "on_divergence")

PRETRAINED_HELP = (
    f"a pretrained model: a name ({', '.join(hub.MODELS)}, or a hub repository owner/name), downloaded once into "
    "the cache, or a Hugging Face model folder (config.json, model.safetensors, vocab.json, merges.txt)"
)
ALLOW_PICKLE_HELP = "read a pytorch_model.bin (a pickle: it can run code) when the folder has no model.safetensors"


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, exit status 2."""


def _flags_given(args: argparse.Namespace, names) -> list[str]:
    """The command-line flags (``--bpe-merges``, ...) of the ``names`` that were given."""
    return ["--" + name.replace("_", "-") for name in names if getattr(args, name) is not None]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinylm", description="Train small language models, sample from them, measure them.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a language model", description="Train a language model on text.")
    train.add_argument("--model", choices=MODEL_NAMES, default=None, help="the model (default: lstm; when resuming: the checkpoint's)")
    train.add_argument("--data", default=None, help=DATA_HELP + f" (default: {BUILTIN}; when resuming: the checkpoint's)")
    # The data and training settings default to None, so that a resumed run changes only what is given.
    train.add_argument("--tokenizer", choices=sorted(TOKENIZERS), default=None, help="how text becomes tokens: characters, words or byte-level BPE (default: char)")
    train.add_argument("--bpe-merges", type=_positive_int, default=None, help=f"merges the BPE tokenizer learns (default: {DATA_DEFAULTS['bpe_merges']})")
    train.add_argument("--min-frequency", type=_positive_int, default=None, help=f"the word tokenizer maps rarer words to <unk> (default: {DATA_DEFAULTS['min_frequency']})")
    train.add_argument("--val-fraction", type=float, default=None, help=f"the last part of the text kept for validation (default: {DATA_DEFAULTS['val_fraction']})")
    defaults = TrainConfig()
    train.add_argument("--steps", type=_positive_int, default=None, help=f"optimizer steps in the whole run (default: {defaults.steps}; when resuming: the checkpoint's)")
    train.add_argument("--max-seconds", type=float, default=None, help="also stop after this many seconds of training (default: no limit)")
    train.add_argument("--batch-size", type=_positive_int, default=None, help=f"sequences per batch (default: {defaults.batch_size})")
    train.add_argument("--seq-len", type=_positive_int, default=None, help=f"tokens per sequence: the truncation length for recurrent models, the window for gpt (default: {defaults.seq_len})")
    train.add_argument("--lr", type=float, default=None, help=f"peak learning rate of Adam (default: {defaults.lr})")
    train.add_argument("--warmup-steps", type=int, default=None, help=f"steps of linear warm-up before the cosine decay (default: {defaults.warmup_steps})")
    train.add_argument("--weight-decay", type=float, default=None, help=f"L2 weight decay (default: {defaults.weight_decay:g})")
    train.add_argument("--clip-grad-norm", type=float, default=None, help=f"clip the gradient norm to this (0: no clipping; default: {defaults.clip_grad_norm})")
    train.add_argument("--eval-every", type=int, default=None, help=f"steps between validation losses (default: {defaults.eval_every})")
    train.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints (default: only at the end and on Ctrl-C)")
    train.add_argument("--on-divergence", choices=("stop", "skip"), default=None, help=f"when a step's loss or gradient blows up: stop the run, or skip that batch (at most a few in a row) (default: {defaults.on_divergence})")
    for name, (kind, text) in MODEL_OPTIONS.items():
        train.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=text)
    train.add_argument("--out", default=None, help="folder for the checkpoint and the loss curve (default: runs/MODEL)")
    train.add_argument("--resume", default=None, metavar="CHECKPOINT", help="continue the run saved in this checkpoint with its settings; the training settings given (--steps, --lr, ...) change them from this step on (--max-seconds limits this part)")
    train.add_argument("--init", default=None, metavar="MODEL", help=PRETRAINED_HELP + ": fine-tune it on --data, with its own tokenizer")
    train.add_argument("--allow-pickle", action="store_true", help=ALLOW_PICKLE_HELP)
    _add_common(train, device_default=None)

    write = commands.add_parser("generate", help="continue a prompt with a trained model", description="Continue a prompt with a trained model.")
    source = write.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a checkpoint written by `tinylm train`")
    source.add_argument("--pretrained", metavar="MODEL", help=PRETRAINED_HELP)
    write.add_argument("--allow-pickle", action="store_true", help=ALLOW_PICKLE_HELP)
    write.add_argument("--no-cache", action="store_true", help="recompute the whole text for every token (a GPT otherwise keeps its keys and values)")
    write.add_argument("--prompt", default="\n", help="the text to continue (default: a newline)")
    write.add_argument("--max-new-tokens", type=_positive_int, default=300, help="tokens to generate (default: 300)")
    write.add_argument("--temperature", type=float, default=0.8, help="below 1 more predictable, above 1 wilder; 0 is greedy (default: 0.8)")
    write.add_argument("--top-k", type=_positive_int, default=None, help="draw only from the k most likely tokens")
    write.add_argument("--top-p", type=float, default=None, help="draw only from the most likely tokens whose probabilities add up to p")
    write.add_argument("--greedy", action="store_true", help="always take the most likely token (same as --temperature 0)")
    write.add_argument("--ignore-eos", action="store_true", help="go on past the end-of-text token (GPT-2's <|endoftext|>) up to --max-new-tokens; by default the text ends there")
    _add_common(write)

    measure = commands.add_parser("eval", help="validation loss, perplexity and bits per character", description="Measure a trained model on its held-out text, beside an n-gram baseline.")
    measure.add_argument("--checkpoint", required=True, help="a checkpoint written by `tinylm train`")
    measure.add_argument("--data", default=None, help=DATA_HELP + " (default: the text the model was trained on)")
    measure.add_argument("--val-fraction", type=float, default=None, help="the last part of the text to measure on (default: the training run's)")
    measure.add_argument("--ngram-order", type=int, default=5, help="order of the Kneser-Ney baseline (0: skip it; default: 5)")
    _add_common(measure)

    # listed for --help only: main() hands `tinylm grade ...` to tinylm.exercises.grade
    commands.add_parser("grade", help="grade exercise submissions (tinylm grade --help)")
    return parser


def _add_common(parser: argparse.ArgumentParser, device_default: str | None = "cpu") -> None:
    """``device_default=None``: a resumed run stays on the checkpoint's device unless --device is given."""
    parser.add_argument("--device", default=device_default, help="cpu, or cuda for an NVIDIA GPU with CuPy (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed repeats a run exactly (default: 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (it is also off when not in a terminal or with TINYLM_FAST=1)")


def _checked_checkpoint(path: str) -> Path:
    if not Path(path).is_file():
        raise UsageError(f"no checkpoint at {path} (train one with `tinylm train --out FOLDER`)")
    return Path(path)


def _split(text: str, tokenizer, val_fraction: float):
    return train_val_split(tokenizer.encode(text), val_fraction)


def _training_text(requested: str | None, checkpoint: dict) -> str:
    """The text given with --data, else the one the checkpoint was trained on."""
    source = requested or checkpoint["data"].get("source")
    if source is None:
        raise UsageError("the checkpoint does not say which text it was trained on (it was saved from Python); pass --data")
    return load_corpus(source)


def run_train(args: argparse.Namespace) -> None:
    backend.manual_seed(args.seed)
    model_settings = {name: getattr(args, name) for name in MODEL_OPTIONS if getattr(args, name) is not None}
    config_changes = {name: getattr(args, name) for name in TRAINING_SETTINGS if getattr(args, name) is not None}
    progress = False if args.no_progress else None
    if args.resume and args.init:
        raise UsageError("--resume continues a run with its own model; --init starts a new one from a pretrained model: give one of them")
    if args.resume:
        data_options = _flags_given(args, DATA_DEFAULTS)
        if data_options:
            raise UsageError(f"a resumed run keeps its checkpoint's tokenizer and validation split: leave out {', '.join(data_options)}")
        checkpoint_path = _checked_checkpoint(args.resume)
        model, tokenizer, checkpoint = load_checkpoint(checkpoint_path)
        requested = {"model": args.model, **model_settings} if args.model else model_settings
        check_same_model({key: checkpoint["model_config"].get(key) for key in requested}, requested, str(checkpoint_path))
        text = _training_text(args.data, checkpoint)
        train_ids, val_ids = _split(text, tokenizer, checkpoint["data"].get("val_fraction", DATA_DEFAULTS["val_fraction"]))
        # a time budget is for this part of the run only: without --max-seconds it has none
        trainer = Trainer.resume(checkpoint_path, train_ids, val_ids, args.out, **{"max_seconds": 0.0, **config_changes})
        changed = ", ".join(f"{name} {value}" for name, value in config_changes.items())
        print(f"Resuming {checkpoint_path} at step {trainer.step} of {trainer.config.steps}" + (f" ({changed})" if changed else ""), file=sys.stderr)
    else:
        options = {name: default if getattr(args, name) is None else getattr(args, name) for name, default in DATA_DEFAULTS.items()}
        source = args.data or BUILTIN
        text = load_corpus(source)
        if args.init:
            if args.model or model_settings:
                raise UsageError("--init takes the model and its settings from the pretrained model: leave out --model and the model options")
            tokenizer_flags = _flags_given(args, ("tokenizer", "bpe_merges", "min_frequency"))
            if tokenizer_flags:
                raise UsageError(f"--init brings the pretrained model's own tokenizer: leave out {', '.join(tokenizer_flags)}")
            model, tokenizer = _open_pretrained(args.init, args.allow_pickle)
            name = Path(args.init).name
        else:
            tokenizer_options = {"bpe": {"num_merges": options["bpe_merges"]}, "word": {"min_frequency": options["min_frequency"]}}
            tokenizer = train_tokenizer(options["tokenizer"], text, **tokenizer_options.get(options["tokenizer"], {}))
            name = args.model or "lstm"
            model = build_model(name, tokenizer.vocab_size, **model_settings)
        val_fraction = options["val_fraction"]
        train_ids, val_ids = _split(text, tokenizer, val_fraction)
        data = {"source": source, "val_fraction": val_fraction}
        try:
            trainer = Trainer(model, tokenizer, train_ids, val_ids, TrainConfig(**config_changes), args.out or f"runs/{name}", data)
        except TextTooShortError as error:
            raise UsageError(
                f"{source} holds {len(text):,} characters: {error.train_tokens:,} tokens to train on and "
                f"{error.val_tokens:,} held out for validation (--val-fraction {val_fraction}), but one training "
                f"window takes --seq-len {error.seq_len} + 1 tokens. Pass --seq-len {error.train_tokens - 1} or less, "
                "or a longer text"
            ) from None
        print(f"{name}: {model.num_parameters():,} parameters; {len(text):,} characters, {tokenizer!r}", file=sys.stderr)
    trainer.train(progress=progress)


def _open_pretrained(name_or_folder: str, allow_pickle: bool, device: str = "cpu"):
    """The model and tokenizer of a pretrained model's folder (a name is downloaded once, then cached)."""
    folder = hub.resolve(name_or_folder)
    model, _ = load_pretrained(folder, allow_pickle=allow_pickle, device=device)
    try:
        tokenizer = BPETokenizer.from_pretrained(folder)
    except FileNotFoundError as error:  # e.g. a LLaMA folder: its SentencePiece tokenizer is not one tinylm reads
        raise UsageError(f"{error}; tinylm reads only GPT-2-style tokenizer files") from None
    if tokenizer.vocab_size > model.vocab_size:
        raise UsageError(f"{folder}: the tokenizer has {tokenizer.vocab_size} tokens, more than the model's vocabulary of {model.vocab_size}")
    return model, tokenizer


def run_generate(args: argparse.Namespace) -> None:
    if args.pretrained:
        model, tokenizer = _open_pretrained(args.pretrained, args.allow_pickle, args.device)
    else:
        model, tokenizer, _ = load_checkpoint(_checked_checkpoint(args.checkpoint), args.device)
    temperature = 0.0 if args.greedy else args.temperature
    text = generate(
        model, tokenizer, args.prompt, args.max_new_tokens, temperature, args.top_k, args.top_p, seed=args.seed,
        use_cache=not args.no_cache, stop_at_eos=not args.ignore_eos,
    )
    print(args.prompt + text)


def run_eval(args: argparse.Namespace) -> None:
    model, tokenizer, checkpoint = load_checkpoint(_checked_checkpoint(args.checkpoint), args.device)
    text = _training_text(args.data, checkpoint)
    train_ids, val_ids = _split(text, tokenizer, args.val_fraction or checkpoint["data"].get("val_fraction", 0.1))
    config = checkpoint["train_config"]
    evaluation = evaluate(model, tokenizer, val_ids, config["batch_size"], config["seq_len"])
    print(f"{checkpoint['model_config']['model']} after {checkpoint['step']} steps, on {evaluation.tokens:,} held-out tokens: {evaluation}")
    if args.ngram_order:
        loss = KneserNeyLM(args.ngram_order).fit(train_ids, tokenizer.vocab_size).evaluate(val_ids)
        print(f"{args.ngram_order}-gram Kneser-Ney baseline: {Evaluation(loss, len(val_ids) - 1, evaluation.chars_per_token)}")


COMMANDS = {"train": run_train, "generate": run_generate, "eval": run_eval}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0; 1 when training diverged; 2 for a mistake in the input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["grade"]:  # grading parses its own options
        from .exercises.grade import main as grade

        return grade(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.device is not None:  # a resumed run without --device keeps the checkpoint's
            backend.check_device(args.device)
        COMMANDS[args.command](args)
    except (UsageError, ValueError, backend.DeviceError) as error:
        print(f"tinylm {args.command}: error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"tinylm {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before or after training (during it, Ctrl-C saves a checkpoint)
        print(f"tinylm {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
