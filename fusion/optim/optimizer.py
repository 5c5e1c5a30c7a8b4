"""Optimizer: the base of every update rule, with parameter groups and saved state.

Under ``no_grad`` an optimizer computes the new values of every parameter and of its state
with Tensor operations, realises them together (on a lazy backend, the graph of one step never
reaches into the next), then assigns each to the tensor it replaces (:meth:`Tensor.assign`):
into the tensor's own storage where nothing else holds it, so a parameter and its state keep
their memory from step to step (what :func:`fusion.jit` replays on), and otherwise as new
storage, so that any tensor that shared the old data (a state dict taken earlier) keeps its
values, on every backend.

The numbers an update uses (learning rate, momentum, bias corrections, the step count) are
computed on the host by :meth:`Optimizer._scalars`, through
:func:`fusion.core.capture.host_values`: a replay of a captured step computes them again, so
a scheduler's new learning rate or Adam's next step count takes effect there too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..core.capture import host_values, state_changed
from ..core.grad_mode import enable_grad, no_grad
from ..core.tensor import Tensor, persist, realize


class Optimizer:
    """Holds parameter groups and per-parameter state; subclasses write :meth:`_update`.

    ``params`` is an iterable of tensors, or of dicts (parameter groups) each with a
    ``"params"`` list and any hyper-parameters that differ from the defaults:

    >>> opt = fusion.optim.SGD([
    ...     {"params": model[0].parameters()},
    ...     {"params": model[2].parameters(), "lr": 0.01},
    ... ], lr=0.1, momentum=0.9)
    """

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}  # Tensor hashes by identity
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError("an optimizer takes an iterable of tensors (e.g. "
                            "model.parameters()), not one tensor")
        params = list(params)
        if not params:
            raise ValueError("the optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyper-parameters (defaults fill the rest)."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("a parameter group is a dict with a 'params' entry")
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"an optimizer can only optimize Tensors, got "
                                f"{type(p).__name__}")
            if p._ctx is not None:
                raise ValueError("an optimizer can only optimize leaf tensors (parameters), "
                                 "not results of operations")
            if not p.dtype.is_float:
                raise TypeError(f"cannot optimize a {p.dtype.name} tensor")
            if id(p) in seen:
                raise ValueError("a parameter appears twice among the optimizer's groups")
            seen.add(id(p))
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        self.param_groups.append(group)
        state_changed()

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate a group's hyper-parameters (overridden by optimizers with more)."""
        if not group["lr"] >= 0:
            raise ValueError(f"learning rate must be >= 0, got {group['lr']}")
        if not group.get("weight_decay", 0.0) >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {group['weight_decay']}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (None, the default and cheaper, or zeros)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = p.grad.detach() * 0

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """Update every parameter that has a gradient; return ``closure()`` if given (a
        function that recomputes the loss and calls backward).

        >>> loss = loss_fn(model(x), y)
        >>> opt.zero_grad(); loss.backward(); opt.step()
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        targets: list[Tensor] = []  # tensors to update in place, and their new values
        values: list[Tensor] = []
        fresh: list[Tensor] = []
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state.get(p)
                    if state is None:
                        state = self.state[p] = {}
                    before = dict(state)
                    scalars = host_values(self._scalars, group, state, guard=self._branches)
                    targets.append(p)
                    values.append(self._update(p, p.grad, state, group, scalars))
                    for key, value in state.items():
                        old = before.get(key)
                        if isinstance(old, Tensor) and value is not old:
                            targets.append(old)  # state keeps its tensor and its storage
                            values.append(value)
                            state[key] = old
                        elif isinstance(value, Tensor) and old is None:
                            fresh.append(value)  # state created by this step
            realize(*values, *fresh)
            for target, value in zip(targets, values, strict=True):
                target.assign(value)
        self._persist()
        return loss

    def _persist(self) -> None:
        """Keep parameters, gradients and state on their backend as computed values (see
        :func:`fusion.persist`): on a lazy or remote backend the next step then starts from
        them, so the graph does not grow step after step. Eager backends do nothing."""
        kept = []
        for p, state in self.state.items():
            kept += [p, p.grad, *(v for v in state.values() if isinstance(v, Tensor))]
        persist(*kept)

    def _scalars(self, group: dict[str, Any], state: dict[str, Any]) -> dict[str, float]:
        """The numbers one update of a parameter uses, computed on the host: the group's
        hyper-parameters, and whatever follows from the step count (which this advances,
        where the rule keeps one). Overridden by rules that derive more."""
        return {key: float(value) for key, value in group.items()
                if isinstance(value, float | int) and not isinstance(value, bool)}

    def _branches(self, group: dict[str, Any], state: dict[str, Any]) -> tuple:
        """What decides which tensor operations an update runs (not their values): the
        group's flags, which hyper-parameters are zero, which state exists yet. A captured
        step is captured again when it changes."""
        numbers = tuple(sorted((k, bool(v)) for k, v in group.items()
                               if isinstance(v, float | int) and k != "params"))
        flags = tuple(sorted((k, v) for k, v in group.items() if isinstance(v, str | tuple)))
        return numbers, flags, tuple(sorted(k for k in state if k != "step"))

    @staticmethod
    def _l2_gradient(p: Tensor, grad: Tensor, group: dict[str, Any],
                     scalars: dict[str, float]) -> Tensor:
        """The gradient to descend: negated with ``maximize``, plus the L2 penalty
        ``weight_decay * p`` (coupled weight decay)."""
        g = -grad if group["maximize"] else grad
        if group["weight_decay"]:
            g = g + p * scalars["weight_decay"]
        return g

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Any],
                group: dict[str, Any], scalars: dict[str, float]) -> Tensor:
        """The parameter's new value, from its gradient, its state (new values are put in
        ``state``; :meth:`step` writes them into the tensors they replace) and the numbers of
        :meth:`_scalars` (use those, not the group's, in tensor arithmetic: a replay of a
        captured step recomputes them). Runs under ``no_grad``."""
        raise NotImplementedError

    # --- saved state -----------------------------------------------------------------------
    def _ordered_params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: value}}, "param_groups": [{..., "params": [index]}]}``,
        parameters numbered in the order of their groups, as PyTorch does.

        >>> saved = opt.state_dict()
        >>> opt.load_state_dict(saved)
        """
        index = {id(p): i for i, p in enumerate(self._ordered_params())}
        groups = [{**{k: v for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        state = {index[id(p)]: {k: (v.detach() if isinstance(v, Tensor) else v)
                                for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` gave, into an optimizer over parameters of the same
        shapes in the same groups; tensors move to each parameter's backend and dtype."""
        try:
            groups, saved_state = state_dict["param_groups"], state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError("an optimizer state dict has 'state' and 'param_groups'") from None
        if len(groups) != len(self.param_groups):
            raise ValueError(f"the state dict has {len(groups)} parameter groups, the "
                             f"optimizer {len(self.param_groups)}")
        for i, (saved, own) in enumerate(zip(groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"parameter group {i} has {len(saved['params'])} parameters "
                                 f"in the state dict, {len(own['params'])} in the optimizer")
        saved_index = {s: o for saved, own in zip(groups, self.param_groups, strict=True)
                       for s, o in zip(saved["params"], own["params"], strict=True)}
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, values in saved_state.items():
            p = saved_index.get(int(key))
            if p is None:
                raise ValueError(f"the state dict has state for parameter {key}, which the "
                                 "optimizer does not hold")
            converted = {}
            for name, value in values.items():
                if isinstance(value, Tensor | np.ndarray):
                    value = value if isinstance(value, Tensor) else Tensor(value)
                    if value.shape != p.shape and value.ndim:
                        raise ValueError(f"state {name!r} of parameter {key} has shape "
                                         f"{value.shape}, the parameter {p.shape}")
                    value = value.detach().to(p.backend)
                    if value.dtype.is_float:
                        value = value.cast(p.dtype).detach()
                converted[name] = value
            new_state[p] = converted
        for saved, own in zip(groups, self.param_groups, strict=True):
            own.update({k: v for k, v in saved.items() if k != "params"})
        self.state = new_state
        state_changed()
