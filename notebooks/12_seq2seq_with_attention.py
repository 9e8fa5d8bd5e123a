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
# # Chapter 12 — Sequence to sequence with attention
#
# Translation turns one sequence into another of a different length, in which the
# order of the parts can change. The model that first did it well is an **encoder**
# that reads the source, a **decoder** that writes the target one token at a time, and
# between them the **attention** of [chapter 11](11_attention.ipynb): before each output
# token, the decoder looks back at the whole source and decides what to read.
#
# Our translation task is small enough to train in a minute on a CPU and hard enough to
# need attention: write a number in **English words**, "40213" → "forty thousand two
# hundred thirteen". The output is longer than the input, and it reads the digits in an
# order that depends on the number (the "thousand" comes after the first two or three
# digits, "thirteen" reads two digits at once, a zero is not written at all).
#
# You will:
# 1. build the task: source and target vocabularies, start and end tokens, padding;
# 2. write down the encoder–decoder, additive attention and teacher forcing;
# 3. write one decoder step from scratch with tensor ops and check it against
#    `nn.Seq2Seq`, the gradient check and PyTorch;
# 4. train the model and draw its attention: which digit each word was read from;
# 5. decode with greedy search and with **beam search** (`tinylm.decoding`), and score the
#    outputs with **exact match** and **BLEU** (`tinylm.metrics`).
#
# `TINYLM_FAST=1` trains for 120 steps and scores 60 held-out numbers: the model is still
# learning, and beam search already helps. The full run (about two minutes on a laptop
# CPU) trains for 1,000 steps: greedy and beam search then both write almost every
# held-out number exactly right, and the attention maps are sharp.

# %%
import math
import os
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
import tinylm.functional as F
from tinylm import metrics, nn, optim, viz
from tinylm.decoding import beam_search
from tinylm.progress import progress_bar

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The task: numbers into words
#
# The source is the digits of a number from 0 to 999,999 (vocabulary: the ten digits
# and a padding token). The target is its English name (vocabulary: 30 words, and two
# tokens of its own: `<start>`, the decoder's first input, and `<end>`, which the decoder
# writes when it is done — that is how a decoder chooses the length of its output).

# %%
ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen").split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> list[str]:
    """0 <= n < 1,000,000 in English words, without "and": 40213 -> forty thousand two hundred thirteen."""
    if n < 20:
        return [ONES[n]]
    if n < 100:
        return [TENS[n // 10 - 2]] + ([ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [ONES[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])
    return number_words(n // 1000) + ["thousand"] + (number_words(n % 1000) if n % 1000 else [])


PAD = 10  # the source vocabulary: digits 0-9 and padding
WORDS = ["<start>", "<end>"] + ONES + TENS + ["hundred", "thousand"]
START, END = 0, 1
WORD_ID = {word: i for i, word in enumerate(WORDS)}
for n in (7, 40213, 100005, 999999):
    print(f"{n:>7} -> {' '.join(number_words(n))}")

# %% [markdown]
# Numbers are drawn with 1 to 6 digits, each length equally often. 1,000 numbers are held
# out for testing and never trained on. A batch pads the sources to the longest one
# (`PAD`, and `source_lengths` tells the encoder and the attention where each source
# ends); the decoder's input is `<start>` followed by the target words (**teacher
# forcing**: it is fed the true previous word), and its target is the words followed by
# `<end>`, padded with $-100$, the `ignore_index` of `F.cross_entropy`.


# %%
def draw_numbers(count: int) -> np.ndarray:
    digits = rng.integers(1, 7, size=count)
    return np.array([rng.integers(0 if d == 1 else 10 ** (d - 1), 10**d) for d in digits])


test_numbers = rng.permutation(np.unique(draw_numbers(3_000)))[:1_000]
held_out = set(test_numbers.tolist())


def training_numbers(count: int) -> np.ndarray:
    return np.array([n for n in draw_numbers(2 * count) if n not in held_out][:count])


def make_batch(numbers):
    """(source (B, S), source_lengths (B,), target_in (B, T), target (B, T))."""
    sources = [[int(d) for d in str(n)] for n in numbers]
    targets = [[WORD_ID[w] for w in number_words(int(n))] + [END] for n in numbers]
    batch, S, T = len(numbers), max(map(len, sources)), max(map(len, targets))
    source, target_in = np.full((batch, S), PAD), np.full((batch, T), END)
    target = np.full((batch, T), -100)
    for row, (digits, words) in enumerate(zip(sources, targets)):
        source[row, : len(digits)] = digits
        target[row, : len(words)] = words
        target_in[row, 0], target_in[row, 1 : len(words)] = START, words[:-1]
    return source, np.array([len(s) for s in sources]), target_in, target


source, lengths, target_in, target = make_batch([40213, 7])
print("source\n", source, "\nlengths", lengths, "\ntarget_in\n", target_in, "\ntarget\n", target)

# %% [markdown]
# ## 2. The math
#
# The decoder factorises the probability of the target $y_1 \dots y_T$ given the source
# $x_1 \dots x_S$ by the chain rule, as a language model does, only every factor also sees
# the source:
#
# $$p(y \mid x) = \prod_{t=1}^{T} p(y_t \mid y_1, \dots, y_{t-1}, x).$$
#
# **Encoder**: a GRU ([chapter 9](09_gru.ipynb)) reads the embedded source and keeps its
# state at every position, $s_1 \dots s_S$ (a padded batch stops each row at its length).
# Its last state starts the decoder, $h_0 = s_S$.
#
# **Additive attention** (Bahdanau et al., 2015): with the previous decoder state
# $h_{t-1}$ as the query,
#
# $$e_{tj} = v^\top \tanh(W_q h_{t-1} + W_k s_j), \qquad
#   \alpha_{tj} = \frac{\exp e_{tj}}{\sum_{j' \le S_b} \exp e_{tj'}}, \qquad
#   c_t = \sum_j \alpha_{tj} s_j,$$
#
# where the sum runs over the real positions of the source only ($e_{tj} = -\infty$ on the
# padding). $\alpha_t$ is the attention row we will draw: which digits step $t$ reads.
#
# **Decoder**: a GRU cell fed the embedding of the previous token and the context,
#
# $$h_t = \operatorname{GRUCell}\big([\,E_y[y_{t-1}];\ c_t\,],\ h_{t-1}\big), \qquad
#   p(y_t \mid y_{<t}, x) = \operatorname{softmax}\big(W_o [\,h_t;\ c_t\,] + b_o\big).$$
#
# **Training** minimises the cross-entropy of the target tokens with the true previous
# token as input (teacher forcing), over the real tokens only. At test time there is no
# true previous token: the decoder is fed its own outputs (section 6).
#
# ## 3. From scratch: one decoder step
#
# The encoder and the GRU cell are the layers of chapter 9. New here is the wiring:
# attention with a padding mask, the context, the concatenations. We take an untrained
# `nn.Seq2Seq` and rewrite its `decode_step` with tensor ops, using its weights.

# %%
model = nn.Seq2Seq(source_vocab=11, target_vocab=len(WORDS), embed_dim=32, hidden_size=64)
source, lengths, target_in, target = make_batch([40213, 7, 999])
encoded, _, h, _ = model.encode(source, lengths)  # encoded (B, S, H): s_1 … s_S; h (B, H): h_0


def attend_from_scratch(h, encoded, lengths):
    """Additive attention of each query h (B, H) over its source: context (B, H), weights (B, S)."""
    W_q, W_k, v = model.attention.query_proj.weight, model.attention.key_proj.weight, model.attention.score.weight
    hidden = (h @ W_q.T)[:, None, :] + encoded @ W_k.T  # (B, S, H): W_q h + W_k s_j for every j
    scores = (hidden.tanh() @ v.T).reshape(h.shape[0], -1)  # (B, S): e_j
    real = np.arange(encoded.shape[1])[None, :] < lengths[:, None]
    scores = tl.where(real, scores, -np.inf)  # padding: e_j = -∞, weight exactly 0
    weights = F.softmax(scores, axis=-1)
    context = (weights.reshape(*weights.shape, 1) * encoded).sum(axis=1)  # Σ_j α_j s_j
    return context, weights


def decode_step_from_scratch(tokens, h, encoded, lengths):
    context, weights = attend_from_scratch(h, encoded, lengths)
    h = model.decoder(tl.concat([model.target_embedding(tokens), context], axis=1), h)
    logits = model.output(tl.concat([h, context], axis=1))
    return logits, h, weights


tokens = target_in[:, 0]
ours = decode_step_from_scratch(tokens, h, encoded, lengths)
padding_mask = (np.arange(encoded.shape[1]) < lengths[:, None])[:, None, :]  # (B, 1, S), True = a real digit
theirs = model.decode_step(tokens, h, encoded, model.attention.project_keys(encoded), padding_mask)
for name, a, b in zip(("logits", "new state h", "attention weights"), ours, theirs):
    print(f"{name:>18}: from scratch vs nn.Seq2Seq.decode_step, largest difference {np.abs(a.numpy() - b.numpy()).max():.1e}")
    assert np.allclose(a.numpy(), b.numpy(), atol=1e-6)
print("attention on padding:", ours[2].numpy()[1], "(the source '7' has one real position)")

# %% [markdown]
# ## 4. Check it
#
# The gradient check in float64: of `nn.AdditiveAttention` with respect to its query,
# keys and values, with a padding mask, and of a whole small `nn.Seq2Seq` with respect to
# every parameter, on a padded batch.

# %%
tl.set_default_dtype(np.float64)
attention = nn.AdditiveAttention(query_size=3, key_size=4, hidden_size=5)
query, keys, values = tl.randn(2, 1, 3, requires_grad=True), tl.randn(2, 6, 4, requires_grad=True), tl.randn(2, 6, 2, requires_grad=True)
mask = (np.arange(6)[None, :] < np.array([6, 4])[:, None])[:, None, :]  # (B, 1, S): the second source has 4 positions
tl.gradcheck(lambda q, k, v: attention(q, k, v, mask)[0], [query, keys, values], verbose=True)

small = nn.Seq2Seq(source_vocab=11, target_vocab=len(WORDS), embed_dim=3, hidden_size=4)
small_source, small_lengths, small_in, small_target = make_batch([52, 7])
tl.gradcheck(
    lambda *parameters: F.cross_entropy(small(small_source, small_in, small_lengths), small_target),
    small.parameters(), verbose=True,
)
tl.set_default_dtype(np.float32)

# %% [markdown]
# PyTorch has no additive attention layer, but its autograd is an independent check of
# ours: the same formula in PyTorch operations, the same numbers in, the same output and
# gradients out.

# %%
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the comparison")

if torch is not None:
    tl.set_default_dtype(np.float64)
    query, keys, values = (tl.randn(2, 1, 3, requires_grad=True), tl.randn(2, 6, 4, requires_grad=True), tl.randn(2, 6, 2, requires_grad=True))
    context, _ = attention(query, keys, values, mask)
    (context * context).sum().backward()
    tq, tk, tv = (torch.tensor(t.numpy(), requires_grad=True) for t in (query, keys, values))
    W_q, W_k, v = (torch.tensor(p.numpy()) for p in (attention.query_proj.weight, attention.key_proj.weight, attention.score.weight))
    scores = (torch.tanh((tq @ W_q.T)[:, :, None, :] + (tk @ W_k.T)[:, None, :, :]) @ v.T)[..., 0]
    scores = scores.masked_fill(~torch.tensor(mask), float("-inf"))
    torch_context = torch.softmax(scores, dim=-1) @ tv
    (torch_context * torch_context).sum().backward()
    for name, ours_, theirs_ in (("context", context, torch_context), ("d query", query.grad, tq.grad), ("d keys", keys.grad, tk.grad), ("d values", values.grad, tv.grad)):
        difference = np.abs(ours_.numpy() - theirs_.detach().numpy()).max()
        print(f"{name:>9}: tinylm vs PyTorch, largest difference {difference:.1e}")
        assert difference < 1e-10
    tl.set_default_dtype(np.float32)

# %% [markdown]
# ## 5. Training, and what the decoder reads
#
# Adam, batches of 64 numbers, gradients clipped to norm 1 ([chapter 7](07_rnn_and_bptt.ipynb)).
# A few snapshots of the weights along the way let section 6 compare the decoders on a
# model that is still unsure and on one that has learned.

# %%
tl.manual_seed(0)
model = nn.Seq2Seq(source_vocab=11, target_vocab=len(WORDS), embed_dim=32, hidden_size=64)
optimizer = optim.Adam(model.parameters(), lr=5e-3)
steps = 120 if FAST else 1_000
snapshot_steps = (40, 80, 120) if FAST else (50, 100, 200, 400, 1_000)
snapshots, losses = {}, []
for step in progress_bar(range(1, steps + 1), desc="seq2seq"):
    source, lengths, target_in, target = make_batch(training_numbers(64))
    loss = F.cross_entropy(model(source, target_in, source_lengths=lengths), target)
    optimizer.zero_grad()
    loss.backward()
    optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
    losses.append(loss.item())
    if step in snapshot_steps:
        snapshots[step] = model.state_dict()

fig = viz.plot_loss(losses, smooth=20, ylabel="cross-entropy per target token (nats)", log_scale=True)
fig.axes[0].set_title("learning to write numbers in words")
fig

# %% [markdown]
# ## See it: which digit each word was read from
#
# The attention weights $\alpha_{tj}$ while the trained model writes two numbers (greedy
# decoding, section 6): row $t$ is the word written at step $t$, column $j$ the digit at
# source position $j$. Nobody told the model which digit a word comes from; the
# alignment is learned from the loss alone, and it runs left to right through the
# source, in the order the words need the digits. Look at the teens (one word for two
# digits), at the zeros (which no word reads), and at where "hundred" and "thousand"
# look. (An attention row is not a proof of what the model used: the encoder state at
# position $j$ also carries what the encoder read before $j$.)

# %%
examples = [405213, 17060] if not FAST else [405213, 76]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
for ax, number in zip(axes, examples):
    source, lengths, _, _ = make_batch([number])
    tokens, weights = model.greedy_decode(source, START, length=12, source_lengths=lengths)
    written = tokens.numpy()[0].tolist()
    steps_shown = written.index(END) + 1 if END in written else len(written)
    viz.plot_attention(weights.numpy()[0, :steps_shown, : lengths[0]], x_labels=list(str(number)),
                       y_labels=[WORDS[i] for i in written[:steps_shown]], ax=ax)
    ax.set_xlabel("source digit")
    ax.set_ylabel("word written")
plt.show()

# %% [markdown]
# ## 6. Decoding: greedy and beam search
#
# The decoder gives $\log p(y_t \mid y_{<t}, x)$ for every next token; the best output is
# the sequence with the largest
#
# $$\log P(y \mid x) = \sum_t \log p(y_t \mid y_{<t}, x),$$
#
# but there are $V^T$ sequences. **Greedy** decoding (`greedy_decode`) takes the most
# likely token at every step and feeds it back in. It is myopic: a token that looks best
# now may lead only to unlikely continuations. **Beam search** keeps the `beam_width`
# best prefixes at every step instead of one: extend each by every token, keep the best
# `beam_width` of all the candidates; a candidate that ends in `<end>` is set aside as
# finished and the beam shrinks by one; stop when the beam is empty. With
# `beam_width=1` it is greedy decoding.
#
# `tinylm.decoding.beam_search(step, state, start_id, end_id, beam_width, max_length,
# length_penalty)` reaches the model through one function, `step(tokens, state) ->
# (log_probs, state)`, so it serves any decoder; `Seq2Seq.beam_search` wires it to this
# model. First a decoder made of a table, where the answer is known: greedy takes "a"
# (0.6) but then finds nothing better than 0.36; "b" (0.4) leads to `<end>` with 0.9.

# %%
table = {"<start>": {"a": 0.6, "b": 0.4}, "a": {"x": 0.36, "y": 0.34, "<end>": 0.3}, "b": {"<end>": 0.9, "x": 0.1},
         "x": {"<end>": 1.0}, "y": {"<end>": 1.0}}
toy_vocabulary = list(table) + ["<end>"]


def table_step(tokens, state):
    """log p(next | last token), read off the table; this decoder carries no state."""
    log_probs = np.full((len(tokens), len(toy_vocabulary)), -np.inf)
    for row, token in enumerate(tokens):
        for following, p in table[toy_vocabulary[token]].items():
            log_probs[row, toy_vocabulary.index(following)] = math.log(p)
    return log_probs, state


for width in (1, 2):
    found = beam_search(table_step, None, start_id=0, end_id=len(toy_vocabulary) - 1, beam_width=width)
    best = found[0]
    print(f"beam width {width}: {' '.join(toy_vocabulary[t] for t in best.tokens)}  P = {math.exp(best.log_probability):.3f}")

# %% [markdown]
# **Length normalisation.** Every token multiplies $P(y \mid x)$ by a number below one,
# so the raw log-probability favours short outputs. Beam search ranks the finished
# hypotheses by
#
# $$\text{score}(y) = \frac{\log P(y \mid x)}{|y|^{\alpha}}$$
#
# with $|y|$ the number of tokens written (`<end>` included) and $\alpha$ the
# `length_penalty`: $0$ is the raw log-probability (the default), $1$ the mean
# log-probability per token. It only ranks the finished hypotheses; which prefixes stay
# in the beam is decided by $\log P$.
#
# ## 7. Scoring the outputs: exact match and BLEU
#
# **Exact match** counts the outputs that are exactly right. It is the honest measure
# for numbers, and it gives no credit for "forty thousand two hundred thirty" when the
# answer is "forty thousand two hundred thirteen". Translation has no single right
# answer, and needs a measure of *how close*: **BLEU** (Papineni et al., 2002) counts the
# n-grams (1 to 4 words) of the output that occur in a reference, each counted at most as
# often as the reference has it (**clipping**: "the the the" earns one "the"), over the
# whole test corpus,
#
# $$p_n = \frac{\sum_{\text{sentences}} \sum_{g} \min\big(c_{\text{out}}(g),\, c_{\text{ref}}(g)\big)}
#              {\sum_{\text{sentences}} \#\text{n-grams of the output}}, \qquad
#   \text{BLEU} = \text{BP} \cdot \exp\Big(\frac{1}{4}\sum_{n=1}^{4} \ln p_n\Big),$$
#
# and multiplies by a **brevity penalty** $\text{BP} = \min(1, e^{1 - r/c})$ ($c$ the
# length of all the outputs, $r$ of the references), which stops an output that says only
# what it is sure of from scoring high precisions. By hand, for one sentence:

# %%
reference = number_words(40213)
output = number_words(40230)
print("reference:", " ".join(reference), "\noutput:   ", " ".join(output))
precisions = []
for n in range(1, 5):
    output_grams = Counter(tuple(output[i : i + n]) for i in range(len(output) - n + 1))
    reference_grams = Counter(tuple(reference[i : i + n]) for i in range(len(reference) - n + 1))
    matched = sum(min(count, reference_grams[gram]) for gram, count in output_grams.items())
    precisions.append(matched / sum(output_grams.values()))
    print(f"  {n}-grams: {matched} of {sum(output_grams.values())} in the reference")
brevity = min(1.0, math.exp(1 - len(reference) / len(output)))
by_hand = brevity * math.exp(sum(math.log(p) for p in precisions) / 4)
bleu = metrics.corpus_bleu([[reference]], [output])
print(f"BLEU by hand {by_hand:.4f}, metrics.corpus_bleu {bleu.score:.4f} (precisions {np.round(bleu.precisions, 3)}, BP {bleu.brevity_penalty:.3f})")
assert math.isclose(by_hand, bleu.score)

# %% [markdown]
# Now the test set, at every snapshot of training: greedy decoding against beam search
# with a beam of 4, both scored by exact match and corpus BLEU, and the mean
# $\log P(y \mid x)$ of what each decoder wrote.


# %%
def until_end(tokens) -> list[str]:
    tokens = list(tokens)
    return [WORDS[t] for t in (tokens[: tokens.index(END)] if END in tokens else tokens)]


evaluated = test_numbers[: 60 if FAST else 200]
references = [[number_words(int(n))] for n in evaluated]
results = {}
trained_weights = model.state_dict()
for step, weights in snapshots.items():
    model.load_state_dict(weights)
    greedy, beam, greedy_scores, beam_scores = [], [], [], []
    for number in evaluated:
        source, lengths, _, _ = make_batch([number])
        tokens, _ = model.greedy_decode(source, START, length=12, source_lengths=lengths)
        (first,) = model.beam_search(source, START, END, beam_width=1, max_length=12)  # greedy, with its log P
        best = model.beam_search(source, START, END, beam_width=4, max_length=12)[0]
        greedy.append(until_end(tokens.numpy()[0]))
        assert greedy[-1] == until_end(first.tokens)
        beam.append(until_end(best.tokens))
        greedy_scores.append(first.log_probability)
        beam_scores.append(best.log_probability)
    results[step] = {
        name: dict(exact=metrics.exact_match(references, outputs), bleu=metrics.corpus_bleu(references, outputs).score,
                   log_p=np.mean(scores), scores=scores, words=np.mean([len(o) for o in outputs]))
        for name, outputs, scores in (("greedy", greedy, greedy_scores), ("beam 4", beam, beam_scores))
    }
    print(f"step {step:>5}: " + "   ".join(
        f"{name}: exact {r['exact']:.3f}, BLEU {r['bleu']:.3f}, mean log P {r['log_p']:6.3f}, {r['words']:.2f} words"
        for name, r in results[step].items()))
print(f"the references: {np.mean([len(r[0]) for r in references]):.2f} words on average")
_ = model.load_state_dict(trained_weights)

# %% [markdown]
# ## See it: what beam search buys, and when
#
# Left: exact match and BLEU of both decoders along training. Right: for every held-out
# number, the log-probability of the output each decoder found, at the earliest snapshot:
# points above the diagonal are numbers for which beam search found a more likely output
# than greedy decoding. While the model is unsure, beam search buys exact matches; once
# it is sure of every word (late in training), the two agree. More likely is not always
# better, though: a likelier output is often a *shorter* one (every token costs
# probability), so early on beam search can write shorter outputs than greedy does, and
# lose BLEU to the brevity penalty while it gains exact matches — compare the mean
# lengths printed above with the references'.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
trained = sorted(results)
for name, color in (("greedy", "tab:blue"), ("beam 4", "tab:orange")):
    left.plot(trained, [results[s][name]["exact"] for s in trained], "o-", color=color, label=f"{name}: exact match")
    left.plot(trained, [results[s][name]["bleu"] for s in trained], "s--", color=color, label=f"{name}: BLEU")
left.set_xscale("log")
left.set_xlabel("training step")
left.set_ylabel("score on held-out numbers")
left.set_ylim(0, 1.02)
left.legend(fontsize=8)
left.grid(alpha=0.3)
early = results[trained[0]]
right.scatter(early["greedy"]["scores"], early["beam 4"]["scores"], s=12, alpha=0.6)
lowest = min(early["greedy"]["scores"])
right.plot([lowest, 0], [lowest, 0], color="gray", linestyle="--", label="same log P")
right.set_xlabel("log P(output | source), greedy")
right.set_ylabel("log P(output | source), beam 4")
right.set_title(f"after {trained[0]} steps")
right.legend()
right.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## Exercises
#
# 1. Train without attention: replace the context $c_t$ by the encoder's last state at
#    every step (write a small decoder that does so). How much worse is the exact match
#    after the same number of steps, and on which numbers does it fail?
# 2. Plot exact match against the number of digits of the source for greedy decoding at
#    the earliest snapshot. Which lengths are hard, and why?
# 3. Try `length_penalty` 0, 0.5 and 1 with a beam of 4 at the earliest snapshot. Does it
#    change exact match? Build a case (with the table decoder) where it changes the answer.
# 4. Is BLEU a good measure for this task? Find two wrong outputs with the same BLEU, one
#    far more wrong than the other as a number. What would a better metric for numbers be?
# 5. Reverse the task: words to digits. Which way is easier to learn, and what does the
#    attention map look like?
# 6. Derive the gradient of the additive score $e_j = v^\top \tanh(W_q h + W_k s_j)$ with
#    respect to $h$, $s_j$, $W_q$, $W_k$ and $v$, write it in NumPy, and compare it with
#    `tl.numerical_grad` ([chapter 2](02_gradient_checking.ipynb)).
