"""``python -m fusion``: the same command line as the ``fusion`` script (:mod:`fusion.cli`).

Among its commands (``info`` lives in :mod:`fusion.info`):

``python -m fusion info [--json] [--no-start]``
    Every installed backend (name, version, plugin, package, status) and every plugin that
    failed to load, with the reason. Each backend is started first, so that ``ready`` means
    it works here; ``--no-start`` only lists them. The exit status is 1 when a plugin failed
    or a backend could not start, so the command also serves as a check in CI.

To check a backend's correctness, run its conformance suite: ``python -m fusion.testing NAME``.
"""

from __future__ import annotations

import sys

from .cli import main as cli_main
from .info import info

__all__ = ["info", "main"]


def main(argv: list[str] | None = None) -> int:
    """``python -m fusion ...`` is the ``fusion`` command (:mod:`fusion.cli`), ``info`` included."""
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
