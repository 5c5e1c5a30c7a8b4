"""Module: the base of every layer, and Sequential, the container of layers in order.

A Module finds its parameters, buffers and submodules by attribute assignment, in the order
they were assigned, so ``named_parameters()`` and ``state_dict()`` list them the same way on
every run (the order an optimizer and a saved file rely on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

from ..core import capture
from ..core.backend import Backend, get_backend
from ..core.dtypes import to_dtype
from ..core.tensor import Tensor
from .parameter import Parameter


class StateDictError(ValueError):
    """A state dict does not fit the module: missing, unexpected or mis-shaped entries."""

    def __init__(self, message: str, missing: Iterable[str] = (),
                 unexpected: Iterable[str] = (), mismatched: Iterable[str] = ()):
        super().__init__(message)
        self.missing_keys = list(missing)
        self.unexpected_keys = list(unexpected)
        self.mismatched_keys = list(mismatched)


class LoadResult(NamedTuple):
    """What :meth:`Module.load_state_dict` found but did not load (with ``strict=False``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _indent(text: str, by: str = "  ") -> str:
    return text.replace("\n", "\n" + by)


def _names(keys: Iterable[str], limit: int = 8) -> str:
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


class Module:
    """The base class of layers and models.

    Assign :class:`Parameter` objects and submodules as attributes in ``__init__`` (after
    ``super().__init__()``) and write ``forward``; calling the module calls ``forward``.

    >>> class Affine(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.scale = Parameter(fusion.ones(3))
    ...         self.shift = Parameter(fusion.zeros(3))
    ...     def forward(self, x):
    ...         return x * self.scale + self.shift
    >>> [name for name, _ in Affine().named_parameters()]
    ['scale', 'shift']
    """

    training: bool

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these dictionaries to exist
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # --- forward ---------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        capture.note_module(self)  # a captured step depends on this module's train/eval mode
        return self.forward(*args, **kwargs)

    # --- registration ----------------------------------------------------------------------
    def _registries(self) -> dict:
        registries = self.__dict__.get("_parameters")
        if registries is None:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 "assigning parameters, buffers or submodules")
        return registries

    def _forget(self, name: str) -> None:
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)
        self._modules.pop(name, None)

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Tensor | Module) or name in self.__dict__.get("_parameters", ()) \
                or name in self.__dict__.get("_modules", ()):
            capture.state_changed()  # a captured step may hold what this replaces
        if isinstance(value, Parameter):
            self._registries()
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._registries()
            self._forget(name)
            self._modules[name] = value
        elif name in self.__dict__.get("_parameters", ()):
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r} "
                                "(expected a Parameter or None)")
            self._parameters[name] = None
        elif name in self.__dict__.get("_buffers", ()):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer {name!r} "
                                "(expected a Tensor or None)")
            self._buffers[name] = value
        elif name in self.__dict__.get("_modules", ()):
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to submodule {name!r} "
                                "(expected a Module or None)")
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # called only when normal lookup fails: parameters, buffers and submodules live here
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry)
            if found is not None and name in found:
                return found[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters or name in self._buffers or name in self._modules:
            self._forget(name)
            capture.state_changed()
        else:
            object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._parameters, *self._buffers, *self._modules})

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None: a slot that holds no parameter, as a bias=False)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected a Parameter or None, "
                            f"got {type(param).__name__}")
        self._registries()
        self._forget(name)
        self._parameters[name] = param
        capture.state_changed()

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register state that is not trained (running statistics): it moves with ``to()``
        and, if ``persistent``, is saved in ``state_dict()``.

        >>> m = Module(); m.register_buffer("count", fusion.zeros(1))
        >>> list(m.state_dict())
        ['count']
        """
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer({name!r}): expected a Tensor or None, "
                            f"got {type(tensor).__name__}")
        self._registries()
        self._forget(name)
        self._buffers[name] = None if tensor is None else tensor.detach()
        capture.state_changed()
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module, got {type(module).__name__}")
        self._registries()
        self._forget(name)
        self._modules[name] = module

    # --- traversal -------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every submodule, depth first, each once, with dotted names."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{key}" if name else key, child)
                        for key, child in module._modules.items() if child is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry: str, recurse: bool) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        modules = self.named_modules() if recurse else [("", self)]
        for prefix, module in modules:
            for key, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{prefix}.{key}" if prefix else key), value

    def named_parameters(self, recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)``: a module's own parameters, then each submodule's,
        in the order they were assigned (as PyTorch lists them); a shared parameter once.

        >>> [name for name, _ in Sequential(Linear(2, 3), ReLU()).named_parameters()]
        ['0.weight', '0.bias']
        """
        return self._named_members("_parameters", recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse):
            yield param

    def named_buffers(self, recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse):
            yield buffer

    def num_parameters(self, trainable_only: bool = False) -> int:
        """The number of scalars in the parameters (each shared parameter counted once).

        >>> Linear(3, 2).num_parameters()
        8
        """
        return sum(p.numel() for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every submodule, then on this one (e.g. to initialise weights)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # --- modes and gradients ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (Dropout drops, BatchNorm uses batch statistics) for the whole tree."""
        self.training = bool(mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode for the whole tree: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (set it to None, which costs nothing)."""
        for param in self.parameters():
            param.grad = None

    # --- backends and dtypes ---------------------------------------------------------------
    def to(self, backend: str | Backend | None = None, dtype=None) -> Module:
        """Move parameters, gradients and buffers to ``backend`` and/or cast the float ones
        to ``dtype``, in place: a parameter keeps its identity, so an optimizer built before
        still holds it. Returns the module.

        >>> model = Linear(3, 2).to("numpy")
        """
        target = None if backend is None else get_backend(backend)
        dtype = None if dtype is None else to_dtype(dtype)
        if dtype is not None and not dtype.is_float:
            raise TypeError(f"module.to(dtype=...) needs a float dtype, not {dtype.name}")

        def convert(t: Tensor) -> Tensor:
            if dtype is not None and t.dtype.is_float:
                t = t.detach().cast(dtype)
            return t if target is None else t.to(target)

        for param in self.parameters():
            param.data = convert(param).data  # a new dtype or backend: rebound, not assigned
            if param.grad is not None:
                param.grad = convert(param.grad).detach()
        for module in self.modules():
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    module._buffers[name] = convert(buffer).detach()
        capture.state_changed()
        return self

    # --- state -----------------------------------------------------------------------------
    def _state_slots(self) -> dict[str, tuple[Module, str, str]]:
        """dotted name -> (owning module, attribute, "param" or "buffer") of what is saved."""
        slots: dict[str, tuple[Module, str, str]] = {}
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for key, value in module._parameters.items():
                if value is not None and id(value) not in seen:
                    seen.add(id(value))
                    slots[f"{prefix}.{key}" if prefix else key] = (module, key, "param")
            for key, value in module._buffers.items():
                if value is not None and key not in module._non_persistent:
                    slots[f"{prefix}.{key}" if prefix else key] = (module, key, "buffer")
        return slots

    def state_dict(self) -> dict[str, Tensor]:
        """Every parameter and persistent buffer by dotted name, as tensors cut from the graph.

        The tensors share data with the module, but optimizers replace a parameter's data
        rather than write into it, so a state dict keeps the values it was taken with.

        >>> sorted(Linear(2, 1).state_dict())
        ['bias', 'weight']
        """
        return {name: getattr(module, key).detach()
                for name, (module, key, _) in self._state_slots().items()}

    def load_state_dict(self, state: dict, strict: bool = True) -> LoadResult:
        """Load parameters and buffers by name from ``state`` (Tensors or numpy arrays).

        Everything is checked before anything is loaded, so a failure leaves the module as it
        was. A shape that differs is always an error; with ``strict`` (the default), so are
        missing and unexpected names. Values are copied, converted to the dtype and backend of
        what they replace. Returns the missing and unexpected names.

        >>> model = Linear(2, 1)
        >>> model.load_state_dict(Linear(2, 1).state_dict())
        LoadResult(missing_keys=[], unexpected_keys=[])
        """
        if not hasattr(state, "items"):
            raise TypeError(f"load_state_dict expects a mapping of names to tensors, "
                            f"got {type(state).__name__}")
        slots = self._state_slots()
        missing = [name for name in slots if name not in state]
        unexpected = [name for name in state if name not in slots]
        mismatched, problems, ready = [], [], {}
        for name, (module, key, _) in slots.items():
            if name not in state:
                continue
            current = getattr(module, key)
            value = state[name]
            if isinstance(value, Tensor):
                shape = value.shape
            elif isinstance(value, np.ndarray | np.generic | list | tuple | int | float):
                value = np.asarray(value)
                shape = value.shape
            else:
                problems.append(f"{name!r} is a {type(value).__name__}, not a tensor")
                continue
            if tuple(shape) != current.shape:
                mismatched.append(name)
                problems.append(f"{name!r} has shape {tuple(shape)}, the module expects "
                                f"{current.shape}")
                continue
            ready[name] = value
        if strict:
            if missing:
                problems.insert(0, f"missing keys: {_names(missing)}")
            if unexpected:
                problems.insert(0, f"unexpected keys: {_names(unexpected)}")
        if problems:
            raise StateDictError(f"cannot load state dict into {type(self).__name__}: "
                                 + "; ".join(problems), missing, unexpected, mismatched)
        for name, value in ready.items():
            module, key, kind = slots[name]
            current = getattr(module, key)
            # a copy in the module's dtype and backend: the module never shares storage with
            # what it was loaded from, so a later write to that array cannot reach it
            tensor = Tensor(value, dtype=current.dtype, backend=current.backend)
            if kind == "param":
                current.assign(tensor)
            else:
                module._buffers[key] = tensor
                capture.state_changed()
        return LoadResult(missing, unexpected)

    # --- display ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The constructor arguments shown inside this module's parentheses."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        children = [f"({name}): {_indent(repr(child))}"
                    for name, child in self._modules.items()]
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


class Sequential(Module):
    """Modules called one after the other, the output of each the input of the next.

    Built from modules (named "0", "1", ...) or from one dict of names to modules.

    >>> model = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
    >>> model(fusion.randn(5, 4)).shape
    (5, 2)
    """

    def __init__(self, *modules: Module | dict[str, Module]):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for name, module in items:
            if not isinstance(module, Module):
                raise TypeError(f"Sequential takes Modules, got {type(module).__name__} "
                                f"at {name!r}")
            self.add_module(name, module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module:
        modules = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(dict(modules[index]))
        if not -len(modules) <= index < len(modules):
            raise IndexError(f"index {index} is out of range for a Sequential of "
                             f"{len(modules)} modules")
        return modules[index][1]

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self
