# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 5 — Tokenization
#
# A language model never sees text. It sees a sequence of integers, one per **token**, and
# the **tokenizer** decides what a token is. Characters give a tiny vocabulary and long
# sequences; words give short sequences, a huge vocabulary and words the model has never
# seen. **Byte-pair encoding** (BPE), the tokenizer of GPT-2 and most models since, sits
# in between: it starts from bytes and learns, from the text, which pieces to glue
# together.
#
# You will:
# 1. cut text into characters and into words, and see why words run out (Zipf's law);
# 2. write down what a tokenizer trades: vocabulary size, sequence length, and the loss
#    per *character*, the only fair unit to compare tokenizers in;
# 3. write byte-level BPE from scratch and watch its merges happen on a small text;
# 4. use tinylm's three tokenizers and check that they give the text back;
# 5. plot vocabulary size against sequence length against perplexity per character.
#
# `TINYLM_FAST=1` uses the first 60,000 characters of the corpus and BPE vocabularies up
# to 512 tokens. The full run (about a minute and a half on a laptop CPU) uses the whole
# corpus and vocabularies up to 2,304 tokens: BPE halves the sequence length and brings
# the per-character perplexity of a bigram model from about 10 down to about 4.

# %%
import math
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
from tinylm import data
from tinylm.ngram import KneserNeyLM

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)

text = data.load_corpus("builtin")
if FAST:
    text = text[:60_000]
split = int(len(text) * 0.9)  # the last 10% of the characters is held out, as in chapter 4
train_text, val_text = text[:split], text[split:]
print(f"{len(train_text):,} characters to learn from, {len(val_text):,} held out")

# %% [markdown]
# ## 1. Characters and words
#
# **Characters** are the simplest tokens: the vocabulary is the set of characters in the
# text, a few dozen for English (here also digits, punctuation and some symbols).
# **Words** need a rule for what a word is. A regular expression that cuts the text into
# runs of word characters, runs of whitespace and single other characters keeps every
# character in exactly one piece, so joining the pieces gives the text back:

# %%
chars = sorted(set(train_text))
PIECES = re.compile(r"\w+|\s+|[^\w\s]")
sentence = "Call obj.method(x, y=2)  twice."
print(f"{len(chars)} characters:", "".join(chars[:60]), "...")
print("words:", PIECES.findall(sentence))
assert "".join(PIECES.findall(sentence)) == sentence

# %% [markdown]
# How many different words are there? Counting them and sorting by frequency shows
# **Zipf's law**: the $r$-th most frequent word occurs about $1/r$ times as often as the
# first, a straight line of slope $-1$ on log-log axes. The head is a few hundred words;
# the tail goes on and on, and a text the model has not read brings words it never saw.

# %%
WORDS = re.compile(r"\w+")  # the pieces that are words (not spaces or punctuation)
word_counts = Counter(WORDS.findall(train_text))
unseen = np.mean([word not in word_counts for word in WORDS.findall(val_text)])
frequencies = np.array(sorted(word_counts.values(), reverse=True))
print(f"{len(word_counts):,} different words in training; {np.sum(frequencies == 1):,} of them occur once")
print(f"{unseen:.1%} of the words of the held-out text never occur in the training text")

fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
ranks = np.arange(1, len(frequencies) + 1)
ax.loglog(ranks, frequencies, label="words of the training text")
ax.loglog(ranks, frequencies[0] / ranks, "--", color="gray", label="Zipf: frequency ∝ 1 / rank")
ax.set_xlabel("rank")
ax.set_ylabel("count")
ax.set_title("a few words are everywhere, most are rare")
ax.legend()
ax.grid(alpha=0.3, which="both")
plt.show()

# %% [markdown]
# ## 2. The math: what a tokenizer trades
#
# A text of $C$ characters becomes $N$ tokens from a vocabulary of $V$. Three numbers
# matter:
#
# * **$V$**, the vocabulary size: the embedding table and the output layer each have $V$
#   rows, and the softmax runs over $V$ classes.
# * **$N / C$**, tokens per character: the length of the sequence the model has to read
#   (the steps of an RNN; attention costs $N^2$), and how many characters a context of
#   $n$ tokens covers.
# * **the loss per character.** A model's loss is in nats per *token*, and a token of a
#   bigger vocabulary carries more text, so per-token losses of two tokenizers cannot be
#   compared. Spread over the characters,
#
# $$\mathcal{L}_{\text{char}} = \mathcal{L}_{\text{token}} \cdot \frac{N}{C}, \qquad
#   \text{bits per character} = \frac{\mathcal{L}_{\text{char}}}{\ln 2}, \qquad
#   \text{perplexity per character} = e^{\mathcal{L}_{\text{char}}}.$$
#
# Both sides are the log-probability of the same text, so the comparison is fair — as
# long as the tokenizer is **lossless**: a word tokenizer that maps every unknown word to
# one `<unk>` token never has to say *which* unknown word it was, and its loss looks
# better than it is.
#
# ## 3. Byte-level BPE, from scratch
#
# Byte-level BPE starts from the UTF-8 **bytes** of the text: 256 possible tokens, and
# every string, in any script, is a sequence of them (é is two bytes, 語 three, 🙂 four).
# Nothing is ever unknown. Then it learns a vocabulary:
#
# 1. cut the text into pieces (as the word rule above) and count each piece;
# 2. count every pair of adjacent tokens inside the pieces, weighted by the piece's count;
# 3. give the most frequent pair a new id ($256, 257, \dots$) and replace it everywhere;
# 4. repeat, `num_merges` times.
#
# Merges never cross a piece boundary, so " the" and "the," share the tokens of "the".
# To encode new text, apply the learned merges in the order they were learned.

# %%
print({s: list(s.encode("utf-8")) for s in ("a", "é", "語", "🙂")})


def merge(sequence: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """``sequence`` with every occurrence of ``pair`` (left to right) replaced by ``new_id``."""
    merged, i = [], 0
    while i < len(sequence):
        if i + 1 < len(sequence) and (sequence[i], sequence[i + 1]) == pair:
            merged.append(new_id)
            i += 2
        else:
            merged.append(sequence[i])
            i += 1
    return merged


def train_bpe(text: str, num_merges: int) -> tuple[list[tuple[int, int]], list[dict]]:
    """The merges, in order, and what happened at each step (for watching)."""
    piece_counts = Counter(PIECES.findall(text))
    sequences = {piece: list(piece.encode("utf-8")) for piece in piece_counts}
    token_bytes = [bytes([b]) for b in range(256)]
    merges, steps = [], []
    for new_id in range(256, 256 + num_merges):
        pairs: Counter = Counter()
        for piece, sequence in sequences.items():
            for pair in zip(sequence, sequence[1:]):
                pairs[pair] += piece_counts[piece]
        if not pairs:  # every piece is a single token: nothing left to merge
            break
        best = max(pairs, key=pairs.get)
        merges.append(best)
        token_bytes.append(token_bytes[best[0]] + token_bytes[best[1]])
        sequences = {piece: merge(sequence, best, new_id) for piece, sequence in sequences.items()}
        length = sum(len(sequences[piece]) * count for piece, count in piece_counts.items())
        steps.append(dict(pair=best, new_id=new_id, count=pairs[best], token=token_bytes[-1], length=length))
    return merges, steps


def bpe_encode(text: str, merges: list[tuple[int, int]]) -> list[int]:
    """Bytes, then the merges replayed in the order they were learned."""
    ids = []
    for piece in PIECES.findall(text):
        sequence = list(piece.encode("utf-8"))
        for rank, pair in enumerate(merges):
            sequence = merge(sequence, pair, 256 + rank)
        ids.extend(sequence)
    return ids


def token_text(token_id: int, merges: list[tuple[int, int]]) -> bytes:
    if token_id < 256:
        return bytes([token_id])
    left, right = merges[token_id - 256]
    return token_text(left, merges) + token_text(right, merges)


# %% [markdown]
# ### Watch the merges happen
#
# A tiny text in which a few words share beginnings and endings (the example of Sennrich
# et al., who brought BPE to translation in 2016). Each line is one merge: the pair of
# tokens it glues, how often that pair occurred, and the length of the whole text in
# tokens afterwards.

# %%
small = "low " * 5 + "lower " * 2 + "newest " * 6 + "widest " * 3
merges, steps = train_bpe(small, 12)
print(f"{'step':>4}  {'pair':<18}{'new token':<12}{'count':>6}{'text length':>13}")
print(f"{'':>4}  {'(bytes)':<18}{'':<12}{'':>6}{len(small.encode()):>13}")
for number, step in enumerate(steps, 1):
    left, right = (token_text(t, merges).decode() for t in step["pair"])
    print(f"{number:>4}  {f'{left!r} + {right!r}':<18}{step['token'].decode()!r:<12}{step['count']:>6}{step['length']:>13}")

# %% [markdown]
# "es" and "est" come first (9 occurrences, in "newest" and "widest"), then "lo" and
# "low", shared by "low" and "lower". The segmentation of a few words after 0, 3, 6 and 12
# merges, with | between tokens — and a word the text never had, cut into known pieces:

# %%
for count in (0, 3, 6, 12):
    shown = [
        "|".join(token_text(t, merges[:count]).decode() for t in bpe_encode(word, merges[:count]))
        for word in ("lower", "newest", "widest", "lowest")
    ]
    print(f"after {count:>2} merges: " + "   ".join(shown))

# %% [markdown]
# The same on the first 20,000 characters of the corpus: the first merges are the pairs of English
# ("e" + " " is not among them: merges stay inside a piece, and a space is a piece of its
# own), and soon whole frequent words are single tokens.

# %%
corpus_start = train_text[:20_000]
corpus_merges, corpus_steps = train_bpe(corpus_start, 40)
print("first 40 merges:", " ".join(repr(step["token"].decode("utf-8", errors="replace")) for step in corpus_steps))
print(f"tokens: {len(corpus_start.encode()):,} bytes -> {corpus_steps[-1]['length']:,} after 40 merges")

# %% [markdown]
# ## 4. The tinylm tokenizers, checked
#
# `data.train_tokenizer(kind, text, ...)` builds any of the three from a training text:
# `"char"`, `"word"` (words seen fewer than `min_frequency` times become `<unk>`) and
# `"bpe"` (`num_merges` merges over the 256 bytes). Each has `encode`, `decode` and
# `vocab_size`, and saves and loads its vocabulary as JSON. tinylm's BPE cuts the text
# into pieces by its own rule before merging (GPT-2 uses a particular regular expression
# for this), so its merges need not be exactly ours, but the algorithm is the one above.
#
# Check it: every tokenizer must give back the text it was trained on, and encode it the
# same after its vocabulary is saved and loaded (`tokenizer.save(path)`,
# `data.load_tokenizer(path)`); the byte-level BPE must give back *any* string; and the
# character tokenizer must refuse, with a clear message, a character it never saw.

# %%
tokenizers = {
    "char": data.train_tokenizer("char", train_text),
    "word": data.train_tokenizer("word", train_text),
    "bpe": data.train_tokenizer("bpe", corpus_start, num_merges=40),
}
folder = Path(tempfile.mkdtemp())
for name, tokenizer in tokenizers.items():
    ids = tokenizer.encode(train_text[:5_000])
    assert tokenizer.decode(ids) == train_text[:5_000]
    tokenizer.save(folder / f"{name}.json")  # the vocabulary (or the merges) as JSON
    assert data.load_tokenizer(folder / f"{name}.json").encode(train_text[:5_000]) == ids
    print(f"{name:>4}: vocabulary {tokenizer.vocab_size:>6,}, {len(ids):>5,} tokens for 5,000 characters, "
          "round trip exact, saved and loaded")

ours = bpe_encode(corpus_start[:5_000], corpus_merges)
print(f"from scratch, 40 merges: {len(ours):,} tokens for the same 5,000 characters "
      f"(tinylm: {len(tokenizers['bpe'].encode(corpus_start[:5_000])):,})")

strange = "naïve café, 言語モデル, 🙂 — ∑"
assert tokenizers["bpe"].decode(tokenizers["bpe"].encode(strange)) == strange
print("bpe on text it never saw:", strange, "->", tokenizers["bpe"].encode(strange)[:12], "... and back")
print("word on it:", repr(tokenizers["word"].decode(tokenizers["word"].encode(strange))))
try:
    tokenizers["char"].encode("言語")
except ValueError as error:
    print("char on it:", error)

# %% [markdown]
# ## See it: vocabulary size, sequence length and perplexity per character
#
# For each tokenizer, trained on the training text (BPE on a sample of it, as is usual:
# training a tokenizer is slow in pure Python; the character tokenizer on the whole text,
# since it must know every character it will meet — the held-out text has a few the
# training text lacks, and section 4 showed what happens then): the vocabulary size $V$, the tokens per
# character $N / C$ of the held-out text, and the perplexity per character of two
# Kneser–Ney n-gram models ([chapter 4](04_ngram_language_models.ipynb)) counted on the
# training tokens, one that sees one token back (a bigram) and one that sees three. An
# n-gram model is quick to fit on any vocabulary, and its context is a fixed number of
# *tokens*, so the plot shows what longer tokens buy: more characters of context in the
# same $n$.

# %%
bpe_sample = train_text[:20_000] if FAST else train_text[:100_000]
choices = [("char", {})] + [("bpe", {"num_merges": m}) for m in ((16, 64, 256) if FAST else (16, 64, 256, 1024, 2048))]
choices += [("word", {"min_frequency": 1}), ("word", {"min_frequency": 3})]
piece_counts, val_pieces = Counter(PIECES.findall(train_text)), PIECES.findall(val_text)
results = []
for kind, options in choices:
    source = {"char": text, "bpe": bpe_sample, "word": train_text}[kind]
    tokenizer = data.train_tokenizer(kind, source, **options)
    train_tokens, val_tokens = tokenizer.encode(train_text), tokenizer.encode(val_text)
    per_char = len(val_tokens) / len(val_text)
    row = dict(kind=kind, options=options, vocab=tokenizer.vocab_size, tokens_per_char=per_char)
    for order in (2, 4):
        nats_per_token = KneserNeyLM(order).fit(train_tokens, tokenizer.vocab_size).evaluate(val_tokens)
        row[order] = math.exp(nats_per_token * per_char)  # perplexity per character
    if kind == "word":  # the held-out pieces seen fewer than min_frequency times in training
        row["unknown"] = np.mean([piece_counts[piece] < options["min_frequency"] for piece in val_pieces])
    results.append(row)
    print(f"{kind:>4} {str(options):<22} V = {row['vocab']:>5,}  tokens/char {per_char:.3f}  "
          f"perplexity per char: bigram {row[2]:5.2f}, 4-gram {row[4]:5.2f}"
          + (f"  ({row['unknown']:.1%} <unk>)" if kind == "word" else ""))

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
styles = {"char": dict(marker="s", color="tab:blue"), "bpe": dict(marker="o", color="tab:orange"), "word": dict(marker="^", color="tab:green")}
for kind in styles:
    rows = [r for r in results if r["kind"] == kind]
    vocab = [r["vocab"] for r in rows]
    label = {"char": "characters", "bpe": "byte-level BPE", "word": "words (lossy: <unk>)"}[kind]
    fill = "none" if kind == "word" else styles[kind]["color"]
    left.plot(vocab, [r["tokens_per_char"] for r in rows], linestyle="-", label=label, markerfacecolor=fill, **styles[kind])
    for order, line in ((2, "-"), (4, "--")):
        right.plot(vocab, [r[order] for r in rows], linestyle=line, markerfacecolor=fill, **styles[kind],
                   label=f"{label}, {'bigram' if order == 2 else '4-gram'}")
for r in results:
    if r["kind"] == "word":
        right.annotate(f"min_frequency {r['options']['min_frequency']}", (r["vocab"], r[4]), fontsize=7,
                       textcoords="offset points", xytext=(4, -10))
left.set_ylabel("tokens per character (sequence length)")
left.set_title("a bigger vocabulary, a shorter sequence")
right.set_ylabel("perplexity per character")
right.set_title("the same n covers more text: perplexity falls")
for ax in (left, right):
    ax.set_xscale("log")
    ax.set_xlabel("vocabulary size V")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# What the plot says:
#
# * Each BPE merge adds one token to the vocabulary and removes occurrences from the
#   sequence; the first merges remove the most (they are the most frequent pairs), later
#   ones less and less.
# * For the bigram model, longer tokens are pure gain: one token back is more and more
#   characters back. For the 4-gram the curve flattens: three BPE tokens already cover
#   a word or two, and with a vocabulary of thousands each context has been seen fewer
#   times (chapter 4's sparsity again) — a neural model, whose context is not a table,
#   gains more from the shorter sequence.
# * The word tokenizer *looks* best, and looks better still when more words become `<unk>`
#   (`min_frequency=3`): it is not lossless, and the probability of spelling out an unknown
#   word is missing from its loss. That is the cheat that byte-level BPE removes.
#
# Real models choose vocabularies of 30,000 to 250,000 tokens (GPT-2: 50,257), trained on
# gigabytes of text; the trade-off is the same.

# %% [markdown]
# ## Exercises
#
# 1. Encode the same sentence in English, in French with accents, in Chinese and as
#    emoji with the BPE tokenizer trained above. How many tokens per character does each
#    take, and why does a tokenizer trained on English text spend more tokens on the
#    others?
# 2. Show that `bpe_encode` followed by decoding the bytes gives back *every* string,
#    whatever the merges (why can a merge never lose information?). Test it on random
#    strings of random Unicode characters.
# 3. GPT-2 cuts the text with a regular expression in which a word keeps the space before
#    it (" the" is one piece). Change `PIECES` so that it does, retrain `train_bpe` on the
#    corpus_start, and compare the first 40 merges.
# 4. With an embedding size of 64, how many parameters do the embedding table and the
#    output layer of [chapter 10](10_char_language_model.ipynb)'s LSTM (hidden size 256)
#    take for each vocabulary of the plot? From which vocabulary on do they outweigh the
#    LSTM itself?
# 5. `train_bpe` recounts every pair after every merge. Only the pairs next to a merged
#    pair change: keep the counts and update them after each merge. How much faster is it
#    for 1,000 merges on the whole training text?
