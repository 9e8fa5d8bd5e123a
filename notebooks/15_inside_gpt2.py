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
# # Chapter 15 — Inside GPT-2
#
# GPT-2 (Radford et al., 2019) is the GPT of the Transformer chapter grown up: the same
# pre-norm blocks, learned positions and tanh GELU, only wider (768), deeper (12 blocks)
# and trained by OpenAI on 40 GB of web text. Its weights are public. In this chapter you
# open the real GPT-2 in tinylm, where every layer is code you have read, and look inside.
#
# You will:
# 1. load GPT-2 from a Hugging Face model folder and see how its weights become tinylm's
#    (and check its logits against `transformers`), how a download stays whole, and why a
#    pickled model file is refused;
# 2. cut text into GPT-2's tokens, read the tokenizer from tiktoken's file, and encode a
#    large file in pieces;
# 3. run one block by hand from tensor operations and check it against the model;
# 4. look at what the heads attend to, and read the residual stream with the *logit lens*;
# 5. generate with and without the key-value cache, and time both;
# 6. fine-tune it for a few steps on a text of your own.
#
# **Which GPT-2.** The real one (124 million parameters, a 548 MB download) when its files
# are already in the cache and `TINYLM_FAST` is not set. To get them, run once on a machine
# with internet `python -c "from tinylm.pretrained import hub; hub.download('gpt2')"` (or
# `tinylm generate --pretrained gpt2`). Otherwise, and always in fast mode, a small GPT-2
# with *random* weights: the same architecture and the same code, 4 blocks of width 128,
# with a byte-level BPE trained here on the built-in corpus. Everything runs the same, but a
# random model's attention maps and predictions mean nothing and it writes gibberish; the
# text says what the real model shows.

# %%
import base64
import hashlib
import json
import math
import os
import pickle
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
import tinylm.functional as F
from tinylm import data, lm, models, pretrained
from tinylm.data.pretokenize import GPT2_PATTERN
from tinylm.pretrained import hub

FAST = os.environ.get("TINYLM_FAST") == "1"
REAL = not FAST and hub.cached("gpt2") is not None
try:
    import transformers
except ImportError:
    transformers = None
try:
    import tiktoken
except ImportError:
    tiktoken = None
tl.manual_seed(0)
print("the real GPT-2" if REAL else "a small GPT-2 with random weights", "| transformers:", transformers is not None)

# %% [markdown]
# ## 1. Loading GPT-2
#
# A Hugging Face model folder holds `config.json` (the architecture and its sizes),
# `model.safetensors` (the weights: raw arrays with their names, dtypes and shapes, read
# without running any code) and the tokenizer's `vocab.json` and `merges.txt`.
# `tinylm.pretrained.load(folder)` reads the config, finds the builder of its architecture
# (`GPT2LMHeadModel` → `tinylm.pretrained.gpt2`), builds the tinylm GPT with those sizes
# and fills in the weights.
#
# For the small model we make such a folder ourselves: a random `GPT2LMHeadModel` from
# `transformers`, saved with `save_pretrained`, and a tokenizer saved beside it. (Without
# `transformers`, the small model is built directly in tinylm.)

# %%
text = data.load_corpus("builtin")
workdir = Path(tempfile.mkdtemp(prefix="inside_gpt2_"))
if REAL:
    folder = hub.cached("gpt2")
else:
    small_tokenizer = data.BPETokenizer.train(text[:60_000], num_merges=400, special_tokens=["<|endoftext|>"])
    small = dict(n_layer=4, n_embd=128, n_head=4, n_positions=64, vocab_size=small_tokenizer.vocab_size)
    end_of_text = small_tokenizer.eos_token_id
    folder = workdir / "small-gpt2" if transformers is not None else None
    if folder is not None:
        transformers.set_seed(0)
        transformers.GPT2LMHeadModel(transformers.GPT2Config(**small, bos_token_id=end_of_text, eos_token_id=end_of_text)).save_pretrained(folder)
        small_tokenizer.save_pretrained(folder)

if folder is not None:
    model, config = pretrained.load(folder)
    tokenizer = data.BPETokenizer.from_pretrained(folder)
    print(sorted(path.name for path in folder.iterdir()))
else:
    model = models.build_model("gpt", small["vocab_size"], context_length=small["n_positions"], embed_dim=small["n_embd"],
                               num_heads=small["n_head"], num_layers=small["n_layer"], tie_weights=True)
    tokenizer = small_tokenizer
model.eval()
E, L, H, C, V = model.blocks[0].attention.embed_dim, len(model.blocks), model.blocks[0].attention.num_heads, model.context_length, model.vocab_size
print(f"{model.num_parameters():,} parameters: {L} blocks, width {E}, {H} heads, context {C}, vocabulary {V}")

# %% [markdown]
# ### The math
#
# For token ids $t_1 \dots t_T$, with the token embedding $W_E \in \mathbb{R}^{V \times E}$
# and the position table $W_P \in \mathbb{R}^{C \times E}$:
#
# $$x^{(0)}_i = W_E[t_i] + W_P[i], \qquad
# x \leftarrow x + \operatorname{Attn}(\operatorname{LN}_1(x)), \qquad
# x \leftarrow x + W_2 \operatorname{GELU}(W_1 \operatorname{LN}_2(x) + b_1) + b_2$$
#
# in each of the $L$ blocks (the attention causal, $H$ heads of size $D = E/H$, the MLP
# $4E$ wide, every LayerNorm with $\varepsilon = 10^{-5}$, the GELU the tanh approximation
# $\tfrac12 x(1 + \tanh(\sqrt{2/\pi}(x + 0.044715x^3)))$), and at the end
#
# $$\text{logits}_i = \operatorname{LN}_f(x^{(L)}_i)\, W_E^\top \in \mathbb{R}^{V},$$
#
# the output head *tied* to the token embedding: the same matrix reads a token in and
# scores it on the way out. That is all of GPT-2, and all of tinylm's `nn.GPT`.
#
# ### How the weights become tinylm's
#
# The names change (`transformer.h.3.attn.c_attn.weight` is `blocks.3.attention.in_proj_weight`;
# the table is in `tinylm/pretrained/gpt2.py`) and so does one layout. GPT-2's linear layers
# are `Conv1D`s, a name from OpenAI's TensorFlow code, that compute $y = xW + b$ with $W$
# stored as (in, out); tinylm's `Linear`, like PyTorch's, stores (out, in) and computes
# $y = xW^\top + b$. So every such matrix is transposed at load time:

# %%
if folder is not None:
    tensors = pretrained.read_tensors(folder)
    prefix = "transformer." if "transformer.wte.weight" in tensors else ""
    theirs = tensors[prefix + "h.0.attn.c_attn.weight"]
    ours = model.blocks[0].attention.in_proj_weight.numpy()
    print(f"Hugging Face h.0.attn.c_attn.weight {theirs.shape}  ->  tinylm blocks.0.attention.in_proj_weight {ours.shape}")
    print("equal after transposing:", np.array_equal(theirs.T, ours))
    print("tied head:", model.tie_weights, "| the hub's files name", len(tensors), "tensors")

# %% [markdown]
# ### Check it: the same logits as `transformers`
#
# Hugging Face's own `GPT2LMHeadModel` reads the same folder; on the same ids the two must
# give the same logits, up to float32 rounding (the tests check the small models to 1e-6 in
# float64, and every weight's gradient too).

# %%
sentence = "The meaning of life is"
ids = np.array([tokenizer.encode(sentence)])
with tl.no_grad():
    logits, _ = model(ids)
if folder is not None and transformers is not None:
    import torch

    reference = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
    with torch.no_grad():
        expected = reference(torch.tensor(ids)).logits.numpy()
    print(f"max |tinylm - transformers| over {expected.size:,} logits: {np.abs(logits.numpy() - expected).max():.2e}")

# %% [markdown]
# ### Files you can trust
#
# **Downloads.** `hub.download("gpt2")` (what `--pretrained gpt2` calls when the model is
# not in a cache yet) fetches each file into `hub.model_folder("gpt2")` and keeps it safe
# three ways:
#
# * **checksummed**: before the download the hub says what the file's hash must be, the
#   SHA-256 for a large file (kept in Git LFS), the *git blob id* for a small one (the
#   SHA-1 of `blob {size}\0` followed by the bytes); the bytes that arrive are hashed the
#   same way, and a mismatch deletes them and is an error;
# * **resumable**: the bytes go to `FILE.part`; when the connection breaks, the next try
#   asks only for the rest (an HTTP `Range: bytes=N-` request);
# * **atomic**: only a complete, verified `.part` is renamed to the file's name
#   (`os.replace`, one step of the file system), so a file in the cache is always whole,
#   whenever a crash comes.
#
# `hub.cached(name)` finds a model already downloaded, in tinylm's cache or in Hugging
# Face's. Nothing here touches the network: we look at the cache, and hash a file the way
# the hub's checksum is made.

# %%
print("tinylm keeps gpt2 in", hub.model_folder("gpt2"), "| the files:", ", ".join(hub.GPT2_FILES))
print("in a cache now:", hub.cached("gpt2"))
if folder is not None:
    config_file = folder / "config.json"
    content = config_file.read_bytes()
    by_hand = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
    print(f"git blob id of config.json: {hub.checksum(config_file, 'git-sha1')} (by hand: {by_hand})")

# %% [markdown]
# **Pickles.** `model.safetensors` is raw arrays behind a JSON header: reading it runs no
# code. Older folders hold `pytorch_model.bin` instead, written by `torch.save`: a
# *pickle*, and unpickling calls whatever function the file names, with the arguments it
# gives. Three lines show it:

# %%
class Payload:
    def __reduce__(self):  # what pickle stores: "call print with these arguments"
        return print, ("this line was printed by the file, while it was being read",)


pickle.loads(pickle.dumps(Payload()))

# %% [markdown]
# Instead of `print`, a file from a stranger could name `os.system`. So
# `pretrained.load` refuses a folder whose only weights are a pickle, with a
# `pretrained.PretrainedError` (tinylm's one error for a folder it cannot read) that says
# what to do; with `allow_pickle=True` (`--allow-pickle` for the `tinylm` command) it
# reads the file with a warning, through `torch.load(weights_only=True)`, which unpickles
# only tensors and plain containers. We save our model's weights the old way, beside its
# config (`read_config` reads `config.json`):

# %%
if folder is not None:
    import torch

    pickled = workdir / "pickled-gpt2"
    pickled.mkdir()
    folder_config = pretrained.read_config(folder)
    (pickled / "config.json").write_text(json.dumps(folder_config), encoding="utf-8")
    torch.save({name: torch.tensor(array) for name, array in tensors.items()}, pickled / "pytorch_model.bin")
    print(folder_config["architectures"], "|", sorted(path.name for path in pickled.iterdir()))
    try:
        pretrained.load(pickled)
    except pretrained.PretrainedError as error:
        print("\nwithout allow_pickle:", error)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from_pickle, _ = pretrained.load(pickled, allow_pickle=True)
    print("\nwith allow_pickle=True:", caught[0].message)
    same = all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(model.parameters(), from_pickle.parameters()))
    print("the same parameters as from model.safetensors:", same)

# %% [markdown]
# ## 2. GPT-2's tokens
#
# GPT-2 reads bytes, merged into larger tokens by byte-pair encoding (the tokenization
# chapter): 50,257 tokens, the 256 bytes, 50,000 learned merges and `<|endoftext|>`, which
# separated the documents in training. The text is first cut into pieces (a space joins the
# word after it: " meaning" is one piece), and merges never cross pieces. `vocab.json`
# writes a token's bytes with one printable character per byte, so a space shows as `Ġ`.

# %%
for text_piece in [sentence, "Tokenization isn't hard: 12345 ünïcödé 🙂"]:
    token_ids = tokenizer.encode(text_piece)
    print(len(text_piece), "characters ->", len(token_ids), "tokens:", [tokenizer.decode([i]) for i in token_ids])
print("end of text:", tokenizer.eos_token_id)

# %% [markdown]
# With the real tokenizer common words are one token each, rarer ones a few, and the emoji
# is four bytes that no merge joins. A token that holds only some of a character's bytes
# shows as �: it is not text on its own, only together with its neighbours. The small
# tokenizer here learned only 400 merges from the Python documentation, so it cuts much finer.
#
# ### The same tokenizer in tiktoken's file
#
# OpenAI's `tiktoken` library (its `gpt2` encoding is this tokenizer) keeps a BPE in a file
# of one token a line, the base64 of its bytes and its rank, and no merges: the rank is the
# token's id, and tiktoken merges again and again the adjacent pair whose concatenation has
# the lowest rank. `save_tiktoken` writes such a file; `BPETokenizer.from_tiktoken(path,
# special_tokens)` reads it and recovers the merges from the ranks (each token, in rank
# order, is two tokens of lower rank joined). Special tokens are not in the file: they come
# with their ids.

# %%
rank_file = workdir / "tokenizer.tiktoken"
tokenizer.save_tiktoken(rank_file)
rank_lines = rank_file.read_text(encoding="ascii").splitlines()
for line in rank_lines[256:259]:  # the first 256 lines are the single bytes; then the first merges
    token, rank = line.split()
    print(f"{line:<12} the bytes {base64.b64decode(token)!r}, id {rank}")
from_ranks = data.BPETokenizer.from_tiktoken(rank_file, special_tokens=tokenizer.special_tokens)
sample = text[:5_000]
print(f"{len(rank_lines):,} ranks; the same ids from the rank file:", from_ranks.encode(sample) == tokenizer.encode(sample))
if tiktoken is not None:
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in rank_lines)}
    encoding = tiktoken.Encoding("ours", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=tokenizer.special_tokens)
    print("and the ids tiktoken itself gives:", encoding.encode(sample) == tokenizer.encode(sample))

# %% [markdown]
# ### A large file in pieces: `encode_iterable`
#
# `encode(text)` needs the whole text in memory, and returns a list of all its ids. A
# training corpus can be gigabytes. `encode_iterable(chunks)` takes the text in pieces (an
# open file gives its lines) and yields the ids one at a time, holding about 64,000
# characters at once: an array of `uint16` (2 bytes an id, enough for GPT-2's 50,257
# tokens) can be filled straight from a file. The ids are those of the whole text, even
# where a chunk ends inside a word: the last piece of a chunk waits for the next chunk.
# Encoding each chunk on its own would not give them.

# %%
corpus_text = text[:200_000]
corpus_file = workdir / "corpus.txt"
corpus_file.write_text(corpus_text, encoding="utf-8")
whole = tokenizer.encode(corpus_text)
with open(corpus_file, encoding="utf-8") as lines_of_the_file:
    streamed = np.fromiter(tokenizer.encode_iterable(lines_of_the_file), dtype=np.uint16)
print(f"{len(whole):,} ids; line by line through encode_iterable, the same: {streamed.tolist() == whole} "
      f"({streamed.nbytes:,} bytes as uint16)")
every_7_characters = [corpus_text[i : i + 7] for i in range(0, len(corpus_text), 7)]
print("7-character chunks through encode_iterable, the same:", list(tokenizer.encode_iterable(every_7_characters)) == whole)
print(f"each 7-character chunk encoded on its own: {sum(len(tokenizer.encode(chunk)) for chunk in every_7_characters):,} ids")

# %% [markdown]
# ## 3. One block from scratch
#
# The whole block with tensor operations only, from the formulas above, with the weights of
# the model's first block; then compared with `model.blocks[0]`:

# %%
def layer_norm(x, norm):
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / (variance + norm.eps) ** 0.5 * norm.weight + norm.bias


def gelu(x):
    return 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)).tanh())


def block_from_scratch(x, block):
    B, T, E = x.shape
    attention = block.attention
    H, D = attention.num_heads, E // attention.num_heads
    qkv = layer_norm(x, block.attention_norm) @ attention.in_proj_weight.T + attention.in_proj_bias  # (B, T, 3E)
    q, k, v = (qkv[:, :, i * E : (i + 1) * E].reshape(B, T, H, D).transpose(0, 2, 1, 3) for i in range(3))  # (B, H, T, D)
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D)  # (B, H, T, T)
    blocked = tl.tensor(np.triu(np.full((T, T), -np.inf), 1).astype(scores.dtype))  # position i sees 0..i
    weights = F.softmax(scores + blocked, axis=-1)
    heads = (weights @ v).transpose(0, 2, 1, 3).reshape(B, T, E)
    x = x + heads @ attention.out_proj.weight.T + attention.out_proj.bias
    up, down = block.mlp[0], block.mlp[2]
    return x + gelu(layer_norm(x, block.mlp_norm) @ up.weight.T + up.bias) @ down.weight.T + down.bias


with tl.no_grad():
    x = model.position_embedding(model.token_embedding(ids))
    difference = np.abs(block_from_scratch(x, model.blocks[0]).numpy() - model.blocks[0](x, is_causal=True).numpy()).max()
print(f"max |from scratch - model.blocks[0]|: {difference:.1e} (float32 rounding)")

# %% [markdown]
# ## 4. See it: what the heads attend to
#
# Run the text block by block, keeping each block's attention weights (per head: rows are
# the positions that read, columns the positions read; the causal mask leaves the upper
# triangle empty) and the residual stream after each block.

# %%
def look_inside(model, ids):
    """Per block: the attention weights (H, T, T) of the first sequence; the residual stream (B, T, E) before and after every block."""
    with tl.no_grad():
        x = model.position_embedding(model.token_embedding(ids))
        maps, stream = [], [x]
        for block in model.blocks:
            _, weights = block.attention(block.attention_norm(x), is_causal=True, average_attn_weights=False)
            maps.append(weights.numpy()[0])
            x = block(x, is_causal=True)
            stream.append(x)
    return maps, stream


words = "When Mary and John went to the store, John gave a drink to"
word_ids = np.array([tokenizer.encode(words)])
maps, stream = look_inside(model, word_ids)
labels = [tokenizer.decode([i]).replace(" ", "␣") for i in word_ids[0]]
shown = [(0, 0), (L // 2, 0), (L // 2, H - 1), (L - 1, H // 2)]
fig, axes = plt.subplots(1, len(shown), figsize=(18, 5), layout="constrained")
for ax, (layer, head) in zip(axes, shown):
    ax.imshow(maps[layer][head], cmap="viridis", vmin=0)
    ax.set_xticks(range(len(labels)), labels=labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels=labels, fontsize=7)
    ax.set_title(f"block {layer}, head {head}")
plt.show()

# %% [markdown]
# In the real GPT-2 you will find heads with recognisable habits: some put nearly all their
# weight on the previous token (a bright line just below the diagonal), many park their
# weight on the first token when there is nothing useful to read (a bright first column),
# and some look back at earlier words that matter for the next one, such as the names here.
#
# ### Induction heads
#
# One habit can be measured. Feed a random sequence of tokens twice: in the second copy, a
# model that has learned to copy can predict each token by finding the same token in the
# first copy and reading the one *after* it. A head that does this attends from position
# $i$ of the second copy to position $i - n + 1$ (the token after the earlier occurrence of
# the current one, $n$ the length of a copy). Its **induction score** is the average
# weight on exactly that position. In the real GPT-2 a few heads in the middle blocks
# (around 5 to 7) score high (Olsson et al., 2022, "In-context learning and induction
# heads"); in a random model every head scores near $1/i$, about as much as any position.

# %%
n = 50 if REAL else 24  # two copies must fit the context: 64 tokens for the small model
rng = np.random.default_rng(0)
copy = rng.integers(1000 if REAL else 256, V - 1, n)  # not the rarest nor the byte tokens
repeated = np.concatenate([copy, copy])[None, :]
repeated_maps, _ = look_inside(model, repeated)
positions = np.arange(n, 2 * n)
scores = np.array([[weights[head][positions, positions - n + 1].mean() for head in range(H)] for weights in repeated_maps])
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
image = ax.imshow(scores, cmap="magma", vmin=0, vmax=max(0.1, scores.max()))
ax.set_xlabel("head")
ax.set_ylabel("block")
ax.set_title("induction score: weight on the token after the earlier copy")
fig.colorbar(image)
plt.show()
best = np.unravel_index(scores.argmax(), scores.shape)
print(f"highest score: block {best[0]}, head {best[1]}: {scores.max():.2f}")

# %% [markdown]
# ### The logit lens: reading the residual stream
#
# Every block *adds* its result to the residual stream $x$; the output head reads only the
# last one. But nothing stops us from applying the final LayerNorm and the head to $x$
# after any block: which token would the model predict if it stopped there? This is the
# *logit lens* (nostalgebraist, 2020). For the real GPT-2 the final prediction typically
# takes shape only in the later blocks, growing from a vague guess to the answer.

# %%
with tl.no_grad():
    lens = [(model.final_norm(x) @ model.token_embedding.weight.T).numpy()[0, -1] for x in stream]
final = int(np.argmax(lens[-1]))
probability_of_final = [F.softmax(tl.tensor(row), axis=-1).numpy()[final] for row in lens]
print(f"after {words!r} the model predicts {tokenizer.decode([final])!r}")
for layer, row in enumerate(lens):
    top = np.argsort(-row)[:3]
    print(f"  after {layer:2d} blocks: top 3 {[tokenizer.decode([int(i)]) for i in top]}")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.5), layout="constrained")
axes[0].plot(probability_of_final, "o-")
axes[0].set_xlabel("blocks applied")
axes[0].set_ylabel(f"p({tokenizer.decode([final])!r})")
axes[0].set_title("the logit lens: the final prediction, block by block")
norms = [np.linalg.norm(x.numpy()[0], axis=-1).mean() for x in stream]
axes[1].plot(norms, "o-")
axes[1].set_xlabel("blocks applied")
axes[1].set_ylabel("mean ‖x‖ over positions")
axes[1].set_title("the residual stream grows as blocks add to it")
for ax in axes:
    ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## 5. Generation, with and without the key-value cache
#
# To write, the model predicts the next token, draws it, appends it and predicts again.
# Without a cache every step runs the whole text through every block. But position $i$
# only ever attends to positions $\le i$: a token appended at the end changes nothing before
# it, so the keys and values of the earlier positions are the same at every step. The
# **key-value cache** (`tinylm/nn/kv_cache.py`) keeps them; each step then feeds only the
# new token, which attends to the cached keys. The logits are the same (the tests check
# it); the cost of a step no longer grows with the length of the text.
#
# One limit: GPT-2's learned positions end at $C - 1$ ($C$ = 1,024). Once the text is
# longer, each step reads its last $C$ tokens, all at positions one lower than in the step
# before: no cached key is valid any more, and generation goes back to the uncached cost.
# The small model's context is 64 tokens, so below you see it happen.

# %%
prompt_ids = tokenizer.encode("The meaning of life is")
new_tokens = 60 if REAL else 80


def timed_generation(use_cache):
    """The new tokens and the seconds each step took."""
    tokens, seconds = [], []
    start = time.perf_counter()
    for token, _ in lm.generate_tokens(model, prompt_ids, new_tokens, temperature=0, use_cache=use_cache):
        now = time.perf_counter()
        tokens.append(token)
        seconds.append(now - start)
        start = now
    return tokens, np.array(seconds)


runs = {use_cache: timed_generation(use_cache) for use_cache in (True, False)}
for use_cache, (tokens, seconds) in runs.items():
    print(f"{'with' if use_cache else 'without'} the cache: {new_tokens / seconds.sum():6.1f} tokens/s")
print("the same tokens:", runs[True][0] == runs[False][0])
print(repr(tokenizer.decode(prompt_ids + runs[True][0][:60])))

def running_median(values, window=7):  # a busy machine makes single steps noisy
    return np.array([np.median(values[max(0, i - window + 1) : i + 1]) for i in range(len(values))])


fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
for use_cache, (_, seconds) in runs.items():
    ax.plot(len(prompt_ids) + np.arange(new_tokens), 1e3 * running_median(seconds), label="with the cache" if use_cache else "without")
if len(prompt_ids) + new_tokens > C:
    ax.axvline(C, color="gray", linestyle=":", label="the context is full")
ax.set_xlabel("tokens in the text")
ax.set_ylabel("ms for the next token (running median)")
ax.set_ylim(bottom=0)
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# The first cached step reads the whole prompt; every later one costs about the same, until
# the context is full and the cached steps cost what the uncached ones do. The uncached
# steps grow with the text. For the small model much of a step is Python's fixed cost per
# operation, the same at any length, so the gap is modest; for GPT-2 itself it is large: on
# a laptop CPU a cached step of GPT-2-124M takes about a tenth of a second, most of it
# reading the 500 MB of weights once, while an uncached step at 100 tokens costs several
# times that (`benchmarks/generation.py` times both against Hugging Face's `generate`).
#
# GPT-2 was trained on documents joined by `<|endoftext|>` (id 50256), so after it
# writes that token what follows belongs to another document. `lm.generate` (and `tinylm
# generate`) therefore ends the text there; `stop_at_eos=False` (`--ignore-eos`) writes on.
# `lm.generate_tokens`, used above, always yields every token: the caller decides when to stop.
#
# ## 6. Fine-tuning a few steps
#
# The loaded model is an ordinary tinylm model: `lm.Trainer` trains it (and saves
# checkpoints that `tinylm generate --checkpoint` reads), with GPT-2's tokenizer. The
# command does the same: `tinylm train --init gpt2 --data my_text.txt`. Here: the Python
# documentation, a text whose style is easy to recognise.

# %%
fine_tune_text = text[:200_000] if not FAST else text[:40_000]
train_ids, val_ids = data.train_val_split(tokenizer.encode(fine_tune_text), val_fraction=0.1)
steps = 15 if FAST else 30
config = lm.TrainConfig(steps=steps, batch_size=8 if not REAL else 4, seq_len=64, lr=1e-3 if not REAL else 1e-4,
                        warmup_steps=2, eval_every=0, eval_batches=4)
trainer = lm.Trainer(model, tokenizer, train_ids, val_ids, config)
before = trainer.validate(max_batches=4)
history = trainer.train()
print(f"validation loss before {before.loss:.3f}, after {steps} steps {trainer.last_evaluation.loss:.3f} nats per token")
print(repr(lm.generate(model, tokenizer, "The return value", max_new_tokens=40, temperature=0.8, seed=0)))

fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.plot(history.train_losses)
ax.set_xlabel("step")
ax.set_ylabel("training loss (nats per token)")
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# A random model learns the most frequent tokens first; the real GPT-2 starts far lower (it
# already knows English, and Python) and within a few dozen steps picks up the manner of
# the documentation.
#
# ## Exercises
#
# 1. Count GPT-2's parameters by hand from its config: the embeddings $VE + CE$, per block
#    $12E^2 + 13E$ (which matrices and vectors?), the final LayerNorm $2E$, and the head
#    nothing (why?). Check against `model.num_parameters()` (124,439,808 for the real one).
# 2. How many bytes does the key-value cache of GPT-2 hold for a full context of 1,024
#    tokens, in float32? Check with `cache = model.new_cache(); ...;
#    sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)`.
# 3. Knock out the head with the highest induction score: head $h$ writes through the
#    columns $hD \dots (h+1)D - 1$ of its block's `attention.out_proj.weight`; set them to
#    zero and compare the loss on the second copy of the repeated sequence before and
#    after. What happens when you knock out a head with a low score?
# 4. Use the logit lens on a prompt of your own whose answer is one token (" Paris" after
#    "The Eiffel Tower is in the city of"): from which block on is it the top prediction?
# 5. Time a cached step of the small model for texts of 10, 30 and 60 tokens. Why does it
#    grow a little even with the cache?
