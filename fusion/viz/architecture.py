"""Drawings of a model's architecture: its layers, the shapes between them, its parameters.

Given an input shape, :func:`draw_architecture` runs one forward pass on zeros and records
every layer call: the shapes it took and gave, and which earlier calls produced its inputs.
Data flow is read from the autograd graph of that pass, so skip connections and models with
their own ``forward`` are drawn as they compute, not as their attributes are listed. The model
is put in evaluation mode for the pass (no dropout, no update of running statistics) and
restored afterwards; nothing is trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..core.grad_mode import enable_grad
from ..core.tensor import Tensor, zeros
from .graph import _tensors

# Node ids of the model's input and output (a layer's id is its dotted name, never these).
INPUT = "__input__"
OUTPUT = "__output__"

# Fill colours: data entering and leaving, layers with weights, layers without.
_DATA = "lightgrey"
_WEIGHTS = "lightblue"
_PLAIN = "white"
_CLUSTER = "#f4f4f4"


@dataclass
class LayerCall:
    """One call of a layer during the traced forward pass."""

    node: str  # the node's id in the drawing: the module's dotted name (+ "#k" if called again)
    name: str  # the module's dotted name in the model
    module: object
    input_shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # nodes whose outputs it consumed


def _units(model, depth: int | None) -> list[tuple[str, object]]:
    """The modules drawn as one box each: leaves, or those ``depth`` levels down."""
    units = []
    for name, module in model.named_modules():
        level = 0 if not name else name.count(".") + 1
        has_children = any(True for _ in module.children())
        if (not has_children and module is not model) or (depth is not None and level == depth):
            if not any(name.startswith(u + ".") for u, _ in units):
                units.append((name, module))
    if not units:  # a model without submodules is one box
        units.append(("", model))
    return units


def trace(model, input_shape: Sequence[int] | None = None, *, example: Tensor | None = None,
          depth: int | None = None) -> tuple[list[LayerCall], list[tuple[int, ...]]]:
    """Run ``model`` once and record each layer call; returns (calls, model output shapes).

    The node ``INPUT`` stands for the model's input, so a call whose ``sources`` include it
    read the input directly; the last call, ``OUTPUT``, is the model's result.

    >>> calls, out = trace(fusion.nn.Sequential(fusion.nn.Linear(3, 2)), (1, 3))
    >>> calls[0].output_shapes, calls[0].sources, out
    ([(1, 2)], ['__input__'], [(1, 2)])
    """
    if example is None:
        if input_shape is None:
            raise ValueError("trace needs an input_shape or an example input")
        example = zeros(*input_shape)
    # The input requires grad so that every op on the way is recorded: that graph is how a
    # layer's input is followed back to the layers (or the model input) that produced it.
    example = example.detach().float().requires_grad_(True)
    producers: dict[int, str] = {id(example): INPUT}
    keep_alive: list[Tensor] = [example]  # ids stay unique while the tensors live
    calls: list[LayerCall] = []
    counts: dict[str, int] = {}

    def sources(tensors: list[Tensor]) -> list[str]:
        found: list[str] = []
        seen: set[int] = set()
        stack = list(tensors)
        while stack:
            t = stack.pop()
            if id(t) in seen:
                continue
            seen.add(id(t))
            if id(t) in producers:
                if producers[id(t)] not in found:
                    found.append(producers[id(t)])
            elif t._ctx is not None:
                stack.extend(t._ctx.parents)
        return found

    def recording(name: str, module, forward):
        def forward_and_record(*args, **kwargs):
            inputs = list(_tensors((args, kwargs)))
            counts[name] = counts.get(name, 0) + 1
            node = (name or type(module).__name__) + (
                f"#{counts[name]}" if counts[name] > 1 else "")
            call = LayerCall(node, name, module, [t.shape for t in inputs],
                             sources=sources(inputs) or ([calls[-1].node] if calls else [INPUT]))
            out = forward(*args, **kwargs)
            outputs = list(_tensors(out))
            call.output_shapes = [t.shape for t in outputs]
            for t in outputs:
                producers[id(t)] = node
            keep_alive.extend(inputs + outputs)
            calls.append(call)
            return out
        return forward_and_record

    units = _units(model, depth)
    modes = {id(m): m.training for m in model.modules()}
    patched = []
    try:
        for name, module in units:
            # Module.__call__ calls self.forward: an instance attribute shadows the method.
            object.__setattr__(module, "forward", recording(name, module, module.forward))
            patched.append(module)
        model.eval()
        with enable_grad():
            out = model(example)
        out_tensors = list(_tensors(out))
        producers_of_output = sources(out_tensors)
    finally:
        for module in patched:
            object.__delattr__(module, "forward")
        for module in model.modules():
            object.__setattr__(module, "training", modes[id(module)])
    calls.append(LayerCall(OUTPUT, "", None, [t.shape for t in out_tensors],
                           [t.shape for t in out_tensors], producers_of_output))
    return calls, [t.shape for t in out_tensors]


def _shape(shapes: list[tuple[int, ...]]) -> str:
    text = ", ".join("(" + ", ".join(map(str, s)) + ")" for s in shapes)
    return text or "()"


def _count(n: int) -> str:
    return f"{n:,}"


def _parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def draw_architecture(model, input_shape: Sequence[int] | None = None, *,
                      example: Tensor | None = None, depth: int | None = None,
                      rankdir: str = "TB", title: str | None = None):
    """The architecture of ``model`` as a :class:`graphviz.Digraph`.

    One box per layer: its name, class and settings, the shape it outputs and its number of
    parameters; containers (a ``Sequential`` inside a model, a block of layers) are drawn as
    frames around their layers. With ``input_shape`` (batch first, e.g. ``(1, 64)``) the model
    runs once on zeros to find the shapes and how data flows; without it, the layers of each
    container are chained in the order they were registered and no shapes are shown.
    ``depth`` collapses everything deeper than that many levels into one box per module.

    Render it with ``.render("model", format="svg")`` where graphviz's ``dot`` is installed;
    ``.source`` is the DOT text.

    >>> model = fusion.nn.Sequential(fusion.nn.Linear(64, 32), fusion.nn.ReLU(),
    ...                              fusion.nn.Linear(32, 10))
    >>> dot = draw_architecture(model, (1, 64))
    >>> "(1, 32)" in dot.source
    True
    """
    import graphviz

    if input_shape is not None or example is not None:
        calls, _ = trace(model, input_shape, example=example, depth=depth)
    else:
        calls = _untraced_calls(model, depth)
    total = _parameters(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    heading = title or type(model).__name__
    dot = graphviz.Digraph(
        "architecture",
        graph_attr={"rankdir": rankdir, "label": f"{heading}\n{_count(total)} parameters"
                    f" ({_count(trainable)} trainable)", "labelloc": "t",
                    "fontname": "Helvetica", "fontsize": "12"},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                   "fontsize": "10"},
        edge_attr={"fontname": "Helvetica", "fontsize": "9"})

    shown_input = input_shape is not None or example is not None
    input_label = "input"
    if shown_input:
        shape = example.shape if example is not None else tuple(input_shape)
        input_label += f"\n{_shape([shape])}"
    dot.node(INPUT, input_label, fillcolor=_DATA, shape="oval")

    # Frames: each container that holds drawn layers, nested as the modules are.
    containers = {name for name, m in model.named_modules() if name and any(
        c.name.startswith(name + ".") for c in calls if c.name)}
    tree: dict[str, list] = {}

    def parent_of(name: str) -> str:
        return max((c for c in containers if name.startswith(c + ".")), key=len, default="")

    for call in calls[:-1]:
        tree.setdefault(parent_of(call.name), []).append(call)
    modules = dict(model.named_modules())
    order = list(modules)

    def add(graph, prefix: str) -> None:
        for call in tree.get(prefix, []):
            module = call.module
            params = _parameters(module)
            extra = module.extra_repr() if hasattr(module, "extra_repr") else ""
            lines = [f"{call.name or '(model)'}: {type(module).__name__}"]
            if extra:
                lines.append(extra)
            if shown_input:
                lines.append(f"out {_shape(call.output_shapes)}")
            if params:
                lines.append(f"{_count(params)} parameters")
            graph.node(call.node, "\n".join(lines), fillcolor=_WEIGHTS if params else _PLAIN)
        for child in sorted((c for c in containers if parent_of(c) == prefix), key=order.index):
            module = modules[child]
            with graph.subgraph(name=f"cluster_{child}") as frame:
                frame.attr(label=f"{child}: {type(module).__name__} "
                                 f"({_count(_parameters(module))} parameters)",
                           style="rounded,filled", fillcolor=_CLUSTER, color="grey",
                           fontname="Helvetica", fontsize="10")
                add(frame, child)

    add(dot, "")
    output = calls[-1]
    output_label = "output" + (f"\n{_shape(output.output_shapes)}" if shown_input else "")
    dot.node(OUTPUT, output_label, fillcolor=_DATA, shape="oval")
    for call in calls:
        for source in call.sources:
            dot.edge(source, call.node)
    return dot


def _untraced_calls(model, depth: int | None) -> list[LayerCall]:
    """Without a forward pass: the drawn layers chained in registration order."""
    calls: list[LayerCall] = []
    previous = INPUT
    for name, module in _units(model, depth):
        calls.append(LayerCall(name or type(module).__name__, name, module, [], [], [previous]))
        previous = calls[-1].node
    calls.append(LayerCall(OUTPUT, "", None, [], [], [previous]))
    return calls


def infer_input_shape(model) -> tuple[int, ...] | None:
    """A batch-of-one input shape read off the first layer that declares its input size.

    >>> infer_input_shape(fusion.nn.Sequential(fusion.nn.Linear(30, 8)))
    (1, 30)
    """
    for _, module in model.named_modules():
        for attribute in ("in_features", "num_features"):
            size = getattr(module, attribute, None)
            if isinstance(size, int):
                return (1, size)
    return None
