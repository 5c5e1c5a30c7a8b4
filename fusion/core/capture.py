"""The seam between the frontend and :func:`fusion.jit`, which captures a whole step.

A captured step is replayed without running its Python code, so whatever that code computes
on the host, outside the backend's kernels, must be declared here by the frontend; the
capture itself lives in :mod:`fusion.jit` (the top layer), and core code never imports it.

* **Host values** (:func:`host_values`): numbers and arrays a step computes in Python, such
  as an optimizer's learning rate and bias corrections or the random numbers of dropout. A
  replay calls the same function again, in the order the plain step would, and feeds what it
  returns to the recorded kernels instead of the values of the capture. Numbers come back
  as :class:`HostScalar`: a float that the buffer layer keeps apart from every other
  constant, however equal their values.
* **Host checks** (:func:`host_check`): a step that reads tensor values on the host only to
  validate them (labels in range) declares it; a replay runs the same check on its values.
  Any other host read inside a captured step (``.item()``, ``.numpy()``, Python ``if`` on
  a tensor) makes the step impossible to replay, and :func:`fusion.jit` runs it plainly.
* **The state version** (:func:`state_version`): every API that replaces a tensor a step may
  hold as state (a module's parameter, buffer or submodule, a tensor's storage, an
  optimizer's state) increments it, so that a capture made before knows it may be stale.

Without an active capture each of these functions costs one global lookup.
"""

from __future__ import annotations

from collections.abc import Callable

#: The active recorder of :mod:`fusion.jit`, or None (no capture in progress).
recorder = None
_version = 0


class HostScalar(float):
    """A number computed on the host that a replay recomputes (see :func:`host_values`).

    It compares and hashes by identity, so that no cache or kernel merges it with another
    constant of equal value: two such numbers that agree in one step may differ in the next.
    """

    __slots__ = ()

    def __eq__(self, other) -> bool:
        return self is other

    def __ne__(self, other) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return id(self)


def host_values(compute: Callable, *args, guard: Callable | None = None):
    """``compute(*args)``: a tuple of Python numbers and numpy arrays computed on the host,
    which a replay of a captured step computes again.

    ``compute`` may update host state (an optimizer's step count): a replay calls it exactly
    when the plain step would. ``guard(*args)``, if given, is a pure function returning a
    hashable description of what the step does with the values (which branch it takes); a
    replay whose guard differs from the capture's captures the step again.
    """
    if recorder is None:
        return compute(*args)
    return recorder.host_values(compute, args, guard)


def host_check(buffer, check: Callable, *args) -> None:
    """Run ``check(values, *args)`` on the host values of ``buffer`` (a numpy array); it
    raises on bad values. A replay runs the same check on the values of that call."""
    if recorder is None:
        check(buffer.numpy(), *args)
    else:
        recorder.host_check(buffer, check, args)


def note_module(module) -> None:
    """Tell an active capture that ``module`` ran (its train/eval mode is part of the step)."""
    if recorder is not None:
        recorder.note_module(module)


def note_grads(tensors) -> None:
    """Tell an active capture that backward set the ``.grad`` of ``tensors``."""
    if recorder is not None:
        recorder.note_grads(tensors)


def note_assign(tensor) -> None:
    """Tell an active capture that ``tensor``'s storage was written in place."""
    if recorder is not None:
        recorder.note_assign(tensor)


def state_changed() -> None:
    """Record that a tensor a step may hold as state was replaced (see the module docstring)."""
    global _version
    _version += 1


def state_version() -> int:
    """The number of :func:`state_changed` calls so far."""
    return _version


__all__ = ["HostScalar", "host_check", "host_values", "note_assign", "note_grads",
           "note_module", "state_changed", "state_version"]
