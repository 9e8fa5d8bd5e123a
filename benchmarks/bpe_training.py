"""BPE training: incremental pair counting (``train_bpe``) vs the naive recount (``train_bpe_naive``).

    python benchmarks/bpe_training.py            # 500 merges on 130 KB of English
    python benchmarks/bpe_training.py --quick    # 100 merges on 30 KB, a smoke run

The text: a fixed 130,000-character slice of the built-in corpus (CPython's reference
documentation, offline everywhere), GPT-2's pre-tokenisation, no special tokens. Both
trainers must return the same vocabulary and merges before their times mean anything.

Time: the two run interleaved, round after round, after a warm-up call each (which also
builds GPT-2's pattern, a one-time cost reported apart); reported are the median time of
each and the median of the per-round ratios (see BENCHMARKS.md). Pure Python, one thread.
"""
from __future__ import annotations

import argparse
import time

from tinylm.data import load_corpus, train_bpe, train_bpe_naive
from tinylm.data.pretokenize import gpt2_pattern
from timing import interleaved, median_ms, median_ratio

SLICE_START = 100_000  # past the first topics, into ordinary prose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, default=130_000, help="characters of the built-in corpus to train on")
    parser.add_argument("--merges", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 merges on 30,000 characters, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.chars, args.merges, args.rounds = 30_000, 100, 1

    start = time.perf_counter()
    gpt2_pattern()
    pattern_seconds = time.perf_counter() - start
    text = load_corpus("builtin")[SLICE_START : SLICE_START + args.chars]
    vocab_size = 256 + args.merges
    assert train_bpe(text, vocab_size) == train_bpe_naive(text, vocab_size), "the two trainers disagree"

    times = interleaved({"incremental": lambda: train_bpe(text, vocab_size), "naive": lambda: train_bpe_naive(text, vocab_size)}, args.rounds)
    print(f"BPE training, {args.merges} merges on {len(text):,} characters ({len(text.encode('utf-8')):,} bytes) "
          f"of the built-in corpus, {args.rounds} rounds")
    print(f"  GPT-2's pattern built once per process: {1e3 * pattern_seconds:.0f} ms (not in the times below)")
    for name in times:
        print(f"  {name:<12} {median_ms(times[name]):9.1f} ms")
    print(f"  naive / incremental: {median_ratio(times, 'naive', 'incremental'):.1f}x the time (median of per-round ratios)")


if __name__ == "__main__":
    main()
