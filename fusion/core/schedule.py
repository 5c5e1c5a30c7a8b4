"""The scheduler: cuts the lazy graph that a realisation needs into kernels.

Which nodes are computed into memory (the outputs of kernels), and why:

* the buffers asked for;
* every reduction (a kernel ends with at most one) and every contraction (a kernel of its own,
  run by the backend's ``contract``), and whatever a contraction reads that is computed;
* a computed node read through a movement op (a kernel reads only stored buffers through
  views), and the source of a reshape that no view of its layout can express (it is copied
  into contiguous memory first);
* a node used by more than one kernel. On a backend that fuses, such a node is computed again
  inside each kernel instead when it is cheap: at most :data:`RECOMPUTE_LIMIT` elementwise ops
  over inputs that each of those kernels reads anyway cost less than writing it out and reading
  it back. On a backend that runs primitives one by one, or that may run some kernels
  primitive by primitive (it defines ``fusable``), every node is computed once.

A backend that sets ``row_reductions`` (see :mod:`fusion.core.kernel`) may also receive a
reduction over the last axis inside the kernel of its consumer: when the reduction is read only
through one broadcast back to its source's shape, and everything that reads that broadcast lies
in one kernel (elementwise, or reducing the same last axis). A row softmax is then one kernel
(max, sum of exponentials and the normalised output, row by row) instead of three passes over
memory with two stored intermediates.

Everything else is an elementwise op inlined into the kernel of its consumer. Constants are
scalar values of the kernel, never arrays; views of stored buffers cost nothing until a
kernel reads them, and one that is itself asked for runs as the backend's movement primitives
(a view on array backends, no copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .buffer import Buffer, _toposort
from .kernel import Instruction, Kernel, Leaf
from .ops import BinaryOp, ContractOp, LoadOp, MovementOp, ReduceOp, TernaryOp, UnaryOp
from .view import View

#: A shared node of at most this many elementwise ops is recomputed by each kernel that uses it
#: (on a backend that fuses) rather than stored and read back.
RECOMPUTE_LIMIT = 3


@dataclass
class ScheduleItem:
    """One step of a realisation: a kernel to run, or movement/fill primitives (``kernel``
    None). ``nodes`` are the graph nodes it covers in order, for a backend that runs them one
    by one; ``inputs``, ``views``, ``constants`` and ``shape`` are a fused launch's arguments."""

    output: Buffer
    kernel: Kernel | None
    nodes: list[Buffer]
    inputs: list[Buffer] = field(default_factory=list)
    views: list[View] = field(default_factory=list)
    constants: list = field(default_factory=list)
    shape: tuple[int, ...] = ()

    @property
    def fusable(self) -> bool:
        """Whether a backend's ``fuse`` runs it (contractions go to ``contract``)."""
        return self.kernel is not None and self.output.op is not ContractOp.CONTRACT

    @property
    def bytes(self) -> int:
        """Bytes a kernel moves: each input buffer read once, the output written once."""
        seen = {id(b): b.numel * b.dtype.itemsize for b in self.inputs}
        return sum(seen.values()) + self.output.numel * self.output.dtype.itemsize


def _is_movement(node: Buffer) -> bool:
    return isinstance(node.op, MovementOp)


def _is_elementwise(node: Buffer) -> bool:
    return isinstance(node.op, (UnaryOp, BinaryOp, TernaryOp))


class _Scheduler:
    def __init__(self, targets: list[Buffer], recompute: bool, rows: bool = False,
                 order: list[Buffer] | None = None):
        self.recompute = recompute
        self.targets = list(targets)
        self.order, self.consumers = _graph(targets, order)
        self.stored: dict[int, Buffer] = {}  # kernel outputs
        self.views: dict[int, tuple[Buffer, View]] = {}
        # broadcasts of a row reduction computed inside their consumer's kernel: the id of
        # the EXPAND node -> the reduction it reads
        self.inline: dict[int, Buffer] = self.row_candidates() if rows else {}

    def row_candidates(self) -> dict[int, Buffer]:
        """The reductions over the last axis (of two or more) that are read only through one
        broadcast back to their source's shape, and only by elementwise ops."""
        targets = {id(t) for t in self.targets}
        found = {}
        for node in self.order:
            if not isinstance(node.op, ReduceOp) or id(node) in targets:
                continue
            ndim = len(node.shape)
            users = self.consumers.get(id(node), [])
            if ndim < 2 or node.arg[0] != (ndim - 1,) or len(users) != 1:
                continue
            (expand,) = users
            readers = self.consumers.get(id(expand), [])
            if expand.op is MovementOp.EXPAND and id(expand) not in targets and \
                    expand.shape == node.srcs[0].shape and readers and \
                    all(_is_elementwise(r) for r in readers):
                found[id(expand)] = node
        return found

    def store(self, node: Buffer) -> None:
        self.stored[id(node)] = node

    def is_input(self, node: Buffer) -> bool:
        """Read from memory by a kernel: realised already, or the output of another kernel."""
        return node._data is not None or id(node) in self.stored

    # --- deciding what is stored -----------------------------------------------------------
    def cut(self) -> None:
        """Decide what is stored; a row reduction that cannot be computed inside its
        consumer's kernel after all is stored, and the cut made again without it."""
        while True:
            self.stored = {id(t): t for t in self.targets}
            self.views = {}
            rejected = self.cut_once()
            if not rejected:
                return
            for expand in rejected:
                del self.inline[expand]

    def cut_once(self) -> list[int]:
        inlined = {id(r) for r in self.inline.values()}
        for node in self.order:
            if isinstance(node.op, ReduceOp) and id(node) not in inlined:
                self.store(node)
            elif node.op is ContractOp.CONTRACT:
                self.store(node)
                for src in node.srcs:
                    base = _chain(src, self)[-1]
                    if base._data is None:
                        self.store(base)
        for node in self.order:
            if id(node) in self.inline:
                continue
            if _is_movement(node) and (id(node) in self.stored or any(
                    not _is_movement(c) for c in self.consumers.get(id(node), ()))):
                self.resolve(node)
        return self.share()

    def resolve(self, node: Buffer) -> None:
        """The stored buffer and view that movement node ``node`` reads (storing what must be)."""
        chain = _chain(node, self)
        base = chain[-1]
        if base._data is None and base.op is not LoadOp.FULL and not _is_movement(base):
            self.store(base)  # a computed node read through a view is stored first
        view = View.contiguous(base.shape)
        for i in range(len(chain) - 2, -1, -1):
            step = chain[i]
            moved = view.apply(step.op, step.arg)
            if moved is None:  # no view can: store the source, then view it afresh
                base = chain[i + 1]
                self.store(base)
                moved = View.contiguous(base.shape).apply(step.op, step.arg)
            view = moved
        if base.op is LoadOp.FULL and base._data is None and view.mask is not None:
            self.store(base)
        self.views[id(node)] = (base, view)

    def share(self) -> list[int]:
        """Store a computed node that several kernels use, unless recomputing it is cheap.
        Returns the inlined broadcasts whose reduction cannot stay inside one kernel."""
        owners: dict[int, set[int]] = {}
        rejected = []
        for node in reversed(self.order):
            inlined = id(node) in self.inline
            if (_is_movement(node) and not inlined) or node.op is LoadOp.FULL or \
                    id(node) in self.stored:
                continue
            mine: set[int] = set()
            for c in self.consumers.get(id(node), ()):
                mine |= {id(c)} if id(c) in self.stored else owners.get(id(c), set())
            if inlined or isinstance(node.op, ReduceOp):  # a row reduction and its broadcast,
                owners[id(node)] = mine  # computed inside the kernel that reads them
                if inlined and not self.one_row_kernel(self.inline[id(node)], mine):
                    rejected.append(id(node))
                continue
            if len(mine) > 1 and not (self.recompute and self.cheap(node)):
                self.store(node)
                continue
            owners[id(node)] = mine
        return rejected

    def one_row_kernel(self, reduction: Buffer, owners: set[int]) -> bool:
        """Whether the kernels reading ``reduction``'s broadcast are one, looping over the
        reduction's source shape with the same last axis inside."""
        if len(owners) != 1:
            return False
        (root,) = (self.stored[k] for k in owners)
        if _is_elementwise(root):
            return root.shape == reduction.srcs[0].shape
        return isinstance(root.op, ReduceOp) and root.arg[0] == reduction.arg[0] and \
            root.srcs[0].shape == reduction.srcs[0].shape

    def cheap(self, node: Buffer) -> bool:
        count, stack, seen = 0, [node], set()
        while stack:
            n = stack.pop()
            if id(n) in seen or n._data is not None or _is_movement(n) or n.op is LoadOp.FULL:
                continue
            seen.add(id(n))
            if n is not node and id(n) in self.stored:
                continue
            count += 1
            if count > RECOMPUTE_LIMIT:
                return False
            stack.extend(n.srcs)
        return True

    # --- building the items ----------------------------------------------------------------
    def items(self) -> list[ScheduleItem]:
        out = []
        for node in self.order:
            if id(node) not in self.stored:
                continue
            if _is_movement(node) or node.op is LoadOp.FULL:
                out.append(ScheduleItem(node, None, _movement_nodes(node, self)))
            elif node.op is ContractOp.CONTRACT:
                out.append(self.contraction(node))
            else:
                out.append(self.kernel(node))
        return out

    def contraction(self, node: Buffer) -> ScheduleItem:
        nodes: list[Buffer] = []
        for src in node.srcs:
            nodes += _movement_nodes(src, self) if _is_movement(src) else []
        nodes.append(node)
        inputs = [_chain(src, self)[-1] for src in node.srcs]
        instructions = (Instruction(Leaf.INPUT, (), 0, inputs[0].dtype),
                        Instruction(Leaf.INPUT, (), 1, inputs[1].dtype),
                        Instruction(ContractOp.CONTRACT, (0, 1), None, node.dtype))
        kernel = Kernel(instructions, len(node.shape), ("strided", "strided"))
        return ScheduleItem(node, kernel, nodes, inputs, [], [], node.shape)

    def kernel(self, root: Buffer) -> ScheduleItem:
        instructions: list[Instruction] = []
        index: dict[int, int] = {}
        inputs: list[Buffer] = []
        views: list[View] = []
        input_index: dict[tuple, int] = {}
        constants: list = []
        const_index: dict[tuple, int] = {}
        nodes: list[Buffer] = []

        def leaf_input(base: Buffer, view: View) -> Instruction:
            key = (id(base), view)
            if key not in input_index:
                input_index[key] = len(inputs)
                inputs.append(base)
                views.append(view)
            return Instruction(Leaf.INPUT, (), input_index[key], base.dtype)

        def leaf_const(value, dtype) -> Instruction:
            key = (value, type(value), dtype)
            if key not in const_index:
                const_index[key] = len(constants)
                constants.append(value)
            return Instruction(Leaf.CONST, (), const_index[key], dtype)

        stack: list[tuple[Buffer, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            if id(node) in index:
                continue
            if node is not root and self.is_input(node):
                ins = leaf_input(node, View.contiguous(node.shape))
            elif id(node) in self.inline:  # a row reduction's broadcast: the reduction's value
                if not done:
                    stack.append((node, True))
                    stack.append((node.srcs[0], False))
                    continue
                nodes.append(node)
                index[id(node)] = index[id(node.srcs[0])]
                continue
            elif _is_movement(node):
                base, view = self.views[id(node)]
                if base.op is LoadOp.FULL and not self.is_input(base):
                    nodes.extend(_movement_nodes(node, self))  # the constant first
                    ins = leaf_const(base.arg[0], base.dtype)
                else:
                    nodes.extend(_movement_nodes(node, self))
                    ins = leaf_input(base, view)
            elif node.op is LoadOp.FULL:
                nodes.append(node)
                ins = leaf_const(node.arg[0], node.dtype)
            elif not done:
                stack.append((node, True))
                stack.extend((s, False) for s in reversed(node.srcs) if id(s) not in index)
                continue
            else:
                nodes.append(node)
                arg = node.arg[0] if node.arg else None
                ins = Instruction(node.op, tuple(index[id(s)] for s in node.srcs), arg,
                                  node.dtype)
                if node.op is UnaryOp.CAST:
                    ins = Instruction(node.op, ins.srcs, node.arg[0], node.dtype)
            index[id(node)] = len(instructions)
            instructions.append(ins)
        shape = root.srcs[0].shape if isinstance(root.op, ReduceOp) else root.shape
        kernel = Kernel(tuple(instructions), len(shape), tuple(v.kind for v in views))
        return ScheduleItem(root, kernel, nodes, inputs, views, constants, shape)


def _graph(targets: list[Buffer], order: list[Buffer] | None = None,
           ) -> tuple[list[Buffer], dict[int, list[Buffer]]]:
    """The unrealised nodes ``targets`` need, in order (``order`` if the caller has it), and the
    consumers of each."""
    if order is None:
        order = _toposort(targets)
    consumers: dict[int, list[Buffer]] = {}
    for node in order:
        for src in node.srcs:
            if src._data is None:
                consumers.setdefault(id(src), []).append(node)
    return order, consumers


def _chain(node: Buffer, s: _Scheduler) -> list[Buffer]:
    """``node`` and the movement nodes under it, down to the first node that is not an
    unrealised, unstored movement node (the chain's base, last)."""
    chain = [node]
    while (_is_movement(chain[-1]) and chain[-1]._data is None
           and (len(chain) == 1 or id(chain[-1]) not in s.stored)):
        chain.append(chain[-1].srcs[0])
    return chain


def _movement_nodes(node: Buffer, s: _Scheduler) -> list[Buffer]:
    """The unrealised nodes of ``node``'s movement chain, sources first; its base only when
    no other item computes it (a constant)."""
    chain = _chain(node, s)
    if len(chain) == 1:
        return [node] if node._data is None else []
    base = chain[-1]
    own_base = base._data is None and id(base) not in s.stored and base.op is LoadOp.FULL
    return ([base] if own_base else []) + [n for n in reversed(chain[:-1]) if n._data is None]


def schedule(targets: list[Buffer], recompute: bool = True,
             rows: bool = False, order: list[Buffer] | None = None) -> list[ScheduleItem]:
    """The items that realise ``targets`` (unrealised buffers of one backend), in order.

    ``recompute``: whether a cheap node shared by several kernels is recomputed in each (for a
    backend that fuses) rather than stored once. ``rows``: whether a last-axis reduction read
    back through a broadcast is computed inside its consumer's kernel (for a backend that sets
    ``row_reductions``). ``order``: the unrealised nodes the targets need, sources first, when
    the caller has already worked them out.
    """
    scheduler = _Scheduler(list(targets), recompute, rows, order)
    scheduler.cut()
    return scheduler.items()
