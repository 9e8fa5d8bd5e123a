"""Optimizers, gradient clipping and learning-rate schedules.

An optimizer holds a list of parameters and, after ``loss.backward()`` has filled their
``.grad``, moves each one a little against its gradient:

    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)   # optional
        optimizer.step()
        scheduler.step()                                  # optional

The update rules are PyTorch's, formula for formula, so a model trained here and one
trained with ``torch.optim`` from the same start take the same steps. Updates work on
the raw arrays in place, so no graph is recorded (as under ``tl.no_grad()``), a float32
parameter stays float32 and a GPU parameter stays on the GPU (the arithmetic mixes
arrays with Python floats only, which keep the array's dtype). Parameters whose
``.grad`` is None are skipped, as in PyTorch. Each update bumps the parameter's
``version``, so a backward through a graph built before the step refuses to run.

Everything an optimizer remembers between steps (momentum buffers, Adam's moments, the
step count) is in ``state_dict()`` as plain arrays and numbers, so ``tl.save`` can write
it and training resumes exactly where it stopped.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from . import backend
from .tensor import Tensor


def _parameter_list(params: Iterable[Tensor] | Tensor, who: str) -> list[Tensor]:
    """The parameters as a list (a generator such as ``model.parameters()`` is consumed once)."""
    if isinstance(params, Tensor):
        return [params]
    try:
        params = list(params)
    except TypeError:
        raise TypeError(
            f"{who} expects an iterable of tensors (e.g. model.parameters()), got {type(params).__name__}"
        ) from None
    for i, param in enumerate(params):
        if not isinstance(param, Tensor):
            raise TypeError(f"{who}: parameter {i} is a {type(param).__name__}, expected a tinylm Tensor")
    return params


def _check_non_negative(who: str, **settings: float) -> None:
    for name, value in settings.items():
        if not value >= 0.0:  # written this way so NaN fails too
            raise ValueError(f"{who}: {name} must be >= 0, got {value}")


class Optimizer:
    """Base class: keeps the parameters and one state dict per parameter.

    A subclass names its settings in ``hyperparameters`` (they are saved with the state)
    and writes ``_update(param, grad, state)``, which changes the array ``param`` in place.
    """

    hyperparameters: tuple[str, ...] = ("lr",)

    def __init__(self, params: Iterable[Tensor], lr: float):
        who = type(self).__name__
        self.params = _parameter_list(params, who)
        if not self.params:
            raise ValueError(f"{who} got an empty list of parameters; pass the parameters of a model that has some")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{who}: a parameter appears more than once in the list (it would be updated twice)")
        _check_non_negative(who, lr=lr)
        self.lr = lr
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Forget the gradients (the next ``backward()`` would otherwise add to them)."""
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for param, state in zip(self.params, self.state):
            if param.grad is not None:
                self._update(param.data, param.grad.data, state)
                param.bump_version()

    def _update(self, param, grad, state: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _update()")

    # ------------------------------------------------------------ saving and resuming
    def state_dict(self) -> dict[str, Any]:
        """Settings and per-parameter state (copied arrays, step counts), in parameter order."""
        return {
            "optimizer": type(self).__name__,
            "hyperparameters": {name: getattr(self, name) for name in self.hyperparameters},
            "state": [{key: _copy(value) for key, value in state.items()} for state in self.state],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict()`` returned; arrays take each parameter's dtype and device."""
        who = type(self).__name__
        if state_dict.get("optimizer") != who:
            raise ValueError(
                f"{who}.load_state_dict: the state comes from {state_dict.get('optimizer')!r}, expected {who!r}"
            )
        states = state_dict["state"]
        if len(states) != len(self.params):
            raise ValueError(
                f"{who}.load_state_dict: the state has {len(states)} parameters, this optimizer has {len(self.params)}"
            )
        for i, (param, state) in enumerate(zip(self.params, states)):
            for key, value in state.items():
                if hasattr(value, "shape") and tuple(value.shape) != param.shape:
                    raise ValueError(
                        f"{who}.load_state_dict: state {key!r} of parameter {i} has shape "
                        f"{tuple(value.shape)}, but the parameter has shape {param.shape}"
                    )
        for name in self.hyperparameters:
            setattr(self, name, state_dict["hyperparameters"][name])
        self.state = [
            {key: _onto(value, param) if hasattr(value, "shape") else value for key, value in state.items()}
            for param, state in zip(self.params, states)
        ]


def _copy(value):
    return value.copy() if hasattr(value, "copy") else value


def _onto(array, param: Tensor):
    """A fresh copy of ``array`` on ``param``'s device with ``param``'s dtype."""
    array = array.data if isinstance(array, Tensor) else array
    return backend.to_device(array, param.device).astype(param.dtype, copy=True)


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum, Nesterov momentum and L2 decay.

    With g = grad + weight_decay·p (the L2 term), as ``torch.optim.SGD``:

        plain:     p ← p − lr·g
        momentum:  b ← g at the first step, then b ← momentum·b + g;   p ← p − lr·b
        nesterov:  the same b, but p ← p − lr·(g + momentum·b)
    """

    hyperparameters = ("lr", "momentum", "weight_decay", "nesterov")

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        super().__init__(params, lr)
        _check_non_negative("SGD", momentum=momentum, weight_decay=weight_decay)
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0 (Nesterov is a kind of momentum)")
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov

    def _update(self, param, grad, state: dict[str, Any]) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.copy()
            else:
                state["momentum_buffer"] *= self.momentum
                state["momentum_buffer"] += grad
            buffer = state["momentum_buffer"]
            grad = grad + self.momentum * buffer if self.nesterov else buffer
        param -= self.lr * grad


class Adam(Optimizer):
    """Adam: a step of about lr in every coordinate, scaled by how steady its gradient is.

    With g = grad + weight_decay·p (L2, as ``torch.optim.Adam``), at step t = 1, 2, ...:

        m ← β₁·m + (1 − β₁)·g                  running mean of the gradient
        v ← β₂·v + (1 − β₂)·g²                 running mean of its square
        p ← p − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε)

    m and v start at zero, so early on they are too small by the factors 1 − βᵗ; the
    divisions (bias correction) undo that. The last line groups the terms as PyTorch
    does, so the results agree to the last few bits.
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay")

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        who = type(self).__name__
        if len(betas) != 2 or not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"{who}: betas must be two numbers in [0, 1), got {betas}")
        _check_non_negative(who, eps=eps, weight_decay=weight_decay)
        self.betas, self.eps, self.weight_decay = tuple(betas), eps, weight_decay

    def _apply_weight_decay(self, param, grad):
        """L2 regularisation: the gradient of ½·weight_decay·‖p‖² joins the gradient."""
        return grad + self.weight_decay * param

    def _update(self, param, grad, state: dict[str, Any]) -> None:
        xp = backend.array_module(param)
        beta1, beta2 = self.betas
        if not state:
            state.update(step=0, exp_avg=xp.zeros_like(param), exp_avg_sq=xp.zeros_like(param))
        if self.weight_decay:
            grad = self._apply_weight_decay(param, grad)
        state["step"] += 1
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        m += (1 - beta1) * (grad - m)  # = β₁·m + (1 − β₁)·g, written as torch's lerp_ computes it
        v *= beta2
        v += (1 - beta2) * grad * grad
        step_size = self.lr / (1 - beta1**t)
        denominator = xp.sqrt(v) / (1 - beta2**t) ** 0.5 + self.eps
        param -= step_size * (m / denominator)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    Instead of adding weight_decay·p to the gradient (where Adam's scaling would shrink
    it for parameters with large gradients), every parameter shrinks by the same factor
    before the Adam step:  p ← p·(1 − lr·weight_decay).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ):
        super().__init__(params, lr, betas, eps, weight_decay)

    def _apply_weight_decay(self, param, grad):
        param *= 1 - self.lr * self.weight_decay
        return grad


def clip_grad_norm_(params: Iterable[Tensor] | Tensor, max_norm: float) -> float:
    """Scale all gradients together so that their joint L2 norm is at most ``max_norm``.

    The norm is taken over every gradient as if they were one long vector:
    ‖g‖ = √(Σ over all parameters of Σ g²). When it exceeds max_norm, every gradient is
    multiplied by max_norm / (‖g‖ + 1e-6) (PyTorch's coefficient); the direction of the
    step is kept, only its length shrinks. Parameters without a gradient are skipped.

    Returns the total norm *before* clipping, a Python float (worth logging: spikes show
    an unstable run). A NaN or infinite norm is returned as is, and the gradients are then
    left as they are.
    """
    params = _parameter_list(params, "clip_grad_norm_")
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be > 0, got {max_norm}")
    grads = [param.grad for param in params if param.grad is not None]
    with np.errstate(over="ignore", invalid="ignore"):  # squares that overflow make the norm inf: the answer
        total_norm = math.sqrt(sum(float((grad.data * grad.data).sum()) for grad in grads))
    clip_coefficient = max_norm / (total_norm + 1e-6)
    if clip_coefficient < 1.0 and math.isfinite(total_norm):
        for grad in grads:
            grad.data *= clip_coefficient
            grad.bump_version()
    return total_norm


# ------------------------------------------------------------ learning-rate schedules


class LRScheduler:
    """Sets ``optimizer.lr`` from the number of steps taken so far.

    A subclass writes ``get_lr()``: the learning rate after ``self.last_step`` calls of
    ``step()``, computed from ``self.base_lr`` (the optimizer's lr when the scheduler was
    made). Call ``scheduler.step()`` once after each ``optimizer.step()``.
    """

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} expects a tinylm optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_step = 0
        optimizer.lr = self.get_lr()

    def get_lr(self) -> float:
        raise NotImplementedError(f"{type(self).__name__} must define get_lr()")

    def step(self) -> None:
        self.last_step += 1
        self.optimizer.lr = self.get_lr()

    def state_dict(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "last_step": self.last_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lr, self.last_step = state["base_lr"], state["last_step"]
        self.optimizer.lr = self.get_lr()


def _check_positive_int(who: str, name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")


class StepLR(LRScheduler):
    """Step decay: lr = base_lr · gamma^⌊step / step_size⌋ (as ``torch.optim.lr_scheduler.StepLR``)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        _check_positive_int("StepLR", "step_size", step_size)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def get_lr(self) -> float:
        return self.base_lr * self.gamma ** (self.last_step // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Cosine decay from base_lr to eta_min over T_max steps:

        lr = eta_min + (base_lr − eta_min) · (1 + cos(π · step / T_max)) / 2

    equal to ``torch.optim.lr_scheduler.CosineAnnealingLR`` up to T_max. After T_max the
    rate stays at eta_min (PyTorch's would climb back up along the cosine).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        _check_positive_int("CosineAnnealingLR", "T_max", T_max)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def get_lr(self) -> float:
        progress = min(self.last_step, self.T_max) / self.T_max
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2


class LinearWarmup(LRScheduler):
    """Linear warm-up: lr = base_lr · min(1, (step + 1) / warmup_steps).

    The first step uses base_lr / warmup_steps, step warmup_steps − 1 reaches base_lr, and
    it stays there. Large early steps, taken while Adam's moment estimates are still noisy,
    can throw a fresh model far off; warming up avoids them. (PyTorch:
    ``LinearLR(start_factor=1/warmup_steps, total_iters=warmup_steps - 1)``.)
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int):
        _check_positive_int("LinearWarmup", "warmup_steps", warmup_steps)
        self.warmup_steps = warmup_steps
        super().__init__(optimizer)

    def get_lr(self) -> float:
        return self.base_lr * min(1.0, (self.last_step + 1) / self.warmup_steps)
