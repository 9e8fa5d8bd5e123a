"""Language modelling: models by name, training, bit-exact resuming, Ctrl-C, sampling, evaluation, n-grams."""
from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest

import tinylm as tl
import tinylm.functional as F
from tinylm import optim
from tinylm.data import BPETokenizer, CharTokenizer, train_val_split
from tinylm.lm import (
    MAX_SKIPPED_IN_A_ROW,
    Evaluation,
    TextTooShortError,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    WarmupCosineLR,
    bits_per_char,
    evaluate,
    generate,
    generate_tokens,
    load_checkpoint,
    next_token_probabilities,
    perplexity,
)
from tinylm.models import ModelMismatchError, RecurrentLM, build_model, check_same_model, model_from_config
from tinylm.ngram import KneserNeyLM

from assertions import assert_close

TEXT = "the quick brown fox jumps over the lazy dog. " * 30
TOKENIZER = CharTokenizer.train(TEXT)
TRAIN_IDS, VAL_IDS = train_val_split(TOKENIZER.encode(TEXT), 0.2)
TINY = {
    "lstm": {"embed_dim": 8, "hidden_size": 16},
    "gru": {"embed_dim": 8, "hidden_size": 16, "num_layers": 2},
    "rnn": {"embed_dim": 8, "hidden_size": 16},
    "gpt": {"context_length": 16, "embed_dim": 16, "num_heads": 2, "num_layers": 1},
    "llama": {"context_length": 16, "embed_dim": 16, "num_heads": 2, "num_layers": 1, "num_kv_heads": 1},
}
CONFIG = dict(steps=8, batch_size=4, seq_len=8, warmup_steps=2, eval_every=4, eval_batches=2)


def tiny_model(name: str = "lstm", device: str = "cpu"):
    return build_model(name, TOKENIZER.vocab_size, **TINY[name]).to(device)


def parameters_of(model) -> dict:
    return {name: p.numpy().copy() for name, p in model.named_parameters()}


# ------------------------------------------------------------------ models


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn", "gpt", "llama"])
def test_every_model_maps_ids_to_next_token_logits(name, device):
    model = tiny_model(name, device)
    logits, state = model(tl.zeros(3, 5, dtype=np.int64, device=device))
    assert logits.shape == (3, 5, TOKENIZER.vocab_size) and logits.device == device
    assert (state is None) == (name in ("gpt", "llama"))
    assert model.config["model"] == name and model.config["vocab_size"] == TOKENIZER.vocab_size
    assert {key: model.config[key] for key in TINY[name]} == TINY[name]


def test_a_recurrent_model_continues_from_its_state(device):
    model = tiny_model("lstm", device)
    ids = tl.tensor([[1, 2, 3, 4, 5, 6]], device=device)
    whole, _ = model(ids)
    first, state = model(ids[:, :4])
    rest, _ = model(ids[:, 4:], state)
    assert_close(tl.concat([first, rest], axis=1), whole, rtol=1e-5, atol=1e-6, name="logits in two pieces")


def test_the_gpt_refuses_more_than_its_context():
    with pytest.raises(ValueError, match="a sequence of 17 tokens is longer than the model's context_length 16"):
        tiny_model("gpt")(np.zeros((1, 17), dtype=np.int64))


def test_model_registry_errors_and_config_round_trip():
    with pytest.raises(ValueError, match=r"unknown model 'transformer': expected one of \['lstm', 'gru', 'rnn', 'gpt', 'llama'\]"):
        build_model("transformer", 10)
    with pytest.raises(ValueError, match="model 'lstm' has no setting num_heads"):
        build_model("lstm", 10, num_heads=2)
    with pytest.raises(ValueError, match="unknown recurrent cell 'tanh'"):
        RecurrentLM(10, cell="tanh")
    model = tiny_model("gru")
    assert model_from_config(model.config).config == model.config
    assert parameters_of(model_from_config(model.config)).keys() == parameters_of(model).keys()


def test_a_different_model_is_named_in_the_error():
    with pytest.raises(ModelMismatchError, match=r"holds a different model: hidden_size 16 \(this run: 32\); model 'lstm' \(this run: 'gru'\)"):
        check_same_model(tiny_model("lstm").config, build_model("gru", TOKENIZER.vocab_size, embed_dim=8, hidden_size=32).config)


# ------------------------------------------------------------------ training


def test_warmup_then_cosine_schedule():
    optimizer = optim.SGD([tl.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = WarmupCosineLR(optimizer, warmup_steps=4, total_steps=14, min_lr_ratio=0.1)
    rates = [optimizer.lr]
    for _ in range(16):
        scheduler.step()
        rates.append(optimizer.lr)
    np.testing.assert_allclose(rates[:5], [0.25, 0.5, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(rates[9], 0.1 + 0.9 * 0.5)  # half-way through the cosine
    np.testing.assert_allclose(rates[14:], [0.1] * 3)


@pytest.mark.trains
@pytest.mark.parametrize("name", ["lstm", "gpt", "llama"])
def test_training_lowers_the_loss(name, device):
    """30 steps lower the mean loss of 5 steps by more than 0.3 nats. Measured over seeds 0-3
    and OpenBLAS's SkylakeX, Haswell (also single-threaded), Sandybridge and Prescott kernels:
    by 0.97-1.31 (lstm), 2.09-2.29 (gpt) and 2.16-2.30 (llama)."""
    config = TrainConfig(**{**CONFIG, "steps": 30, "lr": 3e-2, "device": device})
    trainer = Trainer(tiny_model(name), TOKENIZER, TRAIN_IDS, VAL_IDS, config)
    history = trainer.train(progress=False)
    assert trainer.step == 30 and len(history.train_losses) == 30
    assert np.mean(history.train_losses[-5:]) < np.mean(history.train_losses[:5]) - 0.3
    assert history.val_steps[-1] == 30 and history.val_losses[-1] == trainer.last_evaluation.loss


def test_a_short_text_trains_in_fewer_rows_and_says_so_in_one_line(capsys):
    """The default 32 rows of 64 tokens need 2,049 tokens; 250 fill 3 rows, 50 one row of 49."""
    ids = np.asarray(TOKENIZER.encode(TEXT[:300]))
    trainer = Trainer(tiny_model("lstm"), TOKENIZER, ids[:250], ids[250:], TrainConfig(steps=2, warmup_steps=1))
    assert trainer.config.batch_size == 3 and trainer.config.seq_len == 64
    assert capsys.readouterr().err == (
        "Short text, so smaller batches: training 3 rows of 64 tokens (not 32 rows: 250 training tokens), "
        "validation 1 row of 49 tokens (50 validation tokens).\n"
    )
    trainer.train(progress=False)
    assert trainer.last_evaluation.tokens == 49


def test_a_text_shorter_than_one_training_window_is_refused():
    ids = np.asarray(TOKENIZER.encode(TEXT[:50]))
    with pytest.raises(TextTooShortError, match=(
        r"^40 training tokens are too few for one training window of seq_len \+ 1 = 65 tokens "
        r"\(10 more are held out for validation\): use seq_len=39 or less, or more text$"
    )):
        Trainer(tiny_model("gpt"), TOKENIZER, ids[:40], ids[40:], TrainConfig())


@pytest.mark.parametrize("name", ["lstm", "gpt", "llama"])
def test_resuming_from_a_checkpoint_continues_bit_for_bit(tmp_path, name, device):
    """8 steps straight == 4 steps, checkpoint, new objects (and a disturbed RNG), 4 more."""
    config = TrainConfig(**CONFIG, device=device)
    tl.manual_seed(1)
    straight = Trainer(tiny_model(name), TOKENIZER, TRAIN_IDS, VAL_IDS, config)
    straight.train(progress=False)

    tl.manual_seed(1)
    first_half = Trainer(tiny_model(name), TOKENIZER, TRAIN_IDS, VAL_IDS, config, run_dir=tmp_path)
    first_half.train(until=4, progress=False)
    assert (tmp_path / "checkpoint.npz").exists() and (tmp_path / "loss.png").exists()
    tl.manual_seed(12345)
    tiny_model(name)  # draws from the generator, as other work in the same process would

    resumed = Trainer.resume(tmp_path / "checkpoint.npz", TRAIN_IDS, VAL_IDS)
    assert resumed.step == 4 and resumed.model.parameters()[0].device == device
    resumed.train(progress=False)
    assert resumed.step == straight.step == 8
    for (key, expected), actual in zip(parameters_of(straight.model).items(), parameters_of(resumed.model).values()):
        np.testing.assert_array_equal(actual, expected, err_msg=f"{key} differs after resuming")
    assert resumed.history.train_losses == straight.history.train_losses


def test_resuming_with_new_settings_takes_them_from_that_step_on(tmp_path):
    """lr, warm-up, decay and weight decay given to resume replace the saved ones (which the
    optimizer's and the schedule's states also hold) at once: the rate at the step where the
    run resumes is the new schedule's, and the next step follows it too."""
    Trainer(tiny_model(), TOKENIZER, TRAIN_IDS, VAL_IDS, TrainConfig(**CONFIG), run_dir=tmp_path).train(until=4, progress=False)
    changes = dict(lr=1e-3, warmup_steps=2, min_lr_ratio=0.5, steps=20, weight_decay=0.01)
    resumed = Trainer.resume(tmp_path / "checkpoint.npz", TRAIN_IDS, VAL_IDS, **changes)

    def new_schedule(step: int) -> float:
        cosine = (1 + math.cos(math.pi * (step - 2) / (20 - 2))) / 2
        return 1e-3 * (0.5 + 0.5 * cosine)

    assert resumed.step == 4 and resumed.optimizer.weight_decay == 0.01
    assert resumed.optimizer.lr == pytest.approx(new_schedule(4), rel=1e-12)
    resumed.train(until=5, progress=False)
    assert resumed.optimizer.lr == pytest.approx(new_schedule(5), rel=1e-12)
    assert load_checkpoint(tmp_path / "checkpoint.npz")[2]["train_config"]["lr"] == 1e-3  # and saved so


def test_ctrl_c_finishes_the_step_saves_a_checkpoint_and_returns(tmp_path):
    def press_ctrl_c(trainer, loss):
        if trainer.step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    # whatever Ctrl-C did before comes back: Python's KeyboardInterrupt, or nothing where the
    # tests run in the background (`nohup`, `make test &`, some CI runners ignore SIGINT)
    before = signal.getsignal(signal.SIGINT)
    trainer = Trainer(tiny_model(), TOKENIZER, TRAIN_IDS, VAL_IDS, TrainConfig(**CONFIG), run_dir=tmp_path)
    trainer.train(progress=False, on_step=press_ctrl_c)
    assert trainer.interrupted and trainer.step == 3
    assert signal.getsignal(signal.SIGINT) is before
    model, tokenizer, checkpoint = load_checkpoint(tmp_path / "checkpoint.npz")
    assert checkpoint["step"] == 3 and tokenizer.chars == TOKENIZER.chars
    for (key, expected), actual in zip(parameters_of(trainer.model).items(), parameters_of(model).values()):
        np.testing.assert_array_equal(actual, expected, err_msg=f"{key} not saved")


def test_resuming_with_another_model_is_refused(tmp_path):
    Trainer(tiny_model("lstm"), TOKENIZER, TRAIN_IDS, VAL_IDS, TrainConfig(**CONFIG), run_dir=tmp_path).train(until=1, progress=False)
    trainer = Trainer(tiny_model("gru"), TOKENIZER, TRAIN_IDS, VAL_IDS, TrainConfig(**CONFIG))
    with pytest.raises(ModelMismatchError, match="model 'lstm' \\(this run: 'gru'\\)"):
        trainer.load_state_dict(tl.load(tmp_path / "checkpoint.npz"))


def test_a_checkpoint_from_before_a_setting_existed_still_resumes(tmp_path):
    Trainer(tiny_model("gpt"), TOKENIZER, TRAIN_IDS, VAL_IDS, TrainConfig(**CONFIG), run_dir=tmp_path).train(until=1, progress=False)
    checkpoint = tl.load(tmp_path / "checkpoint.npz")
    for setting in ("layer_norm_eps", "norm", "mlp", "positions", "bias", "num_kv_heads", "mlp_dim", "rope_theta"):
        del checkpoint["model_config"][setting]  # as tinylm saved it before GPT had the settings
    trainer = Trainer(model_from_config(checkpoint["model_config"]), TOKENIZER, TRAIN_IDS, VAL_IDS, TrainConfig(**CONFIG))
    trainer.load_state_dict(checkpoint)
    assert trainer.step == 1 and trainer.model.config["layer_norm_eps"] == 1e-5
    checkpoint["model_config"]["layer_norm_eps"] = 1e-6
    with pytest.raises(ModelMismatchError, match=r"layer_norm_eps 1e-06 \(this run: 1e-05\)"):
        trainer.load_state_dict(checkpoint)


def test_a_time_budget_fits_the_schedule_to_the_measured_speed(monkeypatch):
    clock = iter(range(0, 10_000, 2))  # every reading of the clock is 2 s later: 1 step per 2 s (the first is the start)
    monkeypatch.setattr("tinylm.lm.time.perf_counter", lambda: next(clock))
    monkeypatch.setattr(Trainer, "REPLAN_EVERY", 3)
    trainer = Trainer(tiny_model(), TOKENIZER, TRAIN_IDS, VAL_IDS, TrainConfig(**{**CONFIG, "steps": 100, "max_seconds": 21, "eval_every": 0}))
    trainer.train(progress=False)
    assert trainer.scheduler.total_steps == 10  # at step 3, 6 s gone: 15 s left, 7 more steps
    assert trainer.step == 11  # training goes on until the time is up: 22 s at step 11
    assert trainer.config.steps == 100


# ------------------------------------------------------------------ divergence


def _nan_logits_at(trainer, batches: set[int], monkeypatch) -> None:
    """Make the model return NaN logits for the given training batches (0, 1, ...), as a bad batch would."""
    forward, count = trainer.model.forward, iter(range(10**6))

    def sometimes_nan(x, state=None):
        logits, state = forward(x, state)
        bad = trainer.model.training and next(count) in batches  # validation runs in eval mode
        return (logits * math.nan if bad else logits), state

    monkeypatch.setattr(trainer.model, "forward", sometimes_nan)


def test_a_step_with_a_nan_loss_is_not_taken_and_stops_the_run(monkeypatch):
    trainer = Trainer(tiny_model(), TOKENIZER, TRAIN_IDS, VAL_IDS, TrainConfig(**CONFIG))
    _nan_logits_at(trainer, {2}, monkeypatch)
    trainer.train(until=2, progress=False)
    before = parameters_of(trainer.model)
    uniform = f"{math.log(TOKENIZER.vocab_size):.3g}".replace(".", r"\.")
    with pytest.raises(TrainingDiverged, match=rf"^training diverged at step 3: loss nan nats/token \(a uniform guess "
                                               rf"scores {uniform}\), gradient norm nan; the last good loss was \d\.\d+ at step 2\. "
                                               r"Most often the learning rate \(0\.003 at this step\) is too large: lower it \(--lr\), clip gradients "
                                               r"\(--clip-grad-norm\), or check the data\. The step was not taken; no "
                                               r"checkpoint was written$"):
        trainer.train(progress=False)
    assert trainer.step == 2 and len(trainer.history.train_losses) == 2
    for name, value in parameters_of(trainer.model).items():
        np.testing.assert_array_equal(value, before[name], err_msg=f"{name} changed by a diverged step")


def test_skipping_a_bad_batch_goes_on_with_the_next(monkeypatch, capsys):
    trainer = Trainer(tiny_model(), TOKENIZER, TRAIN_IDS, VAL_IDS, TrainConfig(**{**CONFIG, "on_divergence": "skip"}))
    _nan_logits_at(trainer, {1}, monkeypatch)
    history = trainer.train(until=3, progress=False)
    assert trainer.step == 3 and all(math.isfinite(loss) for loss in history.train_losses)
    assert "step 2: skipped a batch with loss nan, gradient norm nan" in capsys.readouterr().out


@pytest.mark.trains
def test_a_huge_learning_rate_stops_the_run_and_keeps_the_last_checkpoint(tmp_path):
    """Train 3 steps (checkpoint), then raise the rate a millionfold: the loss explodes, the file stays."""
    tl.manual_seed(0)
    trainer = Trainer(tiny_model(), TOKENIZER, TRAIN_IDS, VAL_IDS, TrainConfig(**{**CONFIG, "steps": 30}), run_dir=tmp_path)
    trainer.train(until=3, progress=False)
    saved = (tmp_path / "checkpoint.npz").read_bytes()
    resumed = Trainer.resume(tmp_path / "checkpoint.npz", TRAIN_IDS, VAL_IDS, lr=1e6)
    with pytest.raises(TrainingDiverged, match=r"training diverged at step \d+: loss [\d.e+]+ nats/token.*"
                                               rf"{tmp_path / 'checkpoint.npz'} is left as it was"):
        resumed.train(progress=False)
    assert (tmp_path / "checkpoint.npz").read_bytes() == saved
    assert load_checkpoint(tmp_path / "checkpoint.npz")[2]["step"] == 3


@pytest.mark.trains
def test_skipping_gives_up_after_too_many_bad_batches_in_a_row(capsys):
    trainer = Trainer(tiny_model(), TOKENIZER, TRAIN_IDS, VAL_IDS, TrainConfig(**{**CONFIG, "lr": 1e6, "on_divergence": "skip"}))
    with pytest.raises(TrainingDiverged, match=rf"after skipping {MAX_SKIPPED_IN_A_ROW} batches in a row"):
        trainer.train(progress=False)
    assert capsys.readouterr().out.count("skipped a batch") == MAX_SKIPPED_IN_A_ROW


def test_on_divergence_is_checked():
    with pytest.raises(ValueError, match="on_divergence must be 'stop' or 'skip', got 'ignore'"):
        TrainConfig(on_divergence="ignore")


# ------------------------------------------------------------------ sampling


def test_temperature_top_k_and_top_p_shape_the_distribution():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    np.testing.assert_allclose(next_token_probabilities(logits), [0.5, 0.3, 0.15, 0.05])
    np.testing.assert_array_equal(next_token_probabilities(logits, temperature=0), [1, 0, 0, 0])
    sharp = np.array([0.5, 0.3, 0.15, 0.05]) ** 2
    np.testing.assert_allclose(next_token_probabilities(logits, temperature=0.5), sharp / sharp.sum())
    np.testing.assert_allclose(next_token_probabilities(logits, top_k=2), [0.625, 0.375, 0, 0])
    np.testing.assert_allclose(next_token_probabilities(logits, top_p=0.75), [0.625, 0.375, 0, 0])
    np.testing.assert_allclose(next_token_probabilities(logits, top_p=0.85), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0])
    np.testing.assert_allclose(next_token_probabilities(logits, top_p=0.1), [1, 0, 0, 0])


@pytest.mark.parametrize(
    "options, message",
    [({"temperature": -1}, "temperature must be >= 0"), ({"top_k": 0}, "top_k must be at least 1"), ({"top_p": 0.0}, r"top_p must lie in \(0, 1\]")],
)
def test_sampling_settings_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        next_token_probabilities(np.zeros(3), **options)


@pytest.mark.parametrize("name", ["lstm", "gpt"])
def test_generation_is_reproducible_with_a_seed(name, device):
    model = tiny_model(name, device)
    first = generate(model, TOKENIZER, "the ", max_new_tokens=20, seed=7)
    assert len(first) == 20 and set(first) <= set(TOKENIZER.chars)
    assert generate(model, TOKENIZER, "the ", max_new_tokens=20, seed=7) == first
    assert generate(model, TOKENIZER, "the ", max_new_tokens=20, seed=8) != first
    assert generate(model, TOKENIZER, "the ", 20, top_k=3, top_p=0.9, temperature=0.7, seed=7) != first


@pytest.mark.parametrize("name", ["lstm", "gpt", "llama"])
def test_greedy_generation_takes_the_most_likely_token_given_everything_so_far(name, device):
    """Incremental decoding (a carried state, or a window of context) equals recomputing from the start."""
    model = tiny_model(name, device)
    ids = TOKENIZER.encode("the ")
    for _ in range(10):
        logits, _ = model(tl.tensor([ids[-16:]], device=device))
        ids.append(int(np.argmax(logits.numpy()[0, -1])))
    assert generate(model, TOKENIZER, "the ", max_new_tokens=10, temperature=0, seed=1) == TOKENIZER.decode(ids[4:])
    assert generate(model, TOKENIZER, "the ", max_new_tokens=10, temperature=0, seed=2) == TOKENIZER.decode(ids[4:])


@pytest.mark.parametrize("name", ["gpt", "llama"])
@pytest.mark.parametrize(
    "sampling", [{"temperature": 0}, {"temperature": 0.8}, {"temperature": 1.5, "top_k": 4}, {"temperature": 1.0, "top_p": 0.7}]
)
def test_cached_generation_gives_the_logits_of_uncached_generation(float64, sampling, name):
    """A prompt of 9 tokens and 20 new ones: the context of 16 fills up, then the window slides."""
    model = build_model(name, TOKENIZER.vocab_size, **TINY[name])
    prompt = TOKENIZER.encode("the quick")
    runs = {
        use_cache: list(generate_tokens(model, prompt, 20, **sampling, rng=np.random.default_rng(3), use_cache=use_cache))
        for use_cache in (True, False)
    }
    assert [token for token, _ in runs[True]] == [token for token, _ in runs[False]]
    for step, ((_, cached), (_, uncached)) in enumerate(zip(runs[True], runs[False])):
        assert cached.dtype == np.float64
        assert_close(cached, uncached, rtol=0, atol=1e-12, name=f"logits of step {step}")
    text = generate(model, TOKENIZER, "the quick", 20, **sampling, seed=5)
    assert generate(model, TOKENIZER, "the quick", 20, **sampling, seed=5, use_cache=False) == text


def test_generation_stops_at_the_end_of_text_token(device):
    """A byte-level tokenizer with GPT-2's <|endoftext|> (id 256), and an LSTM whose head makes
    that token likely (bias +3: about 7% a step): the text ends just before the model first
    writes it, unless told to go on; with the same seed the two agree up to there."""
    tokenizer = BPETokenizer({i: bytes([i]) for i in range(256)}, [], special_tokens=["<|endoftext|>"])
    tl.manual_seed(0)
    model = build_model("lstm", tokenizer.vocab_size, embed_dim=8, hidden_size=16).to(device)
    model.head.bias.data[tokenizer.eos_token_id] += 3.0
    stopped = generate(model, tokenizer, "Once", 200, seed=1)
    everything = generate(model, tokenizer, "Once", 200, seed=1, stop_at_eos=False)
    assert "<|endoftext|>" in everything, "the model should write the end-of-text token within 200 tokens"
    assert stopped == everything.split("<|endoftext|>")[0]
    assert len(tokenizer.encode(stopped)) < 200 and model.training  # and the model is back in training mode


def test_generation_needs_a_prompt():
    with pytest.raises(ValueError, match="a prompt of at least one token"):
        generate(tiny_model(), TOKENIZER, "")


# ------------------------------------------------------------------ evaluation


def test_perplexity_and_bits_per_character_follow_from_the_loss():
    evaluation = Evaluation(loss=math.log(8), tokens=100, chars_per_token=1.0)
    assert evaluation.perplexity == pytest.approx(8.0)
    assert evaluation.bits_per_char == pytest.approx(3.0)
    assert bits_per_char(math.log(8), chars_per_token=3.0) == pytest.approx(1.0)  # e.g. BPE tokens of 3 characters


def test_the_perplexity_of_a_huge_or_infinite_loss_is_inf():
    assert perplexity(math.log(8)) == pytest.approx(8.0)
    for loss in (1e6, math.inf):
        evaluation = Evaluation(loss=loss, tokens=100, chars_per_token=1.0)
        assert evaluation.perplexity == math.inf and "perplexity inf," in str(evaluation)
    assert math.isnan(perplexity(math.nan))


def test_evaluate_of_a_uniform_model_is_log_vocabulary_size():
    model = tiny_model()
    for parameter in model.head.parameters():
        parameter.data[...] = 0  # every logit 0: all tokens equally likely
    evaluation = evaluate(model, TOKENIZER, VAL_IDS, batch_size=2, seq_len=8)
    assert evaluation.loss == pytest.approx(math.log(TOKENIZER.vocab_size), rel=1e-6)
    assert evaluation.tokens == 2 * 8 * ((len(VAL_IDS) - 1) // 2 // 8)


def test_evaluate_equals_the_cross_entropy_of_the_batches(device):
    model = tiny_model("gpt", device)
    ids = VAL_IDS[:17]  # one batch: rows ids[0:8] and ids[8:16], each target one token later
    logits, _ = model(tl.tensor(np.stack([ids[0:8], ids[8:16]]), device=device))
    expected = F.cross_entropy(logits, tl.tensor(np.stack([ids[1:9], ids[9:17]]), device=device)).item()
    assert evaluate(model, TOKENIZER, ids, batch_size=2, seq_len=8).loss == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------ the n-gram baseline


def test_kneser_ney_probabilities_sum_to_one():
    model = KneserNeyLM(order=3).fit(TRAIN_IDS, TOKENIZER.vocab_size)
    for context in ([], TRAIN_IDS[:1], TRAIN_IDS[5:7], [0, 0]):
        total = sum(model.probability(list(context), token) for token in range(TOKENIZER.vocab_size))
        assert total == pytest.approx(1.0)


def test_kneser_ney_beats_uniform_and_higher_orders_beat_lower_ones():
    uniform = math.log(TOKENIZER.vocab_size)
    losses = [KneserNeyLM(order).fit(TRAIN_IDS, TOKENIZER.vocab_size).evaluate(VAL_IDS) for order in (1, 2, 4)]
    assert losses[0] < uniform and losses[1] < losses[0] and losses[2] < losses[1]


def test_kneser_ney_settings_are_checked():
    with pytest.raises(ValueError, match="order must be at least 1"):
        KneserNeyLM(order=0)
    with pytest.raises(ValueError, match="discount must lie strictly between 0 and 1"):
        KneserNeyLM(discount=1.0)
