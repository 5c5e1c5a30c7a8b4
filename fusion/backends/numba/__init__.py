"""The numba backend (work in progress)."""
