"""Drawings of the computation graph that produced a tensor (graphviz).

The conventions are those people know from drawing autograd graphs: one node per tensor,
labelled with the op that made it (by the name a user calls it: ``matmul``, ``transpose``,
``relu``, not the primitive's class), its shape and dtype; leaves that require grad (what an
optimizer updates) blue, other leaves grey, the drawn outputs green, and, on request, the
values an op saved for its backward pass orange. Node ids are ``t0``, ``t1``, ... in the
order the walk from the outputs meets them, so the same computation gives the same DOT text.
Constants the library makes inside composite ops (the ``2`` of ``x * 2``, a mean's divisor, a
one-hot target, a max subtracted for stability) are hidden unless ``show_constants=True``.

Large graphs read better by module: record which module computed what with
:func:`record_scopes`, then draw each module call as a frame around its ops, or as one box.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..core.buffer import Buffer
from ..core.tensor import Tensor

# Colours follow the conventions people know from drawing autograd graphs.
_LEAF_GRAD = "lightblue"  # leaves that require grad (what an optimizer updates)
_LEAF = "lightgrey"  # constants and inputs
_OUTPUT = "darkolivegreen1"  # the tensors drawn
_SAVED = "orange"  # what an op keeps for its backward pass
_OP = "white"
_MODULE = "#dbe9f6"  # a module call collapsed into one box
_FRAME = "#f6f6f6"


def _summary(t: Tensor) -> str:
    """A few values, enough to recognise a small tensor."""
    try:
        values = t.numpy()
    except RuntimeError:  # an intermediate tensor that backward() let go of
        return "freed by backward()"
    if values.size <= 4:
        return np.array2string(values.reshape(-1), precision=4, separator=", ")
    return f"mean {float(values.astype(np.float64).mean()):.4g}"


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


# The primitives' Functions by the names users call them (torch and numpy spellings).
_OP_NAMES = {
    "Contract": "matmul", "Expand": "expand", "Reshape": "reshape", "Shrink": "slice",
    "Pad": "pad", "Flip": "flip", "Neg": "neg", "Relu": "relu", "Exp": "exp", "Log": "log",
    "Sqrt": "sqrt", "Recip": "reciprocal", "Sin": "sin", "Cast": "cast", "Add": "add",
    "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Maximum": "maximum",
    "Equal": "eq", "Less": "lt", "Where": "where", "Sum": "sum", "Max": "max",
}


def op_name(t: Tensor) -> str | None:
    """The op that made ``t`` as a user knows it (``matmul``, ``transpose``), None for a leaf.

    >>> x = fusion.randn(2, 3, requires_grad=True)
    >>> op_name(x.T), op_name(x @ x.T), op_name(x.sum())
    ('transpose', 'matmul', 'sum')
    """
    if t._op is None:
        return None
    if t._op == "Permute":
        order = tuple(getattr(t._ctx, "order", ()) or ())
        swapped = (*range(len(order) - 2), len(order) - 1, len(order) - 2)
        return "transpose" if len(order) >= 2 and order == swapped else "permute"
    if t._op == "Cast":
        return f"to {t.dtype.name}"
    reduced = _reduction_of(t)
    if reduced is not None:
        return _OP_NAMES[reduced._op]
    return _OP_NAMES.get(t._op, t._op.lower())


def _reduction_of(t: Tensor) -> Tensor | None:
    """The reduction a reshape only drops the kept axes of (``x.sum(0)`` is SUM then RESHAPE
    in primitives): drawn as one ``sum`` node."""
    if t._op != "Reshape" or t._ctx is None or len(t._ctx.parents) != 1:
        return None
    parent = t._ctx.parents[0]
    if parent._op in ("Sum", "Max") and parent._ctx is not None:
        return parent
    return None


def _parents(t: Tensor) -> tuple[Tensor, ...]:
    """The tensors drawn as ``t``'s inputs (a reduction's, for a reshape that ends one)."""
    if t._ctx is None:
        return ()
    reduced = _reduction_of(t)
    return (reduced if reduced is not None else t)._ctx.parents


def _is_internal_constant(t: Tensor) -> bool:
    """A leaf the library made, not the user: a number made a tensor inside an op, or a value
    an op computed without a graph (it has an op name but no parents)."""
    return t._ctx is None and not t.requires_grad and t._op is not None


def _label(t: Tensor, show_values: bool, name: str | None) -> str:
    kind = op_name(t) or ("parameter" if t.requires_grad else "input")
    lines = [f"{name}\n{kind}" if name else kind, f"{_shape(t.shape)} {t.dtype.name}"]
    if show_values:
        lines.append(f"data {_summary(t)}")
        if t.grad is not None:
            lines.append(f"grad {_summary(t.grad)}")
    return "\n".join(lines)


# --- module scopes ---------------------------------------------------------------------------
@dataclass
class ModuleCall:
    """One call of a module while :func:`record_scopes` was recording."""

    name: str  # dotted name in the model ("" for the model itself)
    module: object
    inputs: list[Tensor]
    outputs: list[Tensor] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return 0 if not self.name else self.name.count(".") + 1


def _tensors(value) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


@contextlib.contextmanager
def record_scopes(model) -> Iterator[list[ModuleCall]]:
    """Record every module call of ``model`` inside the ``with`` block (for :func:`draw_graph`).

    >>> model = fusion.nn.Sequential(fusion.nn.Linear(3, 4), fusion.nn.ReLU())
    >>> with record_scopes(model) as scopes:
    ...     out = model(fusion.randn(2, 3)).sum()
    >>> [call.name for call in scopes]
    ['0', '1', '']
    >>> dot = draw_graph(out, scopes=scopes, collapse=1)
    """
    calls: list[ModuleCall] = []
    patched = []

    def recording(name: str, module, forward):
        def forward_and_record(*args, **kwargs):
            call = ModuleCall(name, module, list(_tensors((args, kwargs))))
            out = forward(*args, **kwargs)
            call.outputs = list(_tensors(out))
            calls.append(call)
            return out
        return forward_and_record

    try:
        for name, module in model.named_modules():
            # Module.__call__ calls self.forward: an instance attribute shadows the method.
            object.__setattr__(module, "forward", recording(name, module, module.forward))
            patched.append(module)
        yield calls
    finally:
        for module in patched:
            object.__delattr__(module, "forward")


def _scope_chains(nodes: dict[int, Tensor], scopes: Sequence[ModuleCall]) -> dict[int, list[int]]:
    """For each tensor of the graph, the calls that computed it, outermost first."""
    chains: dict[int, list[int]] = {}
    order = sorted(range(len(scopes)), key=lambda i: scopes[i].depth)
    for index in order:
        call = scopes[index]
        inputs = {id(t) for t in call.inputs}
        own = {id(p) for p in call.module.parameters()} if hasattr(call.module, "parameters") \
            else set()
        seen: set[int] = set()
        stack = [t for t in call.outputs if id(t) in nodes]
        while stack:
            t = stack.pop()
            if id(t) in seen or id(t) in inputs:
                continue
            seen.add(id(t))
            if t._ctx is None and id(t) not in own:
                continue  # a leaf from outside the call: an input or another module's weight
            chains.setdefault(id(t), []).append(index)
            stack.extend(p for p in _parents(t) if id(p) in nodes)
    return chains


# --- the drawing -----------------------------------------------------------------------------
def _outputs(tensor) -> list[tuple[str | None, Tensor]]:
    if isinstance(tensor, Tensor):
        return [(None, tensor)]
    if isinstance(tensor, Mapping):
        return [(str(k), v) for k, v in tensor.items()]
    return [(None, t) for t in tensor]


def draw_graph(tensor: Tensor | Sequence[Tensor] | Mapping[str, Tensor],
               show_values: bool = True, rankdir: str = "LR", max_nodes: int = 2000, *,
               params: Mapping[str, Tensor] | None = None, show_saved: bool = False,
               scopes: Sequence[ModuleCall] | None = None, collapse: int | None = None,
               show_constants: bool = False):
    """The graph of operations that produced ``tensor`` as a :class:`graphviz.Digraph`.

    One node per tensor, labelled with the op that made it, its shape and dtype (and a summary
    of its values and gradient with ``show_values``). Leaves that require grad are blue, other
    leaves grey, the drawn tensors green (pass several, or a dict of names to tensors, to draw
    them together). ``params`` (e.g. ``dict(model.named_parameters())``) names the leaves;
    ``show_saved`` adds an orange node for each value an op saved for its backward pass, with
    a dashed edge to that op. With ``scopes`` from :func:`record_scopes`, each module call is a
    frame around the ops it ran; ``collapse=N`` draws each call N levels down (1: the model's
    direct children) as one box instead. Constants made inside ops (see the module's notes)
    are left out unless ``show_constants``.

    Render with ``.render("graph", format="svg")`` where graphviz's ``dot`` program is
    installed; ``.source`` is the DOT text.

    After ``backward()`` the graph keeps its ops, shapes and dtypes but not the intermediate
    tensors themselves: draw it before, or call ``backward(retain_graph=True)``, to see their
    values, their saved values or the frames of ``scopes``.

    >>> x = fusion.Tensor([1.0, 2.0], requires_grad=True)
    >>> dot = draw_graph((x * x).sum())
    >>> [line.split()[0] for line in dot.body if "->" in line]
    ['t1', 't2', 't3', 't3']
    >>> "Contract" in draw_graph(x @ x).source, "matmul" in draw_graph(x @ x).source
    (False, True)
    """
    import graphviz

    dot = graphviz.Digraph("fusion", graph_attr={"rankdir": rankdir},
                           node_attr={"shape": "box", "style": "rounded,filled",
                                      "fontname": "Helvetica", "fontsize": "10"})
    outputs = _outputs(tensor)
    output_ids = {id(t) for _, t in outputs}
    names = {id(t): name for name, t in outputs if name}
    names.update({id(p): name for name, p in (params or {}).items()})

    # Walk from the outputs, parents in order, numbering tensors as they are first met.
    nodes: dict[int, Tensor] = {}
    ids: dict[int, str] = {}
    stack = [t for _, t in reversed(outputs)]
    while stack:
        node = stack.pop()
        if id(node) in nodes:
            continue
        if len(nodes) >= max_nodes:
            raise ValueError(f"the graph has more than {max_nodes} tensors; raise max_nodes "
                             "to draw it anyway")
        nodes[id(node)] = node
        ids[id(node)] = f"t{len(ids)}"
        stack.extend(p for p in reversed(_parents(node))
                     if show_constants or not _is_internal_constant(p))

    chains = _scope_chains(nodes, scopes) if scopes else {}

    def represent(key: int) -> str:
        """The node a tensor is drawn as: its own, or the box of a collapsed call."""
        for index in chains.get(key, []):
            if collapse is not None and scopes[index].depth == collapse:
                return f"m{index}"
        return ids[key]

    def frames(key: int) -> list[int]:
        """The calls drawn as frames around a tensor (the model itself and boxes are not)."""
        chain = [i for i in chains.get(key, []) if scopes[i].depth > 0]
        if collapse is not None:
            chain = [i for i in chain if scopes[i].depth < collapse]
        return chain

    # Group what is drawn by frame, then emit frames nested as the calls are.
    members: dict[tuple[int, ...], list[tuple[str, dict]]] = {}
    boxes_done: set[str] = set()
    for key, node in nodes.items():
        rep = represent(key)
        if rep.startswith("m"):
            if rep in boxes_done:
                continue
            boxes_done.add(rep)
            call = scopes[int(rep[1:])]
            shapes = ", ".join(_shape(t.shape) for t in call.outputs)
            label = f"{call.name}: {type(call.module).__name__}\n{shapes}"
            path = tuple(i for i in chains[key] if 0 < scopes[i].depth < collapse)
            fill = _OUTPUT if any(id(t) in output_ids for t in call.outputs) else _MODULE
            members.setdefault(path, []).append((rep, {"label": label, "fillcolor": fill}))
            continue
        parents = _parents(node)
        if key in output_ids:
            colour = _OUTPUT
        elif not parents:
            colour = _LEAF_GRAD if node.requires_grad else _LEAF
        else:
            colour = _OP
        members.setdefault(tuple(frames(key)), []).append(
            (rep, {"label": _label(node, show_values, names.get(key)), "fillcolor": colour}))

    def emit(graph, path: tuple[int, ...]) -> None:
        for node_id, attrs in members.get(path, []):
            graph.node(node_id, attrs["label"], fillcolor=attrs["fillcolor"])
        children = sorted({p[len(path)] for p in members if len(p) > len(path)
                           and p[:len(path)] == path})
        for child in children:
            call = scopes[child]
            with graph.subgraph(name=f"cluster_m{child}") as frame:
                frame.attr(label=f"{call.name}: {type(call.module).__name__}",
                           style="rounded,filled", fillcolor=_FRAME, color="grey",
                           fontname="Helvetica", fontsize="10")
                emit(frame, path + (child,))

    emit(dot, ())

    edges: set[tuple[str, str]] = set()
    for key, node in nodes.items():
        if node._ctx is None:
            continue
        target = represent(key)
        for parent in _parents(node):
            if id(parent) not in nodes:
                continue  # a hidden constant
            source = represent(id(parent))
            if source == target:
                continue  # inside one collapsed call
            boxed = source.startswith("m") or target.startswith("m")
            if boxed and (source, target) in edges:
                continue  # a box's many inner uses of one tensor are one edge
            # x * x keeps its two edges from x: how often a tensor is used is part of the graph
            edges.add((source, target))
            dot.edge(source, target)
        if show_saved and not target.startswith("m"):
            for attribute, value in vars(node._ctx).items():
                if isinstance(value, Buffer):
                    saved = f"{target}_{attribute}"
                    dot.node(saved, f"saved {attribute}\n{_shape(value.shape)} "
                                    f"{value.dtype.name}", fillcolor=_SAVED)
                    dot.edge(saved, target, style="dashed")
    return dot
