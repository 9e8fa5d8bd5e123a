"""Module and Parameter: how layers hold their weights.

A ``Parameter`` is a tensor that requires grad and belongs to a model. A ``Module`` finds
its parameters and sub-modules by looking at its own attributes: assigning
``self.weight = Parameter(...)`` or ``self.layer = Linear(...)`` registers them (also
inside a list or tuple, e.g. ``self.blocks = [Block() for _ in range(4)]``). From that,
``named_parameters()`` gives dotted names (``blocks.0.attn.weight``) that match PyTorch's,
so state dicts can be compared and exchanged.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator

import numpy as np

from .. import backend
from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor that is a learnable weight of a module (it always requires grad)."""

    def __init__(self, data: Any, requires_grad: bool = True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class StateDictError(KeyError):
    """A state dict that does not fit the model (missing, unexpected or misshapen entries)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class Module:
    """Base class of every layer and model.

    Subclasses set their parameters and sub-modules as attributes in ``__init__`` and
    write ``forward``; calling the module runs ``forward``.
    """

    training: bool = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # ------------------------------------------------------------ finding parameters
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """Direct sub-modules, with the attribute name (``name.i`` inside lists)."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def children(self) -> Iterator["Module"]:
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def _own_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Parameter):
                        yield f"{name}.{i}", item

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name, each shared parameter once."""
        seen: set[int] = set()
        for module_name, module in self.named_modules():
            for name, parameter in module._own_parameters():
                if id(parameter) not in seen:
                    seen.add(id(parameter))
                    yield (f"{module_name}.{name}" if module_name else name), parameter

    def parameters(self) -> list[Parameter]:
        return [parameter for _, parameter in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------ state
    def state_dict(self) -> "OrderedDict[str, Any]":
        """Parameter arrays by dotted name (copies, so later training does not change them)."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy values into the parameters, keeping each parameter's dtype and device.

        Values may be arrays or tensors (a PyTorch state dict's tensors work via numpy).
        With ``strict`` (the default), missing, unexpected and wrongly shaped keys are all
        reported together before anything is changed.
        """
        own = dict(self.named_parameters())
        arrays = {name: _to_host_array(value) for name, value in state.items()}
        missing = [name for name in own if name not in arrays]
        unexpected = [name for name in arrays if name not in own]
        misshapen = [
            f"{name}: model has {own[name].shape}, state dict has {arrays[name].shape}"
            for name in own
            if name in arrays and tuple(arrays[name].shape) != own[name].shape
        ]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(f"{n} {own[n].shape}" for n in missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(f"{n} {arrays[n].shape}" for n in unexpected))
        if misshapen:
            problems.append("wrong shapes: " + "; ".join(misshapen))
        if problems:
            raise StateDictError(f"load_state_dict for {type(self).__name__} failed:\n  " + "\n  ".join(problems))
        for name, parameter in own.items():
            if name in arrays:
                xp = backend.array_module(parameter.data)
                parameter.data = xp.asarray(arrays[name], dtype=parameter.dtype)

    # ------------------------------------------------------------ modes and devices
    def train(self, mode: bool = True) -> "Module":
        """Training mode: dropout is active. Returns the module."""
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> "Module":
        """Evaluation mode: dropout is the identity. Returns the module."""
        return self.train(False)

    def zero_grad(self) -> None:
        for parameter in self.parameters():
            parameter.grad = None

    def to(self, target) -> "Module":
        """Move every parameter to a device, or cast every floating parameter to a dtype.

        The parameters are changed in place (optimizers holding them keep working).
        """
        for parameter in self.parameters():
            if isinstance(target, str):
                parameter.data = backend.to_device(parameter.data, backend.check_device(target))
                if parameter.grad is not None:
                    parameter.grad = parameter.grad.to(target)
            else:
                parameter.data = parameter.data.astype(np.dtype(target))
                if parameter.grad is not None:
                    parameter.grad = parameter.grad.to(target)
        for module in self.modules():
            module._moved(target)
        return self

    def _moved(self, target) -> None:
        """Hook for modules that hold non-parameter arrays (buffers) that must move too."""

    # ------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The layer's settings, shown in its repr (override in subclasses)."""
        return ""

    def __repr__(self) -> str:
        own = ", ".join(f"{name} {tuple(p.shape)}" for name, p in self._own_parameters())
        header = f"{type(self).__name__}({self.extra_repr()})"
        details = [f"params: {own}"] if own and list(self.named_children()) else []
        lines = [f"({name}): {child!r}" for name, child in self.named_children()]
        count = self.num_parameters()
        header += f"  # {count:,} parameters" if count else ""
        if not lines:
            return header
        body = "\n".join("  " + line.replace("\n", "\n  ") for line in details + lines)
        return f"{header}\n{body}"


def _to_host_array(value) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.numpy()
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    return backend.to_numpy(value) if hasattr(value, "get") else np.asarray(value)


class Sequential(Module):
    """Modules applied one after another: ``Sequential(Linear(2, 8), ReLU(), Linear(8, 1))``."""

    def __init__(self, *layers: Module):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        # PyTorch names the layers of a Sequential "0", "1", ...
        for i, layer in enumerate(self.layers):
            yield str(i), layer


class ModuleList(Module):
    """A list of modules whose parameters are named ``0.weight``, ``1.weight``, ... as in PyTorch."""

    def __init__(self, modules=()):
        self.items = list(modules)

    def __getitem__(self, i: int) -> Module:
        return self.items[i]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.items)

    def append(self, module: Module) -> None:
        self.items.append(module)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, module in enumerate(self.items):
            yield str(i), module
