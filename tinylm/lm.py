"""Language modelling: train a model on text, measure it, and let it write.

    text = data.load_corpus("builtin")
    tokenizer = data.CharTokenizer.train(text)
    train_ids, val_ids = data.train_val_split(tokenizer.encode(text))
    model = build_model("lstm", tokenizer.vocab_size)
    trainer = Trainer(model, tokenizer, train_ids, val_ids, TrainConfig(steps=2000), run_dir="runs/lstm")
    trainer.train()
    print(generate(model, tokenizer, "def ", max_new_tokens=200, temperature=0.8))

The loss is the cross-entropy of the next token, in nats per token: the average of
-ln p(true next token). Its exponential is the perplexity (as if the model hesitated
between that many equally likely tokens); divided by ln 2 and scaled by tokens per
character it is the bits per character, which compares models whatever their tokenizer.

Training is resumable bit for bit: a checkpoint holds the parameters, the optimizer's
moments, the schedule, the step, the random generator, the position in the data and the
recurrent state carried between batches, so a run interrupted at step k and resumed
takes exactly the steps the uninterrupted run would have taken. Ctrl-C finishes the
step under way, saves such a checkpoint and returns.

A run that blows up (a learning rate far too large, a bad batch) is caught before its
update: a step whose loss or gradient norm is infinite or NaN, or whose loss is more
than ``DIVERGED_FACTOR`` times that of a uniform guess (ln V), raises
``TrainingDiverged`` with the step, the last good loss and the likely fixes, leaving
the checkpoint on disk as it was (``on_divergence="skip"`` skips such batches instead).
"""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import backend, optim
from . import functional as F
from .data.batching import ContiguousBatches, batch_shape_that_fits, random_windows
from .data.tokenizers import Tokenizer, tokenizer_from_dict
from .io import CheckpointError, load, save
from .models import check_same_model, model_from_config
from .nn import Module
from .progress import progress_bar
from .tensor import Tensor, no_grad, tensor


@dataclass
class TrainConfig:
    """Settings of a training run (saved in its checkpoints)."""

    steps: int = 1000  # optimizer steps in the whole run
    batch_size: int = 32
    seq_len: int = 64  # tokens per row of a batch (the truncation length of BPTT)
    lr: float = 3e-3  # peak learning rate of Adam
    warmup_steps: int = 50  # linear warm-up, then cosine decay to min_lr_ratio · lr
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    clip_grad_norm: float = 1.0  # 0 turns clipping off
    eval_every: int = 200  # steps between validation losses (0: only at the end)
    eval_batches: int = 20  # validation batches per periodic check (the final one uses all)
    checkpoint_every: int = 0  # steps between checkpoints (0: only at the end and on Ctrl-C)
    max_seconds: float = 0.0  # a time budget: stop after this long, the decay fitted to it (0: none)
    device: str = "cpu"
    on_divergence: str = "stop"  # a diverged step: "stop" the run, or "skip" its batch (a few in a row)

    def __post_init__(self):
        if self.on_divergence not in ("stop", "skip"):
            raise ValueError(f"on_divergence must be 'stop' or 'skip', got {self.on_divergence!r}")


@dataclass
class History:
    """What a run has measured so far: the training loss of every step, validation at intervals."""

    train_losses: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)


@dataclass
class Evaluation:
    """Loss of a model on held-out text, in the three units people quote."""

    loss: float  # nats per token
    tokens: int
    chars_per_token: float

    @property
    def perplexity(self) -> float:
        return perplexity(self.loss)

    @property
    def bits_per_char(self) -> float:
        return bits_per_char(self.loss, self.chars_per_token)

    def __str__(self) -> str:
        return f"loss {self.loss:.4f} nats/token, perplexity {self.perplexity:.2f}, {self.bits_per_char:.4f} bits/char"


def perplexity(nats_per_token: float) -> float:
    """e^loss: as if the model hesitated between that many equally likely tokens.

    A loss above ~709.8 nats (a diverged model) has a perplexity too large for a float:
    it is ``inf``, not an OverflowError.
    """
    try:
        return math.exp(nats_per_token)
    except OverflowError:
        return math.inf


def bits_per_char(nats_per_token: float, chars_per_token: float) -> float:
    """Nats per token -> bits per character: ÷ ln 2 (nats to bits), ÷ characters per token."""
    return nats_per_token / math.log(2) / chars_per_token


def chars_per_token(tokenizer: Tokenizer, ids: Sequence[int]) -> float:
    """How many characters of text one token stands for, on average, in ``ids``."""
    return len(tokenizer.decode(list(ids))) / len(ids)


class WarmupCosineLR(optim.LRScheduler):
    """Linear warm-up to the base rate, then a cosine down to ``min_lr_ratio`` of it.

    The learning rate at a step::

        step < warmup:   lr = base · (step + 1) / warmup
        afterwards:      lr = base · (r + (1 − r) · (1 + cos(π · p)) / 2),
                         p = (step − warmup) / (total − warmup), clipped to [0, 1]
    """

    def __init__(self, optimizer: optim.Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.1):
        self.warmup_steps, self.total_steps, self.min_lr_ratio = warmup_steps, total_steps, min_lr_ratio
        super().__init__(optimizer)

    def get_lr(self) -> float:
        if self.last_step < self.warmup_steps:
            return self.base_lr * (self.last_step + 1) / self.warmup_steps
        progress = min(1.0, (self.last_step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        cosine = (1 + math.cos(math.pi * progress)) / 2
        return self.base_lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine)


def detach_state(state):
    """The recurrent state cut from the graph: the gradient of the next batch stops here."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(detach_state(part) for part in state)
    return state.detach()


def _on_device(ids: np.ndarray, device: str):
    """Token ids on the model's device (host arrays stay as they are on the CPU)."""
    return ids if device == "cpu" else tensor(ids, device=device)


# ------------------------------------------------------------------ evaluation


def evaluate(
    model: Module,
    tokenizer: Tokenizer,
    ids: Sequence[int],
    batch_size: int = 32,
    seq_len: int = 64,
    max_batches: int | None = None,
) -> Evaluation:
    """Average next-token loss of ``model`` on ``ids`` (held-out text), without gradients.

    The text is read as ``ContiguousBatches``: a recurrent model carries its state from
    one batch to the next, as in training, so every token is predicted from all the text
    before it in its row; a GPT sees at most its context of ``seq_len`` tokens. A text too
    short for ``batch_size`` rows of ``seq_len`` tokens is read in fewer rows, or in one
    shorter row (``batch_shape_that_fits``).
    """
    device = model.parameters()[0].device
    batches = ContiguousBatches(ids, *batch_shape_that_fits(len(ids), batch_size, seq_len))
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    with no_grad():
        for index, (x, y) in enumerate(batches):
            if max_batches is not None and index >= max_batches:
                break
            logits, state = model(_on_device(x, device), state)
            total += F.cross_entropy(logits, _on_device(y, device), reduction="sum").item()
            count += y.size
    model.train(was_training)
    return Evaluation(total / count, count, chars_per_token(tokenizer, ids))


# ------------------------------------------------------------------ sampling


def next_token_probabilities(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None) -> np.ndarray:
    """The distribution to draw the next token from, given the last position's logits (V,).

    * temperature T: p ∝ exp(logits / T); T < 1 sharpens, T > 1 flattens, T = 0 is greedy
      (all the probability on the most likely token);
    * top_k: keep the k most likely tokens;
    * top_p (nucleus): keep the most likely tokens until their probability adds up to p.

    The kept probabilities are renormalised to sum to 1.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must lie in (0, 1], got {top_p}")
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        probabilities = np.zeros_like(logits)
        probabilities[np.argmax(logits)] = 1.0
        return probabilities
    scaled = logits / temperature
    probabilities = np.exp(scaled - scaled.max())
    probabilities /= probabilities.sum()
    if top_k is None and top_p is None:
        return probabilities
    order = np.argsort(-probabilities, kind="stable")
    keep = len(order)
    if top_k is not None:
        keep = min(keep, top_k)
    if top_p is not None:
        # the smallest prefix whose mass reaches top_p (at least one token)
        keep = min(keep, int(np.searchsorted(np.cumsum(probabilities[order]), top_p)) + 1)
    probabilities[order[keep:]] = 0.0
    return probabilities / probabilities.sum()


def generate_tokens(
    model: Module,
    prompt_ids: Sequence[int],
    max_new_tokens: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    rng: np.random.Generator | None = None,
    use_cache: bool = True,
) -> Iterator[tuple[int, np.ndarray]]:
    """Continue the token ids ``prompt_ids``: yield each new token and the logits (V,) it was drawn from.

    A recurrent model carries its state from step to step. A GPT with ``use_cache`` keeps
    a key-value cache (``model.new_cache``): the first step reads the prompt, every later
    step feeds only the token just drawn. Without the cache each step feeds the whole
    text again (its last ``context_length`` tokens). Both give the same logits.

    At the context length: GPT's positions (a learned table, or rotary tables) end at
    ``context_length - 1``, so once the text is longer, each step reads its last
    ``context_length`` tokens, every one of them at a position one lower than in the step
    before, and the first token of the last window is gone. No cached key stays valid
    (each depends on its position and on the tokens before it), so the cache is
    cleared and refilled from that window: from then on a step costs what it costs
    without the cache.

    The model is in eval mode while the tokens are drawn (restored afterwards); draws come
    from ``rng`` (default: tl's generator, seeded by ``tl.manual_seed``).
    """
    if not prompt_ids:
        raise ValueError("generate needs a prompt of at least one token to start from (e.g. a newline)")
    rng = backend.generator("cpu") if rng is None else rng
    device = model.parameters()[0].device
    ids = list(prompt_ids)
    state = model.new_cache(min(model.context_length, len(ids) + max_new_tokens)) if use_cache and not model.recurrent else None
    feed = ids
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            if not model.recurrent and (state is None or state.length + len(feed) > model.context_length):
                feed = ids[-model.context_length :]  # no cache, or a full one: read the window afresh
                if state is not None:
                    state.clear()
            with no_grad():
                logits, state = model(_on_device(np.asarray([feed], dtype=np.int64), device), state)
            last = backend.to_numpy(logits.data[0, -1])
            probabilities = next_token_probabilities(last, temperature, top_k, top_p)
            token = int(rng.choice(len(probabilities), p=probabilities))
            ids.append(token)
            feed = [token]
            yield token, last
    finally:
        model.train(was_training)


def generate(
    model: Module,
    tokenizer: Tokenizer,
    prompt: str = "\n",
    max_new_tokens: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_cache: bool = True,
    stop_at_eos: bool = True,
) -> str:
    """Continue ``prompt`` by up to ``max_new_tokens`` tokens drawn one at a time; returns the continuation.

    The same seed gives the same text; without one, the draws come from tl's generator
    (seeded by ``tl.manual_seed``). ``temperature=0`` is greedy decoding. ``use_cache``:
    a GPT keeps the keys and values of the text so far (see ``generate_tokens``).
    ``stop_at_eos``: the text ends where the model writes the tokenizer's end-of-text
    token (GPT-2's ``<|endoftext|>``; that token is not part of the result); what a model
    writes after it belongs to another document.
    """
    rng = np.random.default_rng(seed) if seed is not None else None
    stop_id = tokenizer.eos_token_id if stop_at_eos else None
    continuation = []
    with closing(generate_tokens(model, tokenizer.encode(prompt), max_new_tokens, temperature, top_k, top_p, rng, use_cache)) as tokens:
        for token, _ in tokens:
            if token == stop_id:
                break
            continuation.append(token)
    return tokenizer.decode(continuation)


# ------------------------------------------------------------------ checkpoints


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> tuple[Module, Tokenizer, dict[str, Any]]:
    """The model (with its trained weights), the tokenizer and the whole saved state of a run."""
    checkpoint = load(path)
    if not isinstance(checkpoint, dict) or "model_config" not in checkpoint:
        raise CheckpointError(f"{path} is a tinylm file but not a language-model checkpoint (no model_config in it)")
    model = model_from_config(checkpoint["model_config"])
    model.load_state_dict(checkpoint["model"])
    return model.to(backend.check_device(device)), tokenizer_from_dict(checkpoint["tokenizer"]), checkpoint


class _InterruptFlag:
    """While installed, the first Ctrl-C only raises a flag (the loop saves and stops after
    the step under way); a second Ctrl-C interrupts at once, as usual."""

    def __init__(self):
        self.raised = False
        self.installed = threading.current_thread() is threading.main_thread()  # signals reach the main thread only

    def __enter__(self) -> "_InterruptFlag":
        if self.installed:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc_info) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)


# ------------------------------------------------------------------ training

DIVERGED_FACTOR = 10  # a loss this many times that of a uniform guess (ln V) means the run diverged
MAX_SKIPPED_IN_A_ROW = 10  # with on_divergence="skip": more bad batches in a row than this stop the run


class TrainingDiverged(RuntimeError):
    """A training step whose loss or gradient norm blew up; the message says what to change."""

    def __init__(self, message: str, step: int, loss: float, grad_norm: float):
        super().__init__(message)
        self.step, self.loss, self.grad_norm = step, loss, grad_norm


class TextTooShortError(ValueError):
    """The training text holds fewer tokens than one training window (``seq_len + 1``)."""

    def __init__(self, train_tokens: int, val_tokens: int, seq_len: int):
        self.train_tokens, self.val_tokens, self.seq_len = train_tokens, val_tokens, seq_len
        super().__init__(
            f"{train_tokens:,} training tokens are too few for one training window of seq_len + 1 = "
            f"{seq_len + 1} tokens ({val_tokens:,} more are held out for validation): "
            f"use seq_len={train_tokens - 1} or less, or more text"
        )


def _rows(rows: int, length: int) -> str:
    return f"{rows} row{'s' if rows != 1 else ''} of {length} tokens"


class Trainer:
    """Trains a language model from ``build_model`` on a stream of token ids.

    Recurrent models read the training text as ``ContiguousBatches`` and carry their state
    between batches (truncated backpropagation through time); a GPT reads random windows.
    Adam with warm-up and cosine decay, gradient clipping, validation every
    ``eval_every`` steps, checkpoints and a loss-curve PNG in ``run_dir``. A diverged step
    (see the module's docstring) is not taken: the run stops with ``TrainingDiverged``, or
    with ``on_divergence="skip"`` goes on with the next batch.

    A short text trains too: a recurrent model reads fewer rows per batch when the text
    cannot fill ``batch_size`` rows (``config.batch_size`` becomes that number), validation
    reads fewer or shorter rows (see ``evaluate``), and one line on stderr says so. Only a
    training text shorter than one window of ``seq_len + 1`` tokens is refused
    (``TextTooShortError``).
    """

    REPLAN_EVERY = 20  # steps between estimates of how many steps fit in max_seconds

    def __init__(
        self,
        model: Module,
        tokenizer: Tokenizer,
        train_ids: Sequence[int],
        val_ids: Sequence[int],
        config: TrainConfig | None = None,
        run_dir: str | os.PathLike | None = None,
        data: dict[str, Any] | None = None,
    ):
        self.config = config or TrainConfig()
        self.model = model.to(backend.check_device(self.config.device))
        self.tokenizer = tokenizer
        self.train_ids = np.asarray(train_ids, dtype=np.int64)
        self.val_ids = np.asarray(val_ids, dtype=np.int64)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.data = data or {}  # where the text came from, saved so `tinylm eval` can find it again
        self._fit_batches_to_the_text()
        self.optimizer = optim.Adam(model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        self.scheduler = WarmupCosineLR(self.optimizer, self.config.warmup_steps, self.config.steps, self.config.min_lr_ratio)
        self.batches = ContiguousBatches(self.train_ids, self.config.batch_size, self.config.seq_len) if model.recurrent else None
        self.state = None  # the recurrent state carried to the next batch
        self.step = 0
        self.history = History()
        self.last_evaluation: Evaluation | None = None
        self.interrupted = False  # whether the last train() stopped at a Ctrl-C
        self.skipped_in_a_row = 0  # diverged batches skipped since the last step taken

    def _fit_batches_to_the_text(self) -> None:
        """Fewer rows per batch for a text too short to fill them, said in one line.

        Random windows (a GPT's batches) may overlap, so one window of text is enough for
        them; a recurrent model's rows lie side by side, so B rows of T tokens need
        B·T + 1 tokens of text.
        """
        config, train_tokens, val_tokens = self.config, len(self.train_ids), len(self.val_ids)
        if train_tokens < config.seq_len + 1:
            raise TextTooShortError(train_tokens, val_tokens, config.seq_len)
        changes = []
        if self.model.recurrent:
            rows, _ = batch_shape_that_fits(train_tokens, config.batch_size, config.seq_len)
            if rows < config.batch_size:
                changes.append(f"training {_rows(rows, config.seq_len)} (not {config.batch_size} rows: {train_tokens:,} training tokens)")
                self.config = replace(config, batch_size=rows)
        val_rows, val_length = batch_shape_that_fits(val_tokens, self.config.batch_size, config.seq_len)
        if (val_rows, val_length) != (self.config.batch_size, config.seq_len):
            changes.append(f"validation {_rows(val_rows, val_length)} ({val_tokens:,} validation tokens)")
        if changes:
            print(f"Short text, so smaller batches: {', '.join(changes)}.", file=sys.stderr)

    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / "checkpoint.npz" if self.run_dir is not None else None

    # ------------------------------------------------------------ one step
    def _next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        if self.batches is None:
            return random_windows(self.train_ids, self.config.batch_size, self.config.seq_len)
        x, y, new_pass = self.batches.next_batch()
        if new_pass:
            self.state = None  # the rows start again from their beginnings
        return x, y

    def train_step(self) -> float:
        """One optimizer step on the next batch; returns its loss (nats per token).

        Raises ``TrainingDiverged``, before updating anything, when the loss or the gradient
        norm is not finite or the loss exceeds ``DIVERGED_FACTOR`` · ln V.
        """
        device = self.config.device
        x, y = self._next_batch()
        logits, state = self.model(_on_device(x, device), self.state)
        loss = F.cross_entropy(logits, _on_device(y, device))
        self.optimizer.zero_grad()
        loss.backward()
        # max_norm infinity only measures the norm, which the divergence check needs
        grad_norm = optim.clip_grad_norm_(self.model.parameters(), self.config.clip_grad_norm or math.inf)
        loss_value = loss.item()
        uniform_loss = math.log(logits.shape[-1])
        if not (math.isfinite(grad_norm) and loss_value <= DIVERGED_FACTOR * uniform_loss):  # NaN fails too
            self.optimizer.zero_grad()
            self.state = None  # the state after a bad batch may hold inf or NaN: start the rows afresh
            message = self._divergence_message(loss_value, grad_norm, uniform_loss)
            raise TrainingDiverged(message, self.step + 1, loss_value, grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.state = detach_state(state)
        self.step += 1
        self.skipped_in_a_row = 0
        return loss_value

    def _divergence_message(self, loss: float, grad_norm: float, uniform_loss: float) -> str:
        """One line: the step, what blew up, the last good loss, the likely cause and the fixes."""
        losses = self.history.train_losses  # only steps taken: every one had a good loss
        last = f"the last good loss was {losses[-1]:.4g} at step {self.step}" if losses else "no step was taken before"
        if self.checkpoint_path is not None and self.checkpoint_path.exists():
            kept = f"{self.checkpoint_path} is left as it was"
        else:
            kept = "no checkpoint was written"
        skipped = f" (after skipping {self.skipped_in_a_row} batches in a row)" if self.skipped_in_a_row else ""
        return (
            f"training diverged at step {self.step + 1}{skipped}: loss {loss:.4g} nats/token (a uniform guess "
            f"scores {uniform_loss:.3g}), gradient norm {grad_norm:.4g}; {last}. Most often the learning rate "
            f"({self.optimizer.lr:.3g} at this step) is too large: lower it (--lr), clip gradients "
            f"(--clip-grad-norm), or check the data. The step was not taken; {kept}"
        )

    def validate(self, max_batches: int | None = None) -> Evaluation:
        return evaluate(self.model, self.tokenizer, self.val_ids, self.config.batch_size, self.config.seq_len, max_batches)

    # ------------------------------------------------------------ the loop
    def train(self, until: int | None = None, progress: bool | None = None, on_step: Callable[["Trainer", float], None] | None = None) -> History:
        """Train up to step ``until`` (default: ``config.steps``), Ctrl-C or ``config.max_seconds``.

        With ``max_seconds`` the run is as long as the time allows, at most ``config.steps``:
        every ``REPLAN_EVERY`` steps the speed measured so far says how many steps fit, and the
        cosine decay is stretched or shrunk to end then. (Such a run depends on the machine's
        speed, so only runs without a time budget repeat exactly.)

        Shows a tqdm progress bar (loss, tokens/s, ETA) when ``progress`` is True; by default
        only in a terminal or a notebook (``progress.show_progress_default``). ``on_step(trainer, loss)`` runs after
        every step. Saves a checkpoint and the loss curve in ``run_dir`` at the end.
        """
        config = self.config
        until = config.steps if until is None else until
        tokens_per_step = config.batch_size * config.seq_len
        bar = progress_bar(total=until, initial=self.step, show=progress, unit="step", leave=True)
        started = time.perf_counter()
        steps_before = self.step
        with _InterruptFlag() as interrupt:
            while self.step < until:
                try:
                    loss = self.train_step()
                except TrainingDiverged as diverged:
                    if config.on_divergence == "skip" and self.skipped_in_a_row < MAX_SKIPPED_IN_A_ROW:
                        self.skipped_in_a_row += 1
                        bar.write(f"step {diverged.step}: skipped a batch with loss {diverged.loss:.4g}, "
                                  f"gradient norm {diverged.grad_norm:.4g}")
                        continue
                    bar.close()
                    raise
                self.history.train_losses.append(loss)
                elapsed = time.perf_counter() - started
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_step * (self.step - steps_before) / elapsed:,.0f}")
                if on_step is not None:
                    on_step(self, loss)
                if config.max_seconds and self.step % self.REPLAN_EVERY == 0:
                    bar.total = self._fit_to_time(elapsed, self.step - steps_before)
                if config.eval_every and self.step % config.eval_every == 0 and self.step < until:
                    self._record_validation(bar, config.eval_batches)
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
                if interrupt.raised or (config.max_seconds and elapsed >= config.max_seconds):
                    break
        bar.close()
        self.interrupted = interrupt.raised
        if interrupt.raised:
            print(f"Interrupted at step {self.step}.", file=sys.stderr)
        else:
            self._record_validation(bar, None)
        if self.run_dir is not None:
            self.save_checkpoint()
            self.plot(self.run_dir / "loss.png")
            print(f"Saved {self.checkpoint_path} (resume with --resume) and {self.run_dir / 'loss.png'}", file=sys.stderr)
        return self.history

    def _fit_to_time(self, elapsed: float, steps_taken: int) -> int:
        """Set the schedule's length to the steps that fit in what is left of max_seconds."""
        affordable = self.step + int((self.config.max_seconds - elapsed) * steps_taken / elapsed)
        self.scheduler.total_steps = max(self.step + 1, min(self.config.steps, affordable))
        return self.scheduler.total_steps

    def _record_validation(self, bar, max_batches: int | None) -> None:
        evaluation = self.validate(max_batches)
        self.history.val_steps.append(self.step)
        self.history.val_losses.append(evaluation.loss)
        self.last_evaluation = evaluation
        bar.write(f"step {self.step}: validation {evaluation}")

    def plot(self, path: str | os.PathLike) -> None:
        """Save the training loss (raw and smoothed) and the validation losses as a PNG."""
        from .viz import plot_loss

        losses = self.history.train_losses
        figure = plot_loss({"train": losses}, smooth=max(1, min(50, len(losses) // 10)), ylabel="loss (nats per token)")
        figure.axes[0].plot(self.history.val_steps, self.history.val_losses, "o-", label="validation")
        figure.axes[0].legend()
        figure.savefig(path, dpi=100)

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly where it is."""
        carried = self.state if isinstance(self.state, tuple) else (self.state,) if self.state is not None else ()
        return {
            "model_config": self.model.config,
            "model": self.model.state_dict(),
            "tokenizer": self.tokenizer.to_dict(),
            "train_config": asdict(self.config),
            "data": self.data,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "rng": backend.get_rng_state(),
            "batch_position": self.batches.position if self.batches is not None else 0,
            "carried_state": [part.data for part in carried],
            "carried_state_is_tuple": isinstance(self.state, tuple),
            "history": asdict(self.history),
        }

    def save_checkpoint(self, path: str | os.PathLike | None = None) -> Path:
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("save_checkpoint needs a path, or a run_dir given to the Trainer")
        path.parent.mkdir(parents=True, exist_ok=True)
        save(self.state_dict(), path)
        return path

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        """Continue from ``checkpoint`` (its model must be this trainer's model).

        The checkpoint brings where the run is (weights, Adam's moments, the step, the random
        state); the settings are this trainer's ``config``: its ``lr`` and ``weight_decay``
        replace the ones saved with the optimizer and the schedule, so that a changed
        setting takes effect (the schedule's other settings come from the config already).
        """
        check_same_model(checkpoint["model_config"], self.model.config)
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.optimizer.weight_decay = self.config.weight_decay
        self.scheduler.load_state_dict({**checkpoint["scheduler"], "base_lr": self.config.lr})
        self.step = checkpoint["step"]
        backend.set_rng_state(checkpoint["rng"])
        if self.batches is not None:
            self.batches.position = checkpoint["batch_position"]
        device = self.config.device
        carried = tuple(Tensor(backend.to_device(part, device)) for part in checkpoint["carried_state"])
        self.state = carried if checkpoint["carried_state_is_tuple"] else (carried[0] if carried else None)
        self.history = History(**checkpoint["history"])

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike,
        train_ids: Sequence[int],
        val_ids: Sequence[int],
        run_dir: str | os.PathLike | None = None,
        **config_changes,
    ) -> "Trainer":
        """A trainer that continues the run saved at ``path`` (``config_changes``, e.g. steps=,
        lr= or device=, override its saved settings from this step on).

        ``batch_size`` and ``seq_len`` cannot change: where the run is in its text, and the
        recurrent state it carries from batch to batch, are laid out in rows of that shape.
        """
        model, tokenizer, checkpoint = load_checkpoint(path)
        saved = checkpoint["train_config"]
        unknown = sorted(set(config_changes) - {f.name for f in fields(TrainConfig)})
        if unknown:
            raise TypeError(f"unknown training settings {unknown}")
        for name in ("batch_size", "seq_len"):
            if name in config_changes and config_changes[name] != saved[name]:
                raise ValueError(
                    f"{path} was trained with {name}={saved[name]}; a resumed run keeps it (got {name}={config_changes[name]}): "
                    "leave it out, or start a new run"
                )
        config = TrainConfig(**{**saved, **config_changes})
        trainer = cls(model, tokenizer, train_ids, val_ids, config, run_dir or Path(path).parent, checkpoint["data"])
        trainer.load_state_dict(checkpoint)
        return trainer
