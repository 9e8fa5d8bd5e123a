"""Optimizers, clipping and schedules: PyTorch's numbers step for step, exact resumption."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinylm as tl
from tinylm import optim

from assertions import assert_close

OPTIMIZER_CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.5}),
]


def _problem() -> dict[str, np.ndarray]:
    """A small regression: tanh(x Wᵀ + b) should match y."""
    rng = np.random.default_rng(0)
    return {
        "w": rng.standard_normal((3, 4)),
        "b": rng.standard_normal(3),
        "x": rng.standard_normal((8, 4)),
        "y": rng.standard_normal((8, 3)),
    }


def _loss(w, b, x, y):
    """Written once, run by tinylm tensors and by torch tensors alike."""
    return (((x @ w.T + b).tanh() - y) ** 2).mean()


def _tinylm_trajectory(name: str, settings: dict, steps: int, dtype=np.float64, device: str = "cpu"):
    """Parameter values after each of ``steps`` steps (the third parameter never gets a gradient)."""
    data = _problem()
    w, b = (tl.tensor(data[k], dtype=dtype, device=device, requires_grad=True) for k in "wb")
    x, y = (tl.tensor(data[k], dtype=dtype, device=device) for k in "xy")
    unused = tl.ones(2, dtype=dtype, device=device, requires_grad=True)
    optimizer = getattr(optim, name)([w, b, unused], **settings)
    trajectory = []
    for _ in range(steps):
        optimizer.zero_grad()
        _loss(w, b, x, y).backward()
        optimizer.step()
        trajectory.append([p.numpy().copy() for p in (w, b, unused)])
    return trajectory


@pytest.mark.parametrize("name, settings", OPTIMIZER_CASES)
def test_optimizer_matches_torch_step_for_step(torch, name, settings):
    data = _problem()
    w, b = (torch.tensor(data[k], requires_grad=True) for k in "wb")
    x, y = (torch.tensor(data[k]) for k in "xy")
    unused = torch.ones(2, dtype=torch.float64, requires_grad=True)
    optimizer = getattr(torch.optim, name)([w, b, unused], **settings)
    for step, ours in enumerate(_tinylm_trajectory(name, settings, steps=20)):
        optimizer.zero_grad()
        _loss(w, b, x, y).backward()
        optimizer.step()
        for label, mine, theirs in zip(("w", "b", "unused"), ours, (w, b, unused)):
            assert_close(mine, theirs, rtol=1e-12, atol=1e-14, name=f"{name} {settings} step {step + 1}: {label}")


def _reference_updates(name: str, settings: dict, p: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    """The textbook form of each update rule, independent of tinylm's code."""
    lr, weight_decay = settings["lr"], settings.get("weight_decay", 1e-2 if name == "AdamW" else 0.0)
    velocity = m = v = None
    for t, g in enumerate(grads, start=1):
        if name == "SGD":
            g = g + weight_decay * p
            momentum = settings.get("momentum", 0.0)
            velocity = g if velocity is None else momentum * velocity + g
            direction = g + momentum * velocity if settings.get("nesterov") else velocity
            p = p - lr * direction
        else:
            beta1, beta2 = settings.get("betas", (0.9, 0.999))
            if name == "AdamW":
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
            m = (1 - beta1) * g if m is None else beta1 * m + (1 - beta1) * g
            v = (1 - beta2) * g * g if v is None else beta2 * v + (1 - beta2) * g * g
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
            p = p - lr * m_hat / (np.sqrt(v_hat) + settings.get("eps", 1e-8))
    return p


@pytest.mark.parametrize("name, settings", OPTIMIZER_CASES)
def test_optimizer_matches_hand_written_update(name, settings):
    rng = np.random.default_rng(1)
    start, grads = rng.standard_normal((2, 5)), list(rng.standard_normal((2, 2, 5)))
    param = tl.tensor(start, dtype=np.float64, requires_grad=True)
    optimizer = getattr(optim, name)([param], **settings)
    for g in grads:  # two steps: the second one uses the momentum / moments of the first
        param.grad = tl.tensor(g)
        optimizer.step()
    expected = _reference_updates(name, settings, start, grads)
    assert_close(param, expected, rtol=1e-12, atol=1e-14, name=f"{name} {settings}")


def test_parameters_without_grad_are_skipped_and_generators_accepted():
    used, unused = tl.tensor([1.0, 2.0], requires_grad=True), tl.tensor([3.0], requires_grad=True)
    optimizer = optim.Adam((p for p in (used, unused)), lr=0.1)
    used.grad = tl.tensor([1.0, -1.0])
    optimizer.step()
    assert_close(unused, [3.0], rtol=0, atol=0, name="parameter without grad")
    assert_close(used, [0.9, 2.1], rtol=1e-6, name="first Adam step moves each coordinate by lr")
    assert optimizer.state[1] == {}
    assert (used.version, unused.version) == (1, 0), "a step is an in-place write: it bumps the version it makes"


def test_adamw_decays_the_weights_not_the_gradient():
    """With a zero gradient AdamW only shrinks p by (1 − lr·wd); Adam's L2 term becomes a full Adam step."""
    start = np.array([2.0, -0.5], dtype=np.float64)
    decoupled, coupled = tl.tensor(start, requires_grad=True), tl.tensor(start, requires_grad=True)
    adamw, adam = optim.AdamW([decoupled], lr=0.1, weight_decay=0.5), optim.Adam([coupled], lr=0.1, weight_decay=0.5)
    for param, optimizer in ((decoupled, adamw), (coupled, adam)):
        param.grad = tl.zeros(2, dtype=np.float64)
        optimizer.step()
    assert_close(decoupled, start * (1 - 0.1 * 0.5), rtol=1e-15, name="AdamW with zero gradient")
    assert_close(coupled, start - 0.1 * np.sign(start), rtol=1e-6, name="Adam with L2 and zero gradient")


def test_momentum_buffer_starts_at_the_first_gradient():
    param = tl.tensor([0.0], dtype=np.float64, requires_grad=True)
    optimizer = optim.SGD([param], lr=1.0, momentum=0.5)
    for _ in range(3):
        param.grad = tl.tensor([1.0], dtype=np.float64)
        optimizer.step()
    # buffers 1, 1.5, 1.75 (not 0.5, 0.75, ... as a buffer started at zero would give)
    assert_close(param, [-(1 + 1.5 + 1.75)], rtol=1e-15, name="SGD momentum")
    assert_close(optimizer.state[0]["momentum_buffer"], [1.75], rtol=1e-15, name="momentum buffer")


# ------------------------------------------------------------ dtype, device, resuming


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, settings", [OPTIMIZER_CASES[3], OPTIMIZER_CASES[5], OPTIMIZER_CASES[7]])
def test_update_keeps_dtype_and_device(device, dtype, name, settings):
    data = _problem()
    param = tl.tensor(data["w"], dtype=dtype, device=device, requires_grad=True)
    optimizer = getattr(optim, name)([param], **settings)
    for _ in range(2):
        param.grad = tl.tensor(data["w"][::-1].copy(), dtype=dtype, device=device)
        optimizer.step()
    assert (param.dtype, param.device) == (np.dtype(dtype), device)
    for key, value in optimizer.state[0].items():
        if hasattr(value, "dtype"):
            assert (value.dtype, tl.backend.device_of(value)) == (np.dtype(dtype), device), key
    expected = _reference_updates(name, settings, data["w"], [data["w"][::-1]] * 2)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    assert_close(param, expected, rtol=rtol, atol=1e-6, name=f"{name} in {np.dtype(dtype)}")


@pytest.mark.parametrize("name, settings", [OPTIMIZER_CASES[3], OPTIMIZER_CASES[5], OPTIMIZER_CASES[7]])
def test_resuming_from_a_checkpoint_is_bit_exact(tmp_path, name, settings):
    """10 steps straight equal 5 steps, tl.save, a fresh model and optimizer, tl.load, 5 steps."""
    data = _problem()
    x, y = (tl.tensor(data[k], dtype=np.float32) for k in "xy")

    def fresh():
        params = [tl.tensor(data[k], dtype=np.float32, requires_grad=True) for k in "wb"]
        return params, getattr(optim, name)(params, **settings)

    def train(params, optimizer, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            _loss(*params, x, y).backward()
            optimizer.step()

    straight, straight_optimizer = fresh()
    train(straight, straight_optimizer, 10)

    first, first_optimizer = fresh()
    train(first, first_optimizer, 5)
    tl.save({"params": [p.data for p in first], "optimizer": first_optimizer.state_dict()}, tmp_path / "run.npz")
    resumed, resumed_optimizer = fresh()
    state = tl.load(tmp_path / "run.npz")
    for param, saved in zip(resumed, state["params"]):
        param.data = saved
    resumed_optimizer.load_state_dict(state["optimizer"])
    train(resumed, resumed_optimizer, 5)

    for label, a, b in zip("wb", straight, resumed):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{name}: {label} after resuming")


def test_state_dict_is_a_copy():
    param = tl.tensor([1.0, 2.0], requires_grad=True)
    optimizer = optim.SGD([param], lr=0.1, momentum=0.9)
    param.grad = tl.tensor([1.0, 1.0])
    optimizer.step()
    saved = optimizer.state_dict()
    optimizer.step()
    assert_close(saved["state"][0]["momentum_buffer"], [1.0, 1.0], rtol=0, atol=0, name="saved buffer")
    assert saved["hyperparameters"] == {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "nesterov": False}


# ------------------------------------------------------------ clipping


def test_clip_grad_norm_returns_the_norm_before_clipping_and_clips():
    a, b, no_grad = tl.zeros(2, requires_grad=True), tl.zeros(1, requires_grad=True), tl.zeros(1, requires_grad=True)
    a.grad, b.grad = tl.tensor([3.0, 0.0]), tl.tensor([4.0])
    norm = optim.clip_grad_norm_([a, b, no_grad], max_norm=1.0)
    assert isinstance(norm, float) and norm == pytest.approx(5.0)
    assert_close(a.grad, [3.0 / (5.0 + 1e-6), 0.0], name="clipped a.grad")
    assert_close(b.grad, [4.0 / (5.0 + 1e-6)], name="clipped b.grad")
    assert a.grad.dtype == np.float32 and no_grad.grad is None
    assert a.grad.version == b.grad.version == 1, "clipping scales the gradients in place"


def test_clip_grad_norm_leaves_small_gradients_alone():
    param = tl.zeros(2, requires_grad=True)
    param.grad = tl.tensor([0.3, 0.4])
    assert optim.clip_grad_norm_(param, max_norm=1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(param.grad.numpy(), np.array([0.3, 0.4], dtype=np.float32))
    assert param.grad.version == 0


def test_clip_grad_norm_of_overflowing_or_nan_gradients(recwarn):
    """Squares beyond float32's range make the norm inf (no warning); such gradients, and NaN ones, are left as they are."""
    overflowing, undefined = tl.zeros(2, requires_grad=True), tl.zeros(1, requires_grad=True)
    overflowing.grad, undefined.grad = tl.tensor([1e20, 1.0]), tl.tensor([float("nan")])
    assert optim.clip_grad_norm_(overflowing, max_norm=1.0) == math.inf
    assert math.isnan(optim.clip_grad_norm_(undefined, max_norm=1.0))
    np.testing.assert_array_equal(overflowing.grad.numpy(), np.array([1e20, 1.0], dtype=np.float32))
    assert not recwarn.list, [str(w.message) for w in recwarn.list]


def test_clip_grad_norm_matches_torch(torch):
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal(shape) for shape in ((3, 4), (4,), (2, 2, 2))]
    ours = [tl.zeros(g.shape, dtype=np.float64, requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for g, mine, other in zip(grads, ours, theirs):
        mine.grad, other.grad = tl.tensor(g), torch.tensor(g)
    torch_norm = float(torch.nn.utils.clip_grad_norm_(theirs, 0.5))
    assert optim.clip_grad_norm_(ours, 0.5) == pytest.approx(torch_norm, rel=1e-12)
    for i, (mine, other) in enumerate(zip(ours, theirs)):
        assert_close(mine.grad, other.grad, rtol=1e-12, name=f"clipped grad {i}")


# ------------------------------------------------------------ schedules


def _lrs(scheduler_class, steps: int, lr: float = 1.0, **settings) -> list[float]:
    optimizer = optim.SGD([tl.zeros(1, requires_grad=True)], lr=lr)
    scheduler = scheduler_class(optimizer, **settings)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.lr)
        optimizer.step()
        scheduler.step()
    return rates


def test_step_decay_values():
    assert _lrs(optim.StepLR, 7, lr=0.8, step_size=3, gamma=0.5) == pytest.approx([0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2])


def test_cosine_values():
    rates = _lrs(optim.CosineAnnealingLR, 13, lr=1.0, T_max=10, eta_min=0.1)
    assert rates[0] == pytest.approx(1.0)
    assert rates[5] == pytest.approx(0.55)  # halfway: the mean of base_lr and eta_min
    assert rates[10:] == pytest.approx([0.1] * 3)  # held at eta_min after T_max
    assert all(a > b for a, b in zip(rates[:10], rates[1:11])), "the rate falls until T_max"


def test_linear_warmup_values():
    assert _lrs(optim.LinearWarmup, 6, lr=0.4, warmup_steps=4) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4])


def test_schedules_match_torch(torch):
    def torch_lrs(make, steps):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.8)
        scheduler = make(optimizer)
        rates = []
        for _ in range(steps):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return rates

    schedulers = torch.optim.lr_scheduler
    assert _lrs(optim.StepLR, 9, lr=0.8, step_size=2, gamma=0.3) == pytest.approx(
        torch_lrs(lambda o: schedulers.StepLR(o, step_size=2, gamma=0.3), 9), rel=1e-12)
    assert _lrs(optim.CosineAnnealingLR, 11, lr=0.8, T_max=10, eta_min=0.05) == pytest.approx(
        torch_lrs(lambda o: schedulers.CosineAnnealingLR(o, T_max=10, eta_min=0.05), 11), rel=1e-9)
    assert _lrs(optim.LinearWarmup, 8, lr=0.8, warmup_steps=5) == pytest.approx(
        torch_lrs(lambda o: schedulers.LinearLR(o, start_factor=1 / 5, total_iters=4), 8), rel=1e-9)


def test_scheduler_state_dict_resumes():
    optimizer = optim.Adam([tl.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=10)
    for _ in range(4):
        scheduler.step()
    fresh_optimizer = optim.Adam([tl.zeros(1, requires_grad=True)], lr=1.0)
    fresh = optim.CosineAnnealingLR(fresh_optimizer, T_max=10)
    fresh.load_state_dict(scheduler.state_dict())
    assert fresh_optimizer.lr == optimizer.lr == pytest.approx((1 + math.cos(math.pi * 0.4)) / 2)
    scheduler.step()
    fresh.step()
    assert fresh_optimizer.lr == optimizer.lr


# ------------------------------------------------------------ errors


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="SGD got an empty list of parameters"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Adam got an empty list"):
        optim.Adam(p for p in [])
    with pytest.raises(TypeError, match="parameter 1 is a ndarray, expected a tinylm Tensor"):
        optim.SGD([tl.zeros(1, requires_grad=True), np.zeros(1)], lr=0.1)
    with pytest.raises(TypeError, match="expects an iterable of tensors .* got float"):
        optim.AdamW(0.5)
    param = tl.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match="appears more than once"):
        optim.SGD([param, param], lr=0.1)


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=-0.1), "SGD: lr must be >= 0, got -0.1"),
    (lambda p: optim.SGD(p, lr=float("nan")), "lr must be >= 0, got nan"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.9), "momentum must be >= 0"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov=True needs a momentum > 0"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), r"betas must be two numbers in \[0, 1\), got \(0.9, 1.0\)"),
    (lambda p: optim.AdamW(p, eps=-1e-8), "AdamW: eps must be >= 0"),
    (lambda p: optim.Adam(p, weight_decay=-0.1), "weight_decay must be >= 0"),
])
def test_bad_settings_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make([tl.zeros(1, requires_grad=True)])


def test_load_state_dict_checks_what_it_gets():
    params = [tl.zeros(2, requires_grad=True), tl.zeros(3, requires_grad=True)]
    adam = optim.Adam(params)
    for p in params:
        p.grad = tl.ones(p.shape)
    adam.step()
    with pytest.raises(ValueError, match="the state comes from 'Adam', expected 'SGD'"):
        optim.SGD(params, lr=0.1).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match="the state has 2 parameters, this optimizer has 1"):
        optim.Adam(params[:1]).load_state_dict(adam.state_dict())
    misshapen = r"state 'exp_avg' of parameter 0 has shape \(2,\), but the parameter has shape \(3,\)"
    with pytest.raises(ValueError, match=misshapen):
        optim.Adam(params[::-1]).load_state_dict(adam.state_dict())


def test_bad_clip_and_schedule_settings_are_refused():
    param = tl.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match="max_norm must be > 0, got 0"):
        optim.clip_grad_norm_([param], 0)
    with pytest.raises(TypeError, match="StepLR expects a tinylm optimizer, got list"):
        optim.StepLR([param], step_size=2)
    with pytest.raises(ValueError, match="warmup_steps must be a positive integer, got 0"):
        optim.LinearWarmup(optim.SGD([param], lr=0.1), warmup_steps=0)
