"""``python -m tinylm.demo`` (what ``make demo`` runs): watch a character LSTM learn to write.

It trains a character-level LSTM (embedding 64, one LSTM layer of 256, batch 32 of 64
characters, Adam 3e-3 with warm-up and cosine decay) on the built-in corpus — CPython's
reference documentation — on the CPU for about two minutes, then shows:

* a sample before training (random characters) and after (words, punctuation, code);
* the validation loss, perplexity and bits per character on the last 10% of the text;
* the same for a 5-gram Kneser-Ney model counted on the same training text;
* the loss curve, saved as runs/demo/loss.png.

TINYLM_FAST=1 shrinks the time budget to a few seconds (for tests and CI).
"""
from __future__ import annotations

import math
import os
import time

from . import backend
from .data.batching import train_val_split
from .data.corpus import builtin_corpus
from .data.tokenizers import CharTokenizer
from .lm import Evaluation, TrainConfig, Trainer, generate
from .models import build_model
from .ngram import KneserNeyLM

PROMPT = "The "


def _sample(model, tokenizer) -> str:
    return PROMPT + generate(model, tokenizer, PROMPT, max_new_tokens=300, temperature=0.8, seed=0)


def main(seconds: float | None = None, run_dir: str = "runs/demo") -> Evaluation:
    fast = os.environ.get("TINYLM_FAST") == "1"
    seconds = seconds if seconds is not None else (5.0 if fast else 120.0)
    backend.manual_seed(0)
    text = builtin_corpus()
    tokenizer = CharTokenizer.train(text)
    train_ids, val_ids = train_val_split(tokenizer.encode(text), 0.1)
    print(f"Corpus: CPython's reference documentation, {len(text):,} characters, {tokenizer.vocab_size} distinct.")
    print(f"Training on {len(train_ids):,}, validating on the last {len(val_ids):,}.\n")

    model = build_model("lstm", tokenizer.vocab_size, embed_dim=64, hidden_size=256)
    print(f"A character LSTM with {model.num_parameters():,} parameters. Before training it writes:\n")
    print(_sample(model, tokenizer), "\n")

    config = TrainConfig(
        steps=100_000, max_seconds=seconds, batch_size=32, seq_len=64, lr=3e-3, warmup_steps=50,
        eval_every=0 if fast else 250, eval_batches=10,
    )
    trainer = Trainer(model, tokenizer, train_ids, val_ids, config, run_dir, data={"source": "builtin", "val_fraction": 0.1})
    print(f"Training for {seconds:.0f} s (as many steps as fit; the validation at the end takes a few seconds more):")
    started = time.perf_counter()
    trainer.train()
    if trainer.interrupted:
        return trainer.validate()
    print(f"\nTrained {trainer.step:,} steps in {time.perf_counter() - started:.0f} s. Now it writes:\n")
    print(_sample(model, tokenizer), "\n")

    evaluation = trainer.last_evaluation  # on all the held-out text, at the end of train()
    print(f"LSTM on the held-out text:         {evaluation}")
    baseline = KneserNeyLM(order=5).fit(train_ids, tokenizer.vocab_size).evaluate(val_ids)
    print(f"5-gram Kneser-Ney (counting only): {Evaluation(baseline, len(val_ids) - 1, evaluation.chars_per_token)}")
    print(f"Uniform guessing would score ln {tokenizer.vocab_size} = {math.log(tokenizer.vocab_size):.4f} nats/char.")
    print(f"\nLoss curve: {run_dir}/loss.png   Continue: tinylm train --resume {run_dir}/checkpoint.npz --steps N")
    return evaluation


if __name__ == "__main__":
    main()
