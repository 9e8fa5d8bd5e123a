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
# # Chapter 10 — A character-level language model
#
# The previous chapters built every piece: embeddings, an LSTM, the cross-entropy of the
# next token. This chapter puts them together into a **language model** that reads text
# one character at a time, trains it on the built-in corpus (the Python reference
# documentation), lets it write, and asks the honest question: does it beat *counting*?
#
# You will:
# 1. cut a long text into batches for truncated backpropagation through time;
# 2. write the training loop by hand, then use `tinylm.lm.Trainer`, which adds a learning
#    rate schedule, validation and checkpoints;
# 3. check the model's gradients and compare it with PyTorch;
# 4. measure perplexity against an n-gram baseline (Kneser-Ney smoothing);
# 5. sample text with a temperature and top-$k$;
# 6. save and load a model, and train on your own text with the `tinylm` command;
# 7. see what a run does when it blows up, and when the text is short.
#
# `TINYLM_FAST=1` uses the first 60,000 characters, a smaller LSTM and a few dozen steps:
# the text it writes is gibberish. The full run (about two minutes on a laptop CPU)
# trains for 600 steps and reaches a validation loss of about 1.66 nats per character
# (perplexity 5.3): just better than a trigram model (1.70), far from the 5-gram model
# (1.22), which a small LSTM needs much longer training to beat.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import tinylm as tl
from tinylm.progress import progress_bar
import tinylm.functional as F
from tinylm import data, lm, models, optim, viz
from tinylm.cli import main as tinylm_command
from tinylm.ngram import KneserNeyLM

FAST = os.environ.get("TINYLM_FAST") == "1"
tl.manual_seed(0)

# %% [markdown]
# ## 1. The idea: one character at a time
#
# A language model assigns a probability to a whole text $x_1 \dots x_T$ by the chain rule
# of probability, one token given all the tokens before it:
#
# $$p(x_1, \dots, x_T) = \prod_{t=1}^{T} p(x_t \mid x_1, \dots, x_{t-1}).$$
#
# The model only ever predicts the **next** token. Training minimises the average negative
# log-likelihood of each next token ([chapter 3](03_softmax_cross_entropy_perplexity.ipynb)'s cross-entropy), in nats per token:
#
# $$\mathcal{L} = -\frac{1}{T} \sum_{t=1}^{T} \log p(x_t \mid x_{<t}), \qquad
# \text{PPL} = e^{\mathcal{L}}, \qquad \text{bits per character} = \frac{\mathcal{L}}{\ln 2}
# \;\text{(for characters as tokens)}.$$
#
# Here the tokens are characters, so the vocabulary is small (about a hundred symbols)
# and any text, however odd, can be written.

# %%
text = data.load_corpus("builtin")
if FAST:
    text = text[:60_000]
tokenizer = data.CharTokenizer.train(text)
V = tokenizer.vocab_size
train_ids, val_ids = data.train_val_split(tokenizer.encode(text), val_fraction=0.1)
print(f"{len(text):,} characters, a vocabulary of {V}; {len(train_ids):,} to train on, {len(val_ids):,} held out")

# %% [markdown]
# ## 2. The model, and how it reads a long text
#
# An embedding, an LSTM ([chapter 8](08_lstm.ipynb)) and a linear read-out:
#
# $$e_t = E[x_t], \qquad (h_t, c_t) = \operatorname{LSTM}(e_t, h_{t-1}, c_{t-1}), \qquad
# p(\cdot \mid x_{\le t}) = \operatorname{softmax}(W h_t + b).$$
#
# The hidden state $h_t$ summarises everything read so far, so in principle the model
# conditions on the whole past. In practice we backpropagate through a window of $T$
# steps only (**truncated BPTT**). `data.ContiguousBatches` lays the text out as $B$ rows
# side by side; batch $k$ holds columns $kT \dots (k+1)T$ of every row, so row $b$ of
# the next batch continues exactly where row $b$ stopped. The hidden state is carried
# over, *detached*: its value flows forward into the next batch, its gradient stops at
# the boundary.

# %%
batch_size, seq_len = (16, 32) if FAST else (32, 64)
batches = data.ContiguousBatches(train_ids, batch_size, seq_len)
x0, y0 = batches.batch(0)
x1, _ = batches.batch(1)
print(f"{len(batches)} batches of {batch_size} x {seq_len} per pass over the text")
for row in range(2):
    print(f"row {row}, batch 0: {tokenizer.decode(x0[row])!r}")
    print(f"row {row}, batch 1: {tokenizer.decode(x1[row])!r}")
print(f"targets are the inputs one character later: {tokenizer.decode(y0[0][:20])!r}")

# %% [markdown]
# ## 3. From scratch: the training loop by hand
#
# One step: the next batch (with the state reset when a new pass over the text begins),
# forward with the carried state, the loss, backward, clip the gradient norm ([chapter 7](07_rnn_and_bptt.ipynb):
# a recurrent network's gradient can explode), an Adam step, and detach the state.
# Everything here is tinylm's public API; the loop is ours.

# %%
model_settings = {"embed_dim": 32, "hidden_size": 64} if FAST else {"embed_dim": 64, "hidden_size": 128}
model = models.build_model("lstm", V, **model_settings)
optimizer = optim.Adam(model.parameters(), lr=3e-3)
print(model)

state, scratch_losses = None, []
for step in progress_bar(range(10 if FAST else 100), desc="by hand"):
    x, y, new_pass = batches.next_batch()
    if new_pass:
        state = None
    logits, state = model(x, state)
    loss = F.cross_entropy(logits, y)
    optimizer.zero_grad()
    loss.backward()
    optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
    state = lm.detach_state(state)
    scratch_losses.append(loss.item())
print(f"loss: {scratch_losses[0]:.3f} at the start (log V = {np.log(V):.3f}), {scratch_losses[-1]:.3f} after {len(scratch_losses)} steps")

# %% [markdown]
# ## 4. Check it
#
# The layers were gradient-checked in their own chapters; here we check the assembled
# model, backpropagation through time included: the loss of a tiny float64 LSTM language
# model as a function of its embedded input, against central differences.

# %%
tl.set_default_dtype(np.float64)
tiny = models.build_model("lstm", V, embed_dim=5, hidden_size=4)
tiny_x, tiny_y = batches.batch(0)
tiny_x, tiny_y = tiny_x[:2, :6], tiny_y[:2, :6]
embedded = tl.tensor(tiny.embedding(tiny_x).numpy(), requires_grad=True)


def tiny_loss(e):
    hidden, _ = tiny.rnn(e)
    return F.cross_entropy(tiny.head(hidden), tiny_y)


tl.gradcheck(tiny_loss, [embedded], verbose=True)
tl.set_default_dtype(np.float32)

# %% [markdown]
# The same model in PyTorch, with tinylm's weights loaded by name (the parameter layout
# is PyTorch's, `weight_ih_l0` and all): the loss and the gradients must agree.

# %%
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the comparison")

if torch is not None:
    weights = {name: torch.tensor(value) for name, value in tiny.state_dict().items()}
    torch_embedding = torch.nn.Embedding(V, 5, dtype=torch.float64)
    torch_lstm = torch.nn.LSTM(5, 4, batch_first=True, dtype=torch.float64)
    torch_head = torch.nn.Linear(4, V, dtype=torch.float64)
    torch_embedding.load_state_dict({"weight": weights["embedding.weight"]})
    torch_lstm.load_state_dict({name.removeprefix("rnn."): w for name, w in weights.items() if name.startswith("rnn.")})
    torch_head.load_state_dict({"weight": weights["head.weight"], "bias": weights["head.bias"]})
    torch_hidden, _ = torch_lstm(torch_embedding(torch.tensor(tiny_x)))
    torch_loss = torch.nn.functional.cross_entropy(torch_head(torch_hidden).reshape(-1, V), torch.tensor(tiny_y).reshape(-1))
    torch_loss.backward()

    tiny_logits, _ = tiny(tiny_x)
    ours = F.cross_entropy(tiny_logits, tiny_y)
    tiny.zero_grad()  # the gradient check above left gradients in the parameters
    ours.backward()
    print(f"loss: tinylm {ours.item():.10f}, PyTorch {torch_loss.item():.10f}")
    assert np.isclose(ours.item(), torch_loss.item())
    assert np.allclose(tiny.rnn.weight_hh_l0.grad.numpy(), torch_lstm.weight_hh_l0.grad.numpy())
    assert np.allclose(tiny.embedding.weight.grad.numpy(), torch_embedding.weight.grad.numpy())

# %% [markdown]
# ## 5. The baseline: counting n-grams
#
# What does a neural network buy? [Chapter 4](04_ngram_language_models.ipynb) built the
# answer to beat: an **n-gram model** predicts the next character from the previous
# $n-1$ alone, by counting, with interpolated **Kneser–Ney** smoothing
# (`tinylm.ngram.KneserNeyLM`). Counting takes seconds and is a strong baseline for
# characters. Here it is counted on the same training text as the LSTM.

# %%
orders = (1, 2, 3) if FAST else (1, 2, 3, 4, 5)
ngram_losses = {}
for order in orders:
    ngram = KneserNeyLM(order).fit(train_ids, V)
    ngram_losses[order] = ngram.evaluate(val_ids)
    print(f"{order}-gram: validation loss {ngram_losses[order]:.3f} nats/char, perplexity {np.exp(ngram_losses[order]):.2f}")

# %% [markdown]
# ## 6. The tinylm layer: `lm.Trainer`
#
# `Trainer` runs the loop of section 3, plus what a real run needs: a learning rate that
# warms up linearly and then decays along a cosine, validation every `eval_every` steps,
# a progress bar (loss and tokens per second), and checkpoints that resume exactly (give
# it a `run_dir`). Its validation is `lm.evaluate(model, tokenizer, ids)`: the mean loss
# over the held-out text read in order, the state carried along as in training. We train
# a fresh model of the same size.

# %%
tl.manual_seed(0)
model = models.build_model("lstm", V, **model_settings)
config = lm.TrainConfig(
    steps=40 if FAST else 600,
    batch_size=batch_size,
    seq_len=seq_len,
    lr=3e-3,
    warmup_steps=5 if FAST else 50,
    eval_every=20 if FAST else 100,
    eval_batches=5 if FAST else 20,
)
trainer = lm.Trainer(model, tokenizer, train_ids, val_ids, config)
started = time.perf_counter()
history = trainer.train()
print(f"{config.steps} steps in {time.perf_counter() - started:.0f} s")

lstm_eval = trainer.last_evaluation  # the final validation covers the whole held-out text
print(f"LSTM on the whole validation text: {lstm_eval}")

# %% [markdown]
# ## See it: the learning curve against the counting models
#
# The training loss of every step (faded) and its moving average, the validation loss,
# and each n-gram model's validation loss as a dashed line. Where the curve crosses a
# line, the network has learned as much as counting that many characters back.

# %%
fig = viz.plot_loss({"LSTM, train": history.train_losses}, smooth=10, ylabel="loss (nats per character)")
ax = fig.axes[0]
ax.plot(history.val_steps, history.val_losses, "o-", color="black", label="LSTM, validation")
for order, loss in ngram_losses.items():
    ax.axhline(loss, linestyle="--", color=plt.cm.viridis(order / (max(orders) + 1)), label=f"{order}-gram (Kneser-Ney)")
ax.set_ylim(top=np.log(V) + 0.3)
ax.legend(fontsize=8, ncol=2)
fig

# %%
print(f"{'model':<24}{'loss (nats)':>12}{'perplexity':>12}{'bits/char':>11}")
rows = [("uniform", np.log(V))] + [(f"{order}-gram (Kneser-Ney)", loss) for order, loss in ngram_losses.items()]
for name, loss in rows + [("LSTM", lstm_eval.loss)]:
    print(f"{name:<24}{loss:>12.3f}{np.exp(loss):>12.2f}{loss / np.log(2):>11.3f}")

# %% [markdown]
# ## 7. Letting it write: temperature and top-$k$
#
# To generate, feed a prompt, turn the last position's logits $z$ into a distribution,
# draw a character, feed it back in, and repeat. Two knobs reshape the distribution:
#
# * **temperature** $\tau$: $\; p_i \propto \exp(z_i / \tau)$. $\tau < 1$ sharpens it
#   towards the most likely characters (safer, more repetitive), $\tau > 1$ flattens it
#   (more surprising, more mistakes), and $\tau \to 0$ is greedy decoding.
# * **top-$k$**: keep only the $k$ most likely characters, set the rest to $0$ and
#   renormalise, so that the long tail of unlikely characters is never drawn.
#
# From scratch, for one prompt, compared with `lm.next_token_probabilities`:

# %%
prompt = "The return value of "
with tl.no_grad():
    logits, _ = model(np.array([tokenizer.encode(prompt)]))
last = logits.numpy()[0, -1].astype(np.float64)


def reshape_distribution(z, temperature, top_k=None):
    p = np.exp((z - z.max()) / temperature)
    if top_k is not None:
        p[np.argsort(-p)[top_k:]] = 0.0
    return p / p.sum()


settings = [(0.5, None), (1.0, None), (1.5, None), (1.0, 5)]
for temperature, top_k in settings:
    ours = reshape_distribution(last, temperature, top_k)
    assert np.allclose(ours, lm.next_token_probabilities(last, temperature, top_k))

# %% [markdown]
# ## See it: what the knobs do to one distribution
#
# The model's distribution for the character after the prompt, for the 15 most likely
# characters, under each setting. Lowering the temperature piles the probability onto the
# top choice; raising it spreads it over the tail; top-$k$ cuts the tail off.

# %%
top = np.argsort(-last)[:15]
labels = [{" ": "␣", "\n": "⏎"}.get(ch, ch) for ch in tokenizer.decode(top)]
fig, axes = plt.subplots(1, len(settings), figsize=(13, 3), sharey=True, layout="constrained")
for ax, (temperature, top_k) in zip(axes, settings):
    ax.bar(range(len(top)), lm.next_token_probabilities(last, temperature, top_k)[top])
    ax.set_xticks(range(len(top)), labels=labels)
    ax.set_title(f"τ = {temperature}" + (f", top-k = {top_k}" if top_k else ""))
axes[0].set_ylabel(f"p(next | {prompt!r})")
plt.show()

# %% [markdown]
# And the text itself, 200 characters per setting, from the same seed. (In fast mode the
# model has barely trained: expect letters and spaces in plausible proportions, no words.)

# %%
for temperature, top_k in [(0.5, None), (1.0, None), (1.0, 5)]:
    sample = lm.generate(model, tokenizer, prompt, max_new_tokens=200, temperature=temperature, top_k=top_k, seed=0)
    print(f"--- temperature {temperature}, top_k {top_k}\n{prompt}{sample}\n")

# %% [markdown]
# ## 8. Schedules, checkpoints and your own text
#
# **Learning-rate schedules.** `Trainer` warms up linearly and then follows a cosine
# (`lm.WarmupCosineLR`). `tinylm.optim` has the classic schedules as separate pieces,
# each set on an optimizer and stepped once per optimizer step, as in PyTorch: a linear
# warm-up, a cosine decay, a step decay. Warm-up keeps the first steps small while Adam's
# moment estimates are still noisy; the decay lets the last steps settle into a minimum
# instead of bouncing around it.

# %%
schedules = {
    "lm.WarmupCosineLR (the Trainer's)": lambda o: lm.WarmupCosineLR(o, warmup_steps=50, total_steps=600),
    "optim.LinearWarmup": lambda o: optim.LinearWarmup(o, warmup_steps=50),
    "optim.CosineAnnealingLR": lambda o: optim.CosineAnnealingLR(o, T_max=600),
    "optim.StepLR": lambda o: optim.StepLR(o, step_size=200, gamma=0.3),
}
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
for name, make in schedules.items():
    optimizer = optim.Adam([tl.zeros(1, requires_grad=True)], lr=3e-3)
    scheduler, rates = make(optimizer), []
    for _ in range(600):
        rates.append(optimizer.lr)
        scheduler.step()
    ax.plot(rates, label=name)
ax.set_xlabel("optimizer step")
ax.set_ylabel("learning rate")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# **Saving and loading.** `tl.save` writes any nest of dicts, lists and arrays to one
# `.npz` file (atomically: a crash never leaves half a file; never with pickle, so
# loading a file cannot run code), and `tl.load` reads it back. A state dict saved from
# one model loads into a fresh model of the same shape:

# %%
folder = Path(tempfile.mkdtemp())
tl.save(model.state_dict(), folder / "lstm.npz")
restored = models.build_model("lstm", V, **model_settings)
restored.load_state_dict(tl.load(folder / "lstm.npz"))
with tl.no_grad():
    same = np.allclose(model(x0)[0].numpy(), restored(x0)[0].numpy())
print(f"saved {sum(p.data.size for p in model.parameters()):,} numbers; the restored model gives the same logits: {same}")

# %% [markdown]
# **Your own text and the `tinylm` command.** Everything above is also one command:
# `tinylm train` trains a model on the built-in corpus, a downloadable one
# (`--data shakespeare`) or your own file or folder of files (`--data my_text.txt`:
# `data.load_corpus` reads any UTF-8 text), with a progress bar, and saves a checkpoint
# that resumes exactly (`--resume`); `tinylm generate` continues a prompt from a
# checkpoint and `tinylm eval` measures it against an n-gram baseline. From a terminal:
#
# ```bash
# tinylm train --model lstm --data my_text.txt --steps 2000 --out runs/mine
# tinylm generate --checkpoint runs/mine/checkpoint.npz --prompt "Once" --temperature 0.8
# tinylm eval --checkpoint runs/mine/checkpoint.npz
# ```
#
# Here the same commands run from Python, on a file we write ourselves (a slice of the
# corpus stands in for your text), with a small model and a few steps:

# %%
own_text = folder / "my_text.txt"
own_text.write_text(text[:30_000], encoding="utf-8")
run = folder / "run"
tinylm_command(["train", "--data", str(own_text), "--steps", "10" if FAST else "100", "--embed-dim", "32",
                "--hidden-size", "64", "--batch-size", "16", "--seq-len", "32", "--eval-every", "0", "--out", str(run), "--no-progress"])
tinylm_command(["generate", "--checkpoint", str(run / "checkpoint.npz"), "--prompt", "The ", "--max-new-tokens", "80"])
loaded, loaded_tokenizer, checkpoint = lm.load_checkpoint(run / "checkpoint.npz")
print(f"the checkpoint: step {checkpoint['step']}, model {checkpoint['model_config']}, {loaded_tokenizer!r}")

# %% [markdown]
# **When a run blows up.** A learning rate far too large throws the parameters so far that
# the loss explodes, and a single NaN in a gradient spreads to every parameter within a
# step or two. So `Trainer` checks every step *before* it updates anything: a loss or gradient
# norm that is infinite or NaN, or a loss more than 10 times that of a uniform guess
# ($10 \ln V$), stops the run with `lm.TrainingDiverged`. The step is not taken, and the
# checkpoint on disk stays the last good one. Here the learning rate is 100 (the chapter
# trains with 0.003), without warm-up, with a checkpoint after every step:

# %%
tiny_lstm = {"embed_dim": 32, "hidden_size": 64}
tl.manual_seed(0)
wild = lm.Trainer(models.build_model("lstm", V, **tiny_lstm), tokenizer, train_ids, val_ids,
                  lm.TrainConfig(steps=20, batch_size=16, seq_len=32, lr=100.0, warmup_steps=0, eval_every=0, checkpoint_every=1),
                  run_dir=folder / "wild")
try:
    wild.train(progress=False)
except lm.TrainingDiverged as diverged:
    print(diverged)
    print(f"\nas numbers: step {diverged.step}, loss {diverged.loss:.4g}, gradient norm {diverged.grad_norm:.4g}")
print("the checkpoint on disk is from step", lm.load_checkpoint(wild.checkpoint_path)[2]["step"])

# %% [markdown]
# One step at learning rate 100 took the loss from 4.5 (about $\ln V$: the untrained
# model guesses uniformly) to several hundred nats per character, and the run stopped at the next
# step with the fixes in one line. `on_divergence="skip"` (`tinylm train --on-divergence
# skip`) skips a batch that blows up and goes on with the next, for the rare bad batch of
# a large corpus; more than 10 in a row still stop the run, since then the fault is the
# setting, not a batch. `tinylm` exits with status 1 after a divergence (2 after a mistake
# in the input, 0 when all went well):

# %%
status = tinylm_command(["train", "--data", str(own_text), "--steps", "20", "--embed-dim", "32", "--hidden-size", "64",
                         "--batch-size", "16", "--seq-len", "32", "--lr", "100", "--warmup-steps", "0",
                         "--on-divergence", "skip", "--out", str(folder / "wild-cli"), "--no-progress"])
print("exit status:", status)

# %% [markdown]
# **A short text.** A recurrent model reads its batch rows side by side
# (`ContiguousBatches`), so $B$ rows of $T$ tokens need $BT + 1$ tokens of text. A text
# shorter than that trains with fewer rows, and one line says so. Only a text shorter
# than one window of `seq_len + 1` tokens is refused (`lm.TextTooShortError`, which
# names the longest `seq_len` that fits). A few hundred characters:

# %%
short_train, short_val = data.train_val_split(tokenizer.encode(text[:400]), val_fraction=0.1)
tl.manual_seed(0)
short_run = lm.Trainer(models.build_model("lstm", V, **tiny_lstm), tokenizer, short_train, short_val,
                       lm.TrainConfig(steps=10, batch_size=16, seq_len=32, eval_every=0))
short_run.train(progress=False)
print(f"trained {short_run.step} steps with {short_run.config.batch_size} rows per batch")
try:
    lm.Trainer(models.build_model("lstm", V, **tiny_lstm), tokenizer, short_train, short_val, lm.TrainConfig(seq_len=500))
except lm.TextTooShortError as error:
    print(error)

# %% [markdown]
# ## Exercises
#
# 1. Why must the hidden state be reset when `next_batch()` starts a new pass, and
#    detached otherwise? What happens to the memory use and the speed of the loop in
#    section 3 if you remove `lm.detach_state`?
# 2. Compute the perplexity of the trained model on the *training* text with
#    `lm.evaluate`. How large is the gap to the validation perplexity, and how does it
#    compare with the gap of the 5-gram model?
# 3. Train with `seq_len` 8 and 128 (same number of tokens per step). Which learns
#    faster per step, and which ends lower? Relate the answer to truncated BPTT.
# 4. Replace `"lstm"` by `"gru"` and `"rnn"` in `models.build_model`. Plot the three
#    learning curves on one figure with `viz.plot_loss`.
# 5. Implement **top-$p$** (nucleus) sampling in `reshape_distribution`: keep the
#    smallest set of most likely characters whose probabilities add up to $p$. Check it
#    against `lm.next_token_probabilities(z, top_p=0.9)`.
# 6. Train on your own text (`tinylm train --data path/to/file.txt`). How many steps does
#    the LSTM need to beat the 3-gram model, and the 5-gram model (`tinylm eval`)?
