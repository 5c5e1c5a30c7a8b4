"""Runnable examples: ``python -m fusion.examples.digits`` (also the ``fusion-digits`` command)."""
