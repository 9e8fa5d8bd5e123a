"""GPT-2's recipe against LLaMA's: a training step, cached generation, and the cache's memory.

The models are ``build_model("gpt", V)`` and ``build_model("llama", V)`` at their defaults
(2 blocks of width 128, 4 heads, context 64: the sizes chapter 16 trains), and the LLaMA
recipe with grouped-query attention (2 and 1 key-value heads for the 4 query heads), for
the 103 characters of the built-in corpus, float32, random weights:

1. one training step (forward, backward, Adam) on a batch of 32 × 64 characters;
2. cached greedy generation, batch 1: ``lm.generate_tokens`` continues a prompt of 16
   tokens by 48 (up to the context of 64); tokens per second count the new tokens over
   the whole call, the prompt's pass included;
3. the bytes the key-value cache holds for a full context of 64 tokens (measured from
   its buffers), batch 1.

``--width`` and ``--layers`` scale the models up (e.g. ``--width 512 --layers 4``), where
the matrix products outweigh the Python overhead of a step.

Method (see BENCHMARKS.md): the contenders run interleaved, round after round, each timed
call after a 0.3 s pause; reported are the medians and the median of the per-round ratios
to GPT-2's recipe. The figures are steadiest on one thread:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/recipes.py
    python benchmarks/recipes.py --quick      # a smoke test: two rounds, few tokens
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np

import tinylm as tl
from tinylm import data
from tinylm.lm import TrainConfig, Trainer, generate_tokens
from tinylm.models import build_model
from timing import interleaved, median_ratio, report

RECIPES = {
    "gpt": ("gpt", {}),
    "llama": ("llama", {}),
    "llama, 2 kv heads": ("llama", {"num_kv_heads": 2}),
    "llama, 1 kv head": ("llama", {"num_kv_heads": 1}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128, help="embed_dim of every model (default 128)")
    parser.add_argument("--layers", type=int, default=2, help="num_layers of every model (default 2)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="two rounds, 8 new tokens (a smoke test)")
    args = parser.parse_args()
    rounds, new_tokens = (2, 8) if args.quick else (args.rounds, 48)

    text = data.load_corpus("builtin")
    tokenizer = data.CharTokenizer.train(text)
    ids = np.asarray(tokenizer.encode(text[:200_000]))
    sizes = {"embed_dim": args.width, "num_layers": args.layers}
    models = {}
    for label, (name, options) in RECIPES.items():
        tl.manual_seed(0)
        models[label] = build_model(name, tokenizer.vocab_size, **sizes, **options)
    context = models["gpt"].context_length

    trainers = {label: Trainer(model, tokenizer, ids, ids[-3000:], TrainConfig(batch_size=32, seq_len=context)) for label, model in models.items()}
    times = interleaved({label: trainer.train_step for label, trainer in trainers.items()}, rounds)
    report(f"one training step, batch 32 x {context} (width {args.width}, {args.layers} layers)", times, "gpt")
    for label, trainer in trainers.items():
        print(f"  {label:<22} {trainer.model.num_parameters():,} parameters")

    prompt = ids[:16].tolist()
    new_tokens = min(new_tokens, context - len(prompt))

    def generation(label: str):
        def run():
            steps = list(generate_tokens(models[label], prompt, new_tokens, temperature=0))
            assert steps[-1][1].dtype == np.float32, f"logits upcast to {steps[-1][1].dtype}"

        return run

    times = interleaved({label: generation(label) for label in models}, rounds)
    print(f"\ncached greedy generation, batch 1: prompt {len(prompt)} tokens, {new_tokens} new")
    for label, values in times.items():
        seconds = statistics.median(values)
        print(f"  {label:<22} {new_tokens / seconds:7.1f} tokens/s   ({1e3 * seconds / new_tokens:5.2f} ms per token)   "
              f"{median_ratio(times, label, 'gpt'):5.2f}x gpt's time")

    print(f"\nthe key-value cache of a full context of {context} tokens, batch 1, float32")
    for label, model in models.items():
        cache = model.new_cache()
        with tl.no_grad():
            model(np.zeros((1, context), dtype=np.int64), cache)
        held = sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)
        heads = cache.layers[0].keys.shape[1]
        print(f"  {label:<22} {held / 1024:8.1f} KiB   ({heads} key-value head{'s' if heads > 1 else ''} per layer)")


if __name__ == "__main__":
    main()
