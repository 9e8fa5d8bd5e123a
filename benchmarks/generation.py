"""Speed of generation: tokens per second of a GPT-2-124M-sized model, tinylm against Hugging Face.

The model: 12 layers, width 768, 12 heads, vocabulary 50,257, context 1,024 (GPT-2's
smallest), random weights (speed does not depend on their values), float32, batch 1.
One ``GPT2LMHeadModel`` is made from ``GPT2Config()``; tinylm's GPT gets its very weights
(``tinylm.pretrained.gpt2``). Each contender continues a prompt of ``--prompt`` tokens by
``--new`` tokens, greedily:

* tinylm, cached: ``lm.generate_tokens`` with the key-value cache (each step feeds one token);
* tinylm, uncached: the same with ``use_cache=False`` (each step feeds the whole text);
* Hugging Face: ``model.generate(..., do_sample=False, use_cache=True)`` on PyTorch's CPU.

Goal: tinylm cached within 1.5x of Hugging Face. The uncached run shows what the cache buys.

Method (see BENCHMARKS.md): the contenders run interleaved, one generation each per round,
after a 0.3 s pause; we report medians and the median of the per-round ratios. Tokens per
second count the new tokens over the whole call (the prompt's pass included). The figures
are steadiest on one thread:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/generation.py
    python benchmarks/generation.py            # all cores
    python benchmarks/generation.py --quick    # a smoke test: one round, few tokens
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np

from tinylm.lm import generate_tokens
from tinylm.pretrained.gpt2 import build_gpt2
from timing import interleaved, median_ratio


def models():
    """Hugging Face's GPT-2 (random weights) and tinylm's GPT with the same weights."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    theirs = GPT2LMHeadModel(GPT2Config()).eval()
    tensors = {name: tensor.detach().numpy() for name, tensor in theirs.state_dict().items()}
    ours = build_gpt2(theirs.config.to_dict(), tensors).eval()
    return theirs, ours


def contenders(theirs, ours, prompt: list[int], new_tokens: int) -> tuple[dict, dict]:
    import torch

    generated: dict[str, list[int]] = {}

    def tinylm_run(name: str, use_cache: bool):
        def run():
            steps = list(generate_tokens(ours, prompt, new_tokens, temperature=0, use_cache=use_cache))
            assert steps[-1][1].dtype == np.float32, f"logits upcast to {steps[-1][1].dtype}"
            generated[name] = [token for token, _ in steps]

        return run

    def hugging_face():
        with torch.no_grad():
            out = theirs.generate(
                torch.tensor([prompt]), max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                use_cache=True, pad_token_id=theirs.config.eos_token_id,
            )
        generated["Hugging Face"] = out[0, len(prompt) :].tolist()

    runs = {"tinylm cached": tinylm_run("tinylm cached", True), "Hugging Face": hugging_face}
    runs["tinylm uncached"] = tinylm_run("tinylm uncached", False)
    return runs, generated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", type=int, default=32, help="prompt tokens (default 32)")
    parser.add_argument("--new", type=int, default=64, help="new tokens per generation (default 64)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round of 8 new tokens (a smoke test)")
    args = parser.parse_args()
    rounds, new_tokens = (1, 8) if args.quick else (args.rounds, args.new)
    import torch

    theirs, ours = models()
    prompt = np.random.default_rng(0).integers(0, 50257, args.prompt).tolist()
    runs, generated = contenders(theirs, ours, prompt, new_tokens)
    times = interleaved(runs, rounds)
    print(f"GPT-2-124M shape, random weights, float32, batch 1: prompt {args.prompt} tokens, {new_tokens} new, greedy; "
          f"PyTorch {torch.__version__} with {torch.get_num_threads()} threads, {rounds} rounds")
    for name, values in times.items():
        seconds = statistics.median(values)
        print(f"  {name:<16} {new_tokens / seconds:7.1f} tokens/s   ({1e3 * seconds / new_tokens:6.1f} ms per token)   "
              f"{median_ratio(times, name, 'Hugging Face'):5.2f}x Hugging Face's time")
    print(f"  the cache makes tinylm {median_ratio(times, 'tinylm uncached', 'tinylm cached'):.1f}x faster; "
          f"greedy tokens: cached = uncached {generated['tinylm cached'] == generated['tinylm uncached']}, "
          f"cached = Hugging Face {generated['tinylm cached'] == generated['Hugging Face']}")


if __name__ == "__main__":
    main()
