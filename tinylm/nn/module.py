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
from typing import Any, Iterable, Iterator, Mapping, NamedTuple

import numpy as np

from .. import backend
from ..tensor import Tensor, _as_dtype


class Parameter(Tensor):
    """A tensor that is a learnable weight of a module: it requires grad (unless told not to)
    and is found by ``Module.parameters()``. It shares the array of the tensor or array it
    is made from (and that tensor's version), as PyTorch's does."""

    def __init__(self, data: Any, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class StateDictError(KeyError):
    """A state dict that does not fit the model (missing, unexpected or misshapen entries)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped (PyTorch returns the same pair)."""

    missing_keys: list[str]  # in the model, not in the state dict
    unexpected_keys: list[str]  # in the state dict, not in the model


class Module:
    """Base class of every layer and model.

    Subclasses set their parameters and sub-modules as attributes in ``__init__`` and
    write ``forward``; calling the module runs ``forward``. Attributes are searched, and
    lists and tuples inside them, but not dicts or deeper nesting.
    """

    training: bool = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # ------------------------------------------------------------ finding parameters
    def _registered(self, kind: type) -> Iterator[tuple[str, Any]]:
        """Attributes that are a ``kind``, and ``kind`` items of list or tuple attributes
        (named ``name.i``, as PyTorch's ModuleList and ParameterList name them)."""
        for name, value in vars(self).items():
            if isinstance(value, kind):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, kind):
                        yield f"{name}.{i}", item

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """Direct sub-modules with their attribute names."""
        return self._registered(Module)

    def children(self) -> Iterator["Module"]:
        for _, child in self.named_children():
            yield child

    def named_modules(
        self, prefix: str = "", remove_duplicate: bool = True, _visited: set[int] | None = None
    ) -> Iterator[tuple[str, "Module"]]:
        """This module and every sub-module below it, with dotted names.

        A module reachable by several paths (shared by two parents) comes once, under its
        first name, unless ``remove_duplicate=False``; a child that points back to an
        ancestor is never followed (no endless loop). Both as PyTorch.
        """
        _visited = set() if _visited is None else _visited
        if id(self) in _visited:
            return
        _visited.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name, remove_duplicate, _visited)
        if not remove_duplicate:
            _visited.discard(id(self))  # then only the ancestors on the current path block a visit

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def _own_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """This module's parameters, without those of its sub-modules."""
        return self._registered(Parameter)

    def named_parameters(self, remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name; a shared (tied) parameter once, under its
        first name, unless ``remove_duplicate=False``."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(remove_duplicate=remove_duplicate):
            for name, parameter in module._own_parameters():
                if remove_duplicate and id(parameter) in seen:
                    continue
                seen.add(id(parameter))
                yield (f"{module_name}.{name}" if module_name else name), parameter

    def parameters(self) -> list[Parameter]:
        return [parameter for _, parameter in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------ state
    def state_dict(self) -> "OrderedDict[str, Any]":
        """Parameter arrays by dotted name (copies, so later training does not change them).

        A shared parameter is listed under every name it has, as in PyTorch, so the keys
        match a PyTorch twin's even for tied weights.
        """
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters(remove_duplicate=False))

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values into the parameters, keeping each parameter's dtype and device.

        Values may be NumPy/CuPy arrays, tinylm tensors or PyTorch tensors; each is cast to
        its parameter's dtype and copied to its device, so ``model.to(np.float64);
        model.load_state_dict(sd)`` gives a float64 model. With ``strict`` (the default),
        missing and unexpected keys are errors; a wrong shape always is. All problems are
        reported together, and nothing is changed unless every entry fits.
        Returns the missing and unexpected keys (both empty when strict). Each loaded
        parameter's ``version`` is bumped: a graph built before the load cannot be
        backpropagated through any more (its gradients would belong to the old values).
        """
        own = dict(self.named_parameters(remove_duplicate=False))
        arrays = {name: _as_array(value) for name, value in state.items()}
        missing = [name for name in own if name not in arrays]
        unexpected = [name for name in arrays if name not in own]
        misshapen = [name for name in own if name in arrays and tuple(arrays[name].shape) != own[name].shape]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(f"{n} {own[n].shape}" for n in missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(f"{n} {tuple(arrays[n].shape)}" for n in unexpected))
        if misshapen:
            shapes = (f"{n}: model has {own[n].shape}, state dict has {tuple(arrays[n].shape)}" for n in misshapen)
            problems.append("wrong shapes: " + "; ".join(shapes))
        if problems:
            raise StateDictError(f"load_state_dict for {type(self).__name__} failed:\n  " + "\n  ".join(problems))
        for name, parameter in own.items():
            if name in arrays:
                # astype copies: the model must not share memory with the state dict (or with
                # another model loaded from it), or updating one would change the other
                parameter.data = backend.to_device(arrays[name], parameter.device).astype(parameter.dtype)
                parameter.bump_version()
        return IncompatibleKeys(missing, unexpected)

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
        """Forget every parameter's gradient (``grad = None``, PyTorch's default)."""
        for parameter in self.parameters():
            parameter.grad = None

    def to(self, target) -> "Module":
        """Move every parameter (and its grad) to a device, ``"cpu"`` or ``"cuda"``, or cast
        it to a floating dtype (``np.float64`` or ``"float64"``). Returns the module.

        The Parameter objects stay the same and only their arrays are replaced, so an
        optimizer made before ``to()`` keeps updating them.
        """
        if not (isinstance(target, str) and target in backend.DEVICES):
            target = _as_dtype(target)  # a name like "float64" becomes a dtype, for _moved too
            if target.kind != "f":
                raise TypeError(f"{type(self).__name__}.to(): parameters need a floating dtype, got {target}")
        for parameter in self.parameters():
            moved = parameter.to(target)  # moves the grad too
            parameter.data, parameter.grad = moved.data, moved.grad
        for module in self.modules():
            module._moved(target)
        return self

    def _moved(self, target: str | np.dtype) -> None:
        """Hook for modules that hold non-parameter arrays (buffers) that must move too:
        ``target`` is a device name ("cpu", "cuda") or a NumPy dtype."""

    # ------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The layer's settings, shown in its repr (override in subclasses)."""
        return ""

    def __repr__(self) -> str:
        """The module tree: each line a module, its settings, its own parameters' shapes and
        the number of parameters in it and below it, e.g.
        ``Linear(in_features=4, out_features=2, bias=True)  # weight (2, 4), bias (2,): 10 parameters``.
        """
        header = f"{type(self).__name__}({self.extra_repr()})"
        shapes = ", ".join(f"{name} {parameter.shape}" for name, parameter in self._own_parameters())
        count = self.num_parameters()
        if count:
            header += f"  # {shapes + ': ' if shapes else ''}{count:,} parameter{'s' if count != 1 else ''}"
        children = [f"({name}): {child!r}" for name, child in self.named_children()]
        return "\n".join([header] + ["  " + line.replace("\n", "\n  ") for line in children])


def _as_array(value):
    """The array behind a state-dict value: a tinylm tensor, a PyTorch tensor (through
    NumPy), a NumPy or CuPy array, or anything ``np.asarray`` takes."""
    if isinstance(value, Tensor):
        return value.data
    if type(value).__module__.startswith("torch"):  # recognised without importing torch
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        return value
    return np.asarray(value)


def _checked_modules(modules: Iterable, owner: str) -> list[Module]:
    modules = list(modules)
    for i, module in enumerate(modules):
        if not isinstance(module, Module):
            raise TypeError(f"{owner}: item {i} must be an nn.Module, got {type(module).__name__} ({module!r:.60})")
    return modules


class Sequential(Module):
    """Modules applied one after another: ``Sequential(Linear(2, 8), ReLU(), Linear(8, 1))``."""

    def __init__(self, *layers: Module):
        self.layers = _checked_modules(layers, "Sequential")

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, index: int | slice) -> Module:
        """One layer, or a Sequential of a slice of the layers (as PyTorch)."""
        return Sequential(*self.layers[index]) if isinstance(index, slice) else self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        # PyTorch names the layers of a Sequential "0", "1", ...
        for i, layer in enumerate(self.layers):
            yield str(i), layer


class ModuleList(Module):
    """A list of modules whose parameters are named ``0.weight``, ``1.weight``, ... as in PyTorch."""

    def __init__(self, modules: Iterable[Module] = ()):
        self.items = _checked_modules(modules, "ModuleList")

    def __getitem__(self, index: int | slice) -> Module:
        """One module, or a ModuleList of a slice of them (as PyTorch)."""
        return ModuleList(self.items[index]) if isinstance(index, slice) else self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.items)

    def append(self, module: Module) -> None:
        self.items += _checked_modules([module], "ModuleList.append")

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, module in enumerate(self.items):
            yield str(i), module
