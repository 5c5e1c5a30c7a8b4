"""Feedback on long work for the command-line tools: a bar on a terminal, lines elsewhere.

:class:`Task` shows a tqdm bar on standard error when it is a terminal and tqdm (the ``train``
extra) is installed; otherwise it prints one line when the work starts and one when it ends,
with the time it took, so that logs and pipes get a record instead of a redrawn bar.

>>> with Task("reading data.csv (76 MB)", total=76_000_000, unit="B") as task:  # doctest: +SKIP
...     task.update(1_000_000)
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes, closed streams)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Task:
    """A piece of long work: ``update(done)`` as it goes, ``close()`` (or ``with``) at the end.

    ``total`` and ``unit`` size the bar (``unit="B"`` shows bytes with SI prefixes).
    """

    def __init__(self, description: str, total: int | None = None, unit: str = "it",
                 stream: TextIO | None = None):
        self.description = description
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.done = 0
        self.bar = None
        if is_terminal(self.stream):
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=description, unit=unit, file=self.stream,
                                unit_scale=unit == "B", leave=False, dynamic_ncols=True)
        if self.bar is None:
            print(f"{description} ...", file=self.stream, flush=True)

    def update(self, done: int) -> None:
        """The work done so far (a count, not an increment)."""
        if self.bar is not None and done > self.done:
            self.bar.update(done - self.done)
        self.done = max(self.done, done)

    def close(self) -> float:
        """End the task, print how long it took; returns the seconds."""
        seconds = time.perf_counter() - self.started
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(f"{self.description}: done in {seconds:.1f} s", file=self.stream, flush=True)
        return seconds

    def __enter__(self) -> Task:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        elif self.bar is not None:  # failed: the error says so, not a "done" line
            self.bar.close()
            self.bar = None
