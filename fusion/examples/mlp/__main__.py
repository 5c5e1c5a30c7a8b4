"""``python -m fusion.examples.mlp``: the ``fusion-mlp`` command."""

import os
import sys

from .cli import main

# files only: the learning curves are written, never shown
os.environ.setdefault("MPLBACKEND", "Agg")
sys.exit(main())
