"""``fusion.jit``: capture a whole step once, replay it without the Python frontend.

A training or inference step on a small model spends most of its time in Python: building
tensors, dispatching ops, walking the graph backward. ``fusion.jit`` records the backend
calls a step makes (the primitives on numpy, the kernels on numba) and, on later calls with
inputs of the same kind, replays them on the new inputs and the same parameter and optimizer
buffers, into memory allocated once::

    @fusion.jit
    def step(x, y):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    for x, y in loader:
        loss = step(x, y)          # the same values as without @fusion.jit

**When it captures.** A call is replayed when its tensor arguments have the shapes, dtypes
and backend of an earlier call, its other arguments are equal, grad mode is the same and
every module the step ran is in the same train/eval mode. The first calls of each such kind
run the function normally while recording; once two consecutive recordings agree (the first
step of an optimizer differs from the next, as its state is created), later calls replay.
A different kind of call (a last, smaller batch; evaluation mode) is captured on its own; at
most ``max_captures`` are kept, after which new kinds run normally, with a warning.

**What a replay recomputes.** Numbers the frontend computes on the host are recomputed on
each replay, in the order the plain step would: an optimizer's learning rate (so schedulers
work), its bias corrections and step count, and the random numbers of dropout (a new mask
each call, the same sequence as without jit). Host checks (labels within range, indices
within bounds) run again on each call's values and raise the same errors.

**On a fusing backend** (numba), a capture schedules every kernel fused, however small
(plain steps fuse only large work, where a compiled loop beats the Python around it), and a
replay launches each compiled loop with its arguments prepared once, writing parameters and
optimizer state in place where the loop reads each element just before writing it.
:attr:`Jitted.calls` tells what one replay runs.

**State.** Tensors a step reads without receiving them (parameters, batch-norm statistics,
optimizer state, a tensor from the enclosing scope) are read from their storage at each
replay, so values written into them between calls (``assign``, ``load_state_dict``,
``nn.init``) are seen. Replacing them (a new ``Parameter`` on a module, ``module.to()``,
``optimizer.load_state_dict``, rebinding a tensor of the enclosing scope or module globals,
a state dict taken and kept, which makes an optimizer's write go to new storage) makes the
next call capture again; a replay never runs on stale state. Tensors a replay leaves in a
parameter's ``.grad`` are the replay's own memory, overwritten by the next replay.

**Limits, as with any tracing compiler.** Python code inside the function runs only while
capturing: prints, appends to a list, counters and any other side effect happen on those
calls alone. Numbers the function computes in Python from something that changes (other than
the optimizer values above) are baked into the capture; pass them as tensors. A step that
reads tensor values on the host (``.item()``, ``.numpy()``, ``if tensor > 0:``) cannot be
replayed: it runs normally, with a warning saying so, as does a step whose recordings keep
differing (gradient clipping by norm computes on the backend and is replayed). Returned
tensors are copies with no graph (``requires_grad`` is False). The backend must declare the
capability ``"assign"`` and use numpy arrays (numpy and numba do); on any other backend the
function runs normally, with a warning once.
"""

from __future__ import annotations

import functools
import threading
import types
import warnings
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .core import capture
from .core.backend import get_backend
from .core.buffer import Buffer
from .core.grad_mode import _grad_enabled
from .core.ops import REQUIRED_METHODS, MovementOp
from .core.tensor import Tensor, _held_alone, _wrap

#: Kinds of call (signatures) kept per function.
MAX_CAPTURES = 8
#: Recordings of one kind that may disagree before the function runs normally for it.
MAX_ATTEMPTS = 4
_RECORDED = tuple(REQUIRED_METHODS) + ("contract", "fuse", "assign")
_MOVEMENT = frozenset(op.value for op in MovementOp)
_lock = threading.Lock()


class JitWarning(UserWarning):
    """A jitted function runs without capture (and why)."""


def jit(fn: Callable | None = None, *, max_captures: int = MAX_CAPTURES):
    """Capture ``fn`` (a step over tensors) on its first calls and replay it afterwards
    (see the module docstring for what is captured, what is recomputed, and the limits).

    >>> @fusion.jit
    ... def step(x):
    ...     return (x * 2).exp().sum()
    >>> step(fusion.ones(3)).item() == step(fusion.ones(3)).item()
    True
    """
    if fn is None:
        return lambda f: Jitted(f, max_captures)
    return Jitted(fn, max_captures)


class Jitted:
    """A function wrapped by :func:`jit`. ``replays`` and ``captures`` count its calls;
    :attr:`calls` tells what its last replay ran."""

    def __init__(self, fn: Callable, max_captures: int = MAX_CAPTURES):
        if not callable(fn):
            raise TypeError(f"fusion.jit wraps a function, not {type(fn).__name__}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.max_captures = int(max_captures)
        self.replays = 0
        self.captures = 0
        self._kinds: dict = {}
        self._warned: set[str] = set()
        self._last: _Replay | None = None

    @property
    def calls(self) -> Counter[str]:
        """The backend calls one replay of the last replayed kind of call makes, by name:
        ``fuse`` (fused kernels), ``contract`` (matmuls), ``assign`` (copies into state) and
        the primitives run one by one. Empty before the first replay."""
        return Counter(self._last.calls) if self._last is not None else Counter()

    def __get__(self, obj, owner=None):
        return self if obj is None else types.MethodType(self, obj)

    def __repr__(self) -> str:
        return f"fusion.jit({getattr(self.fn, '__qualname__', self.fn)!r})"

    # --- calls ---------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if capture.recorder is not None:  # inside another capture: part of that step
            return self.fn(*args, **kwargs)
        tensors: list[Tensor] = []
        try:
            key = (_signature((args, kwargs), tensors), _grad_enabled.get())
        except TypeError as exc:
            self._warn("arguments", f"{exc}; it runs without capture")
            return self.fn(*args, **kwargs)
        backend = tensors[0].data.backend if tensors else get_backend()
        if any(t.data.backend is not backend for t in tensors):
            return self.fn(*args, **kwargs)  # the function itself says what is wrong
        why = _unsupported(backend)
        if why:
            self._warn(f"backend {backend.name}", f"backend {backend.name!r} {why}; it runs "
                       "without capture")
            return self.fn(*args, **kwargs)
        kind = self._kind(key)
        if kind is None:
            return self.fn(*args, **kwargs)
        if kind.plain:
            return self.fn(*args, **kwargs)
        replay = kind.replay
        if replay is not None:
            if replay.valid():
                self.replays += 1
                self._last = replay
                return _rebuild(replay.skeleton, replay.run(tensors))
            kind.replay = kind.previous = None  # stale: capture again
            kind.attempts = 0
        return self._capture(kind, backend, args, kwargs, tensors)

    def _kind(self, key) -> _Kind | None:
        kinds = self._kinds.setdefault(key, [])
        for kind in kinds:
            if kind.modes_match():
                return kind
        if sum(len(k) for k in self._kinds.values()) >= self.max_captures:
            self._warn("captures", f"more than {self.max_captures} kinds of call (shapes, "
                       "dtypes, modes); new kinds run without capture (fusion.jit(..., "
                       "max_captures=n) keeps more)")
            return None
        kind = _Kind()
        kinds.append(kind)
        return kind

    def _capture(self, kind: _Kind, backend, args, kwargs, tensors: list[Tensor]):
        if kind.previous is not None and kind.previous.version != capture.state_version():
            kind.attempts = 0  # state replaced from outside: not the step's own doing
        for t in tensors:
            t.data.realize()
        recorder = _Recorder(backend, tensors)
        with _lock:
            recorder.install()
            try:
                result = self.fn(*args, **kwargs)
                recorder.finish(result)
            finally:
                recorder.remove()
        self.captures += 1
        returned = recorder.returns  # copies: the arrays of the capture may be reused
        trace = recorder.trace(self.fn)
        if recorder.problem is not None:
            kind.plain = True
            self._warn(recorder.problem, f"{recorder.problem}; it runs without capture")
        elif (kind.previous is not None and kind.previous.form == trace.form
              and not trace.version_changed):
            kind.modes = trace.modes
            kind.replay = _Replay(trace, backend, _rebuild(result, [_HOLE] * len(returned)))
            kind.previous = None
        else:
            kind.attempts += 1
            kind.modes = trace.modes
            kind.previous = trace
            if kind.attempts > MAX_ATTEMPTS:
                kind.plain = True
                self._warn("differs", "its recorded work differs from call to call (a "
                           "number computed in Python that changes, state replaced inside "
                           "the step, gradients accumulated across calls); it runs without "
                           "capture")
        del recorder, trace
        return _rebuild(result, returned)

    def _warn(self, topic: str, message: str) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            name = getattr(self.fn, "__qualname__", repr(self.fn))
            warnings.warn(f"fusion.jit: {name}: {message}", JitWarning, stacklevel=3)


@dataclass
class _Kind:
    """The captures of one kind of call."""

    modes: tuple = ()
    previous: _Trace | None = None
    replay: _Replay | None = None
    attempts: int = 0
    plain: bool = False

    def modes_match(self) -> bool:
        return all(ref() is not None and ref().training == mode for ref, mode in self.modes)


_support: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _unsupported(backend) -> str | None:
    """Why ``backend`` cannot be captured, or None (asked once per backend)."""
    try:
        return _support[backend]
    except (KeyError, TypeError):
        pass
    why = None
    if "assign" not in backend.capabilities:
        why = "lacks the capability 'assign'"
    elif not isinstance(backend.full((1,), 0, _float32()), np.ndarray):
        why = "does not use numpy arrays"
    try:
        _support[backend] = why
    except TypeError:  # a backend that cannot be weakly referenced is asked every time
        pass
    return why


def _started_backends() -> list:
    from .core.backend import registry

    return [entry.instance for entry in list(registry.entries.values())
            if entry.instance is not None]


def _float32():
    from .core.dtypes import float32

    return float32


def _signature(value, tensors: list[Tensor]):
    """A hashable description of the arguments: tensors by shape, dtype, backend and
    requires_grad (collected into ``tensors``), which of them are the same tensor, anything
    else by value."""
    if isinstance(value, Tensor):
        for i, t in enumerate(tensors):
            if t.data is value.data:
                return ("same", i)
        tensors.append(value)
        return ("tensor", value.shape, value.dtype.name, value.data.backend.name,
                value.requires_grad)
    if isinstance(value, tuple | list):
        return (type(value).__name__, *[_signature(v, tensors) for v in value])
    if isinstance(value, dict):
        return ("dict", *[(k, _signature(v, tensors)) for k, v in value.items()])
    if isinstance(value, np.ndarray):
        raise TypeError("a numpy array argument (pass tensors)")
    hash(value)  # a TypeError for what cannot be compared from call to call
    return ("value", type(value).__name__, value)


_HOLE = object()  # where a tensor goes in the skeleton of a replay's result


def _rebuild(result, values: list):
    """``result`` with each tensor (or hole) replaced by the next of ``values`` (same order
    as :func:`_tensors_of`)."""
    position = iter(values)

    def rebuild(value):
        if isinstance(value, Tensor) or value is _HOLE:
            return next(position)
        if isinstance(value, tuple | list):
            rebuilt = [rebuild(v) for v in value]
            return type(value)(rebuilt) if not hasattr(value, "_fields") else type(value)(
                *rebuilt)
        if isinstance(value, dict):
            return {k: rebuild(v) for k, v in value.items()}
        return value

    return rebuild(result)


def _tensors_of(value, out: list[Tensor]) -> list[Tensor]:
    if isinstance(value, Tensor):
        out.append(value)
    elif isinstance(value, tuple | list):
        for v in value:
            _tensors_of(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            _tensors_of(v, out)
    return out


# --- recording ---------------------------------------------------------------------------------
_INPUT, _EXTERNAL, _PRODUCED, _HOST = "input", "external", "produced", "host"


@dataclass
class _Step:
    """One backend call: ``name`` on ``args`` (slot references as ``_Ref``), result in slot
    ``out`` (None for assign and checks)."""

    name: str
    args: tuple
    kwargs: dict
    out: int | None
    view: bool = False
    check: tuple | None = None  # (function, args) of a host check


@dataclass(frozen=True)
class _Ref:
    slot: int


@dataclass
class _Trace:
    steps: list[_Step]
    arrays: list  # slot -> the array of the capture
    kinds: list[str]
    varies: list[bool]
    inputs: list[int]  # the slot of each tensor argument
    host: list  # (compute, args, guard, guard value, [(position, slot or fuse target)])
    host_targets: dict  # slot -> (action, position) for host-filled slots
    returns: list[int]
    return_types: list  # (shape, dtype) of each returned tensor
    grads: list  # (weakref to tensor, slot)
    assigned: list  # (weakref to tensor, id of its buffer, its array)
    modes: tuple
    closure: list  # (getter, object)
    version: int
    version_changed: bool = False
    form: tuple = field(default=())


class _Recorder:
    """Records the backend calls of one run of a step (installed on the backend object)."""

    def __init__(self, backend, tensors: list[Tensor]):
        self.backend = backend
        self.thread = threading.get_ident()
        self.depth = 0
        self.in_check = False
        self.steps: list[_Step] = []
        self.slots: dict[int, int] = {}
        self.arrays: list = []
        self.kinds: list[str] = []
        self.varies: list[bool] = []
        self.host: list = []
        self.host_ids: dict[int, tuple[int, int]] = {}
        self.host_targets: dict[int, tuple[int, int]] = {}
        self.modules: dict[int, tuple] = {}
        self.grads: dict[int, Tensor] = {}
        self.assigned: dict[int, Tensor] = {}
        self.problem: str | None = None
        self.returns: list[Tensor] = []
        self.return_slots: list[int] = []
        self.inputs = [self.slot(t.data._data, _INPUT) for t in tensors]
        if len(set(self.inputs)) != len(self.inputs):
            self.problem = "two of its arguments share memory"
        self.version_before = capture.state_version()
        self.others: list = []  # the other backends, watched while capturing

    # --- installing ----------------------------------------------------------------------
    def install(self) -> None:
        # a backend that fuses from some size on fuses everything in a capture: a replay
        # launches each kernel for the cost of a call, however small its work
        self.fuse_min = getattr(self.backend, "fuse_min", None)
        if self.fuse_min:
            self.backend.fuse_min = 0
        for name in _RECORDED:
            method = getattr(self.backend, name, None)
            if method is not None:
                setattr(self.backend, name, self._wrap(name, method))
        # work on any other backend would not be replayed: such a step runs plainly
        self.others = [b for b in _started_backends() if b is not self.backend]
        for other in self.others:
            for name in _RECORDED:
                method = getattr(other, name, None)
                if method is not None:
                    setattr(other, name, self._foreign(other, method))
        capture.recorder = self

    def remove(self) -> None:
        capture.recorder = None
        if self.fuse_min:
            self.backend.fuse_min = self.fuse_min
        for backend in (self.backend, *self.others):
            for name in _RECORDED:
                backend.__dict__.pop(name, None)
        self.backend.__dict__.pop("to_numpy", None)

    def _foreign(self, backend, method):
        def called(*args, **kwargs):
            if self.problem is None and threading.get_ident() == self.thread:
                self.problem = (f"it computes on backend {backend.name!r}, not on "
                                f"{self.backend.name!r} (the backend of its tensor arguments, "
                                "or the default backend when it has none)")
            return method(*args, **kwargs)

        return called

    def _wrap(self, name: str, method):
        def recorded(*args, **kwargs):
            if self.depth or threading.get_ident() != self.thread:
                return method(*args, **kwargs)
            self.depth += 1
            try:
                result = method(*args, **kwargs)
            finally:
                self.depth -= 1
            self.record(name, method, args, kwargs, result)
            return result

        return recorded

    # --- slots ---------------------------------------------------------------------------
    def slot(self, array, kind: str, varies: bool = True) -> int:
        found = self.slots.get(id(array))
        if found is not None:
            return found
        self.slots[id(array)] = len(self.arrays)
        self.arrays.append(array)
        self.kinds.append(kind)
        self.varies.append(varies)
        return len(self.arrays) - 1

    def ref(self, value):
        """``value`` as recorded: an array as a reference to its slot (an array seen for
        the first time is external state, or a constant if it is read-only)."""
        if isinstance(value, np.ndarray | np.generic):
            found = self.slots.get(id(value))
            if found is None:
                constant = isinstance(value, np.generic) or not value.flags.writeable
                found = self.slot(value, _EXTERNAL, varies=not constant)
            return _Ref(found)
        if isinstance(value, list):
            return [self.ref(v) for v in value]
        return value

    def record(self, name: str, method, args, kwargs, result) -> None:
        if name == "to_numpy":
            ref = self.ref(args[0])
            if not self.in_check and self.varies[ref.slot] and self.problem is None:
                self.problem = ("it reads tensor values on the host (.item(), .numpy(), "
                                "Python control flow on a tensor)")
            return
        if name == "from_numpy":
            if id(args[0]) in self.host_ids:  # drawn by a host value: new on each replay
                out = self.slot(result, _HOST)
                self.host_targets[out] = self.host_ids[id(args[0])]
            else:  # values from Python: a constant of the capture
                out = self.slot(result, _PRODUCED, varies=False)
            self.steps.append(_Step(name, (), {}, out))
            return
        refs = tuple(self.ref(a) for a in args)
        if name == "assign":
            self.steps.append(_Step(name, refs, {}, None))
            if self.kinds[refs[0].slot] == _INPUT and self.problem is None:
                self.problem = "it assigns to a tensor it receives as an argument"
            return
        varies = any(self._varies(r) for r in refs)
        if name == "full" and type(args[1]) is capture.HostScalar:
            out = self.slot(result, _HOST)
            self.host_targets[out] = self.host_ids[id(args[1])]
            self.steps.append(_Step(name, refs, {}, out))
            return
        if name == "fuse" and any(type(c) is capture.HostScalar for c in args[3]):
            varies = True
        if id(result) in self.slots:  # the same array back (nothing new to replay)
            return
        view = (name in _MOVEMENT and isinstance(result, np.ndarray)
                and isinstance(args[0], np.ndarray) and np.may_share_memory(result, args[0]))
        out = self.slot(result, _PRODUCED, varies)
        self.steps.append(_Step(name, refs, dict(kwargs), out, view))

    def _varies(self, ref) -> bool:
        if isinstance(ref, _Ref):
            return self.varies[ref.slot]
        if isinstance(ref, list):
            return any(self._varies(r) for r in ref)
        return False

    # --- what the frontend tells (fusion.core.capture) ---------------------------------------
    def host_values(self, compute, args, guard):
        values = compute(*args)
        index = len(self.host)
        wrapped = {}
        items = values.items() if isinstance(values, dict) else enumerate(values)
        for position, value in items:
            if isinstance(value, float | int) and not isinstance(value, bool | np.generic):
                value = capture.HostScalar(value)
            elif isinstance(value, np.generic):
                value = capture.HostScalar(value.item())
            self.host_ids[id(value)] = (index, position)
            wrapped[position] = value
        self.host.append((compute, args, guard, None if guard is None else guard(*args),
                          wrapped))
        if isinstance(values, dict):
            return wrapped
        return tuple(wrapped[i] for i in range(len(values)))

    def host_check(self, buffer: Buffer, check, args) -> None:
        data = buffer.data
        self.in_check = True
        try:
            values = buffer.numpy()
        finally:
            self.in_check = False
        ref = self.ref(data)
        self.steps.append(_Step("check", (ref,), {}, None, check=(check, args)))
        check(values, *args)

    def note_module(self, module) -> None:
        self.modules.setdefault(id(module), (weakref.ref(module), module.training))

    def note_grads(self, tensors) -> None:
        for t in tensors:
            self.grads[id(t)] = t

    def note_assign(self, tensor) -> None:
        self.assigned[id(tensor)] = tensor

    # --- the end of a capture --------------------------------------------------------------
    def finish(self, result) -> None:
        returned = _tensors_of(result, [])
        for t in returned:
            t.data.realize()
        for t in returned:
            self.return_slots.append(self.ref(t.data._data).slot)
        capture.recorder = None
        self.returns = [_copy_tensor(t) for t in returned]

    def trace(self, fn) -> _Trace:
        grads = []
        for t in self.grads.values():
            if t.grad is not None and t.grad.data._data is not None:
                grads.append((weakref.ref(t), self.ref(t.grad.data._data).slot))
        assigned = [(weakref.ref(t), id(t.data), t.data._data) for t in self.assigned.values()]
        trace = _Trace(self.steps, self.arrays, self.kinds, self.varies, self.inputs,
                       self.host, self.host_targets, self.return_slots,
                       [(t.shape, t.dtype) for t in self.returns], grads, assigned,
                       tuple(self.modules.values()), _closure(fn), capture.state_version())
        # state replaced while capturing (given new storage): the trace read what was there
        # before, so only a later recording can be replayed
        trace.version_changed = capture.state_version() != self.version_before
        trace.form = _form(trace)
        return trace


def _copy_tensor(t: Tensor) -> Tensor:
    data = t.data._data
    return _wrap(Buffer(t.data.backend, np.array(data, copy=True), t.shape, t.dtype))


def _closure(fn) -> list:
    """The tensors, modules and optimizers ``fn`` reaches by name (its closure cells and the
    globals its code names), as (where, object) pairs a replay checks are unchanged."""
    from .nn.module import Module
    from .optim.optimizer import Optimizer

    kinds = (Tensor, Module, Optimizer)
    fn = getattr(fn, "__func__", fn)
    found = []
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if isinstance(value, kinds):
            found.append((cell, None, value))
    code = getattr(fn, "__code__", None)
    names = getattr(fn, "__globals__", None)
    if code is not None and names is not None:
        for name in code.co_names:
            value = names.get(name)
            if isinstance(value, kinds):
                found.append((names, name, value))
    return found


def _form(trace: _Trace) -> tuple:
    """What two recordings of one kind of call must share to be the same step."""

    def arg(value):
        if isinstance(value, _Ref):
            slot = value.slot
            if trace.kinds[slot] == _EXTERNAL:
                return ("ext", id(trace.arrays[slot]))
            return ("slot", slot)
        if isinstance(value, list):
            return tuple(arg(v) for v in value)
        if type(value) is capture.HostScalar:
            return ("host",) + _host_position(trace, value)
        if isinstance(value, np.ndarray):
            return ("array", value.shape, value.dtype.str, value.tobytes())
        if isinstance(value, float | int):
            return (type(value).__name__, repr(value))
        return value

    steps = []
    for step in trace.steps:
        extra = (step.check[0], step.check[1]) if step.check else ()
        if step.name == "from_numpy" and step.out in trace.host_targets:
            extra = ("host", trace.host_targets[step.out])
        elif step.name == "from_numpy":
            extra = arg(trace.arrays[step.out])
        steps.append((step.name, tuple(arg(a) for a in step.args), step.out, step.view, extra))
    host = tuple((compute, tuple(_value_or_id(a) for a in args), guard_value)
                 for compute, args, _, guard_value, _ in trace.host)
    return (tuple(steps), host, tuple(trace.returns), tuple(s for _, s in trace.grads),
            tuple(id(a) for _, _, a in trace.assigned), trace.modes)


def _value_or_id(value):
    """Hashable values as they are; anything else (an optimizer's state dict) by identity."""
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


def _host_position(trace: _Trace, value) -> tuple:
    for index, (_, _, _, _, values) in enumerate(trace.host):
        for position, v in values.items():
            if v is value:
                return (index, position)
    return ("?",)


# --- replaying ---------------------------------------------------------------------------------
class _Replay:
    """A trace made ready to run: every array allocated once, each call bound to them."""

    def __init__(self, trace: _Trace, backend, skeleton):
        self.backend = backend
        self.skeleton = skeleton
        self.version = trace.version
        self.closure = trace.closure
        self.modes = trace.modes
        self.assigned = [(ref, buffer_id, array) for ref, buffer_id, array in trace.assigned]
        self.guards = [(guard, args, value) for _, args, guard, value, _ in trace.host
                       if guard is not None]
        steps = _elide_copies(trace, getattr(backend, "writes_into", frozenset()))
        arrays = self._allocate(trace, steps)
        self.arrays = arrays
        self.inputs = [arrays[s] for s in trace.inputs]
        self.host = self._host_fills(trace, arrays)
        self.ops = []
        self.calls: Counter[str] = Counter()
        for step in steps:
            op = self._bind(step, arrays, trace)
            if op is not None:
                self.ops.append(op)
                self.calls[step.name] += 1
        self.returns = [(arrays[s], shape, dtype)
                        for s, (shape, dtype) in zip(trace.returns, trace.return_types,
                                                     strict=True)]
        self.grads = []
        for ref, slot in trace.grads:
            t = ref()
            if t is not None:
                grad = _wrap(Buffer(backend, arrays[slot], t.grad.shape, t.grad.dtype))
                self.grads.append((ref, grad))

    # --- building ----------------------------------------------------------------------------
    def _allocate(self, trace: _Trace, steps: list[_Step]) -> list:
        """The replay's array for every slot: external state and constants as they are,
        inputs and results in memory of the replay's own, views recomputed on those."""
        arrays = list(trace.arrays)
        for slot, kind in enumerate(trace.kinds):
            if kind in (_INPUT, _HOST, _PRODUCED):
                arrays[slot] = None
        for slot in trace.inputs:
            arrays[slot] = np.array(trace.arrays[slot], copy=True)
        for step in steps:
            if step.out is None or arrays[step.out] is not None:
                continue
            captured = trace.arrays[step.out]
            args = _resolve(step.args, arrays)
            if step.view:
                view = getattr(self.backend, step.name)(*args, **step.kwargs)
                if np.may_share_memory(view, args[0]):
                    arrays[step.out] = view
                    continue
                step.view = False  # a copy here (another layout): computed on every replay
                arrays[step.out] = _own(view)
            elif step.name == "from_numpy" and step.out not in trace.host_targets:
                arrays[step.out] = captured  # a constant made from Python values
            elif not trace.varies[step.out] and step.out not in trace.host_targets:
                arrays[step.out] = _own(getattr(self.backend, step.name)(*args, **step.kwargs))
            else:
                # the layout of the capture, so that the views taken of it stay views
                arrays[step.out] = np.empty_like(captured) if isinstance(
                    captured, np.ndarray) else np.empty((), np.asarray(captured).dtype)
        return arrays

    def _host_fills(self, trace: _Trace, arrays) -> list:
        """For each host action: its compute, args and, per value, where it goes (arrays to
        fill here; the constants of fused kernels are placed as they are bound)."""
        fills = [(compute, args, {}) for compute, args, _, _, _ in trace.host]
        for slot, (index, position) in trace.host_targets.items():
            fills[index][2].setdefault(position, []).append(("fill", arrays[slot]))
        return fills

    def _place_constants(self, trace: _Trace, constants: list, at: dict | None) -> None:
        """Where each host value among a fused kernel's ``constants`` goes on a replay: into
        the prepared arguments of its launch (``at``, see ``fuse_launcher``), else into the
        list itself, which the backend's ``fuse`` reads."""
        for i, c in enumerate(constants):
            if type(c) is capture.HostScalar:
                index, position = _host_position(trace, c)
                place = ("arg", *at[i]) if at is not None else ("const", constants, i)
                self.host[index][2].setdefault(position, []).append(place)

    def _bind(self, step: _Step, arrays: list, trace: _Trace):
        """A function of no arguments that runs ``step`` on the replay's arrays, or None for
        a step that needs no work (a view, a constant, a host value filled beforehand)."""
        name = step.name
        backend = self.backend
        if name == "check":
            check, args = step.check
            data = arrays[step.args[0].slot]
            to_numpy = backend.to_numpy
            return lambda: check(np.asarray(to_numpy(data)), *args)
        if name == "assign":
            dst, src = _resolve(step.args, arrays)
            return functools.partial(np.copyto, dst, src)
        out = arrays[step.out]
        if step.view or name in ("full", "from_numpy") or step.out is None:
            return None
        if out is None or not trace.varies[step.out]:
            return None  # computed once, when the arrays were allocated
        method = getattr(backend, name)
        args = _resolve(step.args, arrays)
        if name == "fuse":
            args[3] = step.args[3]  # the constants list, whose host values are updated
            launcher = getattr(backend, "fuse_launcher", None)
            run = launcher(*args, out=out) if launcher is not None else None
            self._place_constants(trace, args[3], run.constants_at if run is not None else None)
            if run is not None:
                return run
        if name in getattr(backend, "writes_into", ()):
            return functools.partial(method, *args, **step.kwargs, out=out)
        return functools.partial(_into, out, method, args, step.kwargs)

    # --- running -----------------------------------------------------------------------------
    def valid(self) -> bool:
        """Whether replaying now is what the plain step would do (nothing it reads was
        replaced, every module in the same mode, every host guard unchanged)."""
        if capture.state_version() != self.version:
            return False
        for where, name, value in self.closure:
            current = where.cell_contents if name is None else where.get(name)
            if current is not value:
                return False
        for ref, mode in self.modes:
            module = ref()
            if module is None or module.training != mode:
                return False
        for ref, buffer_id, array in self.assigned:
            t = ref()
            # the same buffer on the same array as when captured (writable then): held by
            # the tensor alone, it still takes the replay's writes in place
            if t is None or id(t.data) != buffer_id or t.data._data is not array \
                    or not _held_alone(t):
                return False
        for guard, args, value in self.guards:
            if guard(*args) != value:
                return False
        return True

    def run(self, tensors: list[Tensor]):
        for static, t in zip(self.inputs, tensors, strict=True):
            np.copyto(static, t.data.data)
        for compute, args, targets in self.host:
            values = compute(*args)
            for position, places in targets.items():
                value = values[position]
                for place in places:
                    if place[0] == "fill":
                        np.copyto(place[1], value)
                    elif place[0] == "arg":
                        place[1][place[2]] = place[3](value)
                    else:
                        place[1][place[2]] = capture.HostScalar(value)
        for op in self.ops:
            op()
        for ref, grad in self.grads:
            t = ref()
            if t is not None:
                t.grad = grad
        backend = self.backend
        return [_wrap(Buffer(backend, np.array(array, copy=True), shape, dtype))
                for array, shape, dtype in self.returns]


def _own(value):
    """A result as an array (numpy gives 0-d results as scalars)."""
    return value if isinstance(value, np.ndarray) else np.array(value)


def _into(out, method, args, kwargs) -> None:
    np.copyto(out, method(*args, **kwargs))


def _resolve(args, arrays):
    resolved = []
    for a in args:
        if isinstance(a, _Ref):
            resolved.append(arrays[a.slot])
        elif isinstance(a, list):
            resolved.append(_resolve(a, arrays))
        else:
            resolved.append(a)
    return resolved


def _elide_copies(trace: _Trace, writes_into: frozenset) -> list[_Step]:
    """The steps, where a result is computed only to be copied into state (an optimizer's
    new parameter) computed straight into the state's storage instead.

    A copy ``assign(P, T)`` goes when ``T`` is computed by a call that takes ``out=``, no
    call between them reads or writes ``P`` (or a view of it), ``P`` is written nowhere
    else, nothing views ``T``, and ``T`` is not an input; every later read of ``T`` then
    reads ``P``. A fused kernel that reads ``P`` itself writes into it only where it reads
    each element of ``P`` just before writing it (see :func:`_in_place`); otherwise the copy
    stays (numpy's own calls handle a result overlapping their operands).
    """
    steps = list(trace.steps)
    producer = {s.out: i for i, s in enumerate(steps) if s.out is not None}
    base = {}  # slot -> the slot whose memory a view reads
    for s in steps:
        if s.view and isinstance(s.args[0], _Ref):
            base[s.out] = base.get(s.args[0].slot, s.args[0].slot)
    writes: dict[int, int] = {}
    for s in steps:
        if s.name == "assign":
            writes[s.args[0].slot] = writes.get(s.args[0].slot, 0) + 1
    viewed = {s.args[0].slot for s in steps if s.view and isinstance(s.args[0], _Ref)}
    redirect: dict[int, int] = {}
    drop: set[int] = set()
    for c, step in enumerate(steps):
        if step.name != "assign":
            continue
        dst, src = step.args[0].slot, step.args[1].slot
        j = producer.get(src)
        if j is None or writes.get(dst) != 1 or src in viewed or src in trace.host_targets:
            continue
        if steps[j].name not in writes_into or trace.kinds[src] != _PRODUCED:
            continue
        if steps[j].name == "fuse" and not _in_place(steps[j], dst, base):
            continue
        touched = any(_reads(steps[k], dst, base) for k in range(j + 1, c))
        if touched:
            continue
        steps[j] = _Step(steps[j].name, steps[j].args, steps[j].kwargs, dst, False)
        redirect[src] = dst
        drop.add(c)
    if not redirect:
        return steps
    out = []
    for i, s in enumerate(steps):
        if i in drop:
            continue
        out.append(_Step(s.name, _redirect(s.args, redirect), s.kwargs, s.out, s.view, s.check))
    trace.returns = [redirect.get(r, r) for r in trace.returns]
    trace.grads = [(ref, redirect.get(slot, slot)) for ref, slot in trace.grads]
    return out


def _in_place(step: _Step, slot: int, base: dict) -> bool:
    """Whether fused kernel ``step`` may write its result into ``slot``: it reads that
    memory only element by element in the output's order (a contiguous view from the first
    element, no reduction), so that each element is read before it is written."""
    kernel, inputs, views = step.args[0], step.args[1], step.args[2]
    if not _reads(step, slot, base):
        return True
    if kernel.reduce_axes:
        return False
    for ref, kind, view in zip(inputs, kernel.views, views, strict=True):
        if isinstance(ref, _Ref) and base.get(ref.slot) == slot:
            return False  # through a view: another order, or a part
        if isinstance(ref, _Ref) and ref.slot == slot and (kind != "contiguous"
                                                           or view.offset != 0):
            return False
    return True


def _reads(step: _Step, slot: int, base: dict) -> bool:
    def touches(a) -> bool:
        if isinstance(a, _Ref):
            return a.slot == slot or base.get(a.slot) == slot
        if isinstance(a, list):
            return any(touches(x) for x in a)
        return False

    return any(touches(a) for a in step.args) or step.out == slot


def _redirect(args, redirect):
    out = []
    for a in args:
        if isinstance(a, _Ref) and a.slot in redirect:
            out.append(_Ref(redirect[a.slot]))
        elif isinstance(a, list):
            out.append(_redirect(a, redirect))
        else:
            out.append(a)
    return tuple(out) if isinstance(args, tuple) else out


__all__ = ["JitWarning", "Jitted", "jit"]
