"""Encoding speed: tinylm's BPETokenizer vs tiktoken and Hugging Face's GPT2Tokenizer.

    python benchmarks/tokenizer.py            # a 4,096-token vocabulary, 1 MB of English
    python benchmarks/tokenizer.py --quick    # a 1,024-token vocabulary, 100 KB, a smoke run

No real GPT-2 files exist offline, so the vocabulary is trained here, with ``train_bpe``,
on the first half of the built-in corpus (CPython's reference documentation): 4,096 tokens
(3,839 merges and <|endoftext|>). Why not 50,257 like GPT-2: the whole corpus runs out of
pairs at about 9,000 merges (by then every distinct word is one token), and a vocabulary
learned to exhaustion on the text it encodes would flatter every contender. The same
vocabulary goes to each: tiktoken gets its ranks (``tiktoken.Encoding(pat_str=GPT2's,
mergeable_ranks=...)``, built offline), transformers the vocab.json and merges.txt that
``save_pretrained`` writes. All must give the same ids before their times mean anything.

Two texts, both UTF-8 English prose with code: the whole corpus once (~465 KB, its second
half unseen in training), and 1 MB (the corpus over again, so its pieces repeat the way a
longer text's do). tinylm remembers the ids of each piece it has seen: "tinylm (cold)"
starts every call with an empty cache, "tinylm (warm)" keeps it. tiktoken keeps no cache.

Time: the contenders run interleaved, round after round, after a warm-up call each,
a 0.3 s pause before each timed call (see BENCHMARKS.md); reported are the median of
each in MB/s and the median of the per-round ratios. All single-threaded.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tinylm.data import BPETokenizer, load_corpus
from tinylm.data.bpe_files import read_tiktoken
from tinylm.data.pretokenize import GPT2_PATTERN
from timing import interleaved, median_ms, median_ratio


def contenders(tokenizer: BPETokenizer, text: str, folder: Path) -> dict:
    """One function per contender, each encoding ``text`` (special tokens as ordinary text)."""

    def tinylm_cold():
        tokenizer._cache.clear()  # the benchmark looks inside: every call starts from nothing
        return tokenizer.encode(text, special="text")

    runs = {"tinylm (cold)": tinylm_cold, "tinylm (warm)": lambda: tokenizer.encode(text, special="text")}
    try:
        import tiktoken
    except ImportError:
        print("  (tiktoken not installed: skipped)")
    else:
        tokenizer.save_tiktoken(folder / "ranks.tiktoken")
        encoding = tiktoken.Encoding(
            "benchmark", pat_str=GPT2_PATTERN, mergeable_ranks=read_tiktoken(folder / "ranks.tiktoken"), special_tokens={}
        )
        runs["tiktoken"] = lambda: encoding.encode_ordinary(text)
    try:
        import transformers
    except ImportError:
        print("  (transformers not installed: skipped)")
    else:
        tokenizer.save_pretrained(folder / "gpt2")
        hugging_face = transformers.GPT2Tokenizer.from_pretrained(folder / "gpt2", split_special_tokens=True)
        runs["transformers"] = lambda: hugging_face.encode(text)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--megabytes", type=float, default=1.0, help="the size of the longer text")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,024 tokens, 100 KB, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.vocab_size, args.megabytes, args.rounds = 1024, 0.1, 1

    corpus = load_corpus("builtin")
    tokenizer = BPETokenizer.train(corpus[: len(corpus) // 2], num_merges=args.vocab_size - 257, special_tokens=["<|endoftext|>"])
    longer = (corpus * (1 + int(args.megabytes * 1e6) // len(corpus)))[: int(args.megabytes * 1e6)]
    texts = {"the corpus once": corpus if not args.quick else corpus[:50_000], f"{args.megabytes:g} MB": longer}
    print(f"Encoding with a {tokenizer.vocab_size:,}-token byte-level BPE (GPT-2's pattern), {args.rounds} rounds, one thread")
    with tempfile.TemporaryDirectory() as folder:
        for label, text in texts.items():
            megabytes = len(text.encode("utf-8")) / 1e6
            runs = contenders(tokenizer, text, Path(folder))
            expected = runs["tinylm (cold)"]()
            for name, run in runs.items():
                assert run() == expected, f"{name} encodes differently"
            times = interleaved(runs, args.rounds)
            print(f"  {label}: {megabytes:.2f} MB, {len(expected):,} tokens ({megabytes * 1e6 / len(expected):.2f} bytes a token)")
            for name, seconds in times.items():
                median = median_ms(seconds) / 1e3
                print(f"    {name:<14} {megabytes / median:6.2f} MB/s  {len(expected) / median / 1e3:7.0f} k tokens/s  {1e3 * median:7.0f} ms")
            for name in times:
                if name.startswith("tinylm"):
                    continue
                for ours in ("tinylm (cold)", "tinylm (warm)"):
                    print(f"    {ours} / {name}: {median_ratio(times, ours, name):.2f}x the time")


if __name__ == "__main__":
    main()
