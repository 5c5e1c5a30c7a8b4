"""``fusion info``: every installed backend (name, version, plugin, package, status) and every
plugin that failed to load, with the reason.

Each backend is started first, so that ``ready`` means it works here; ``--no-start`` only
lists them. The exit status is 1 when a plugin failed or a backend could not start, so the
command also serves as a check in CI.
"""

from __future__ import annotations

import json
import sys
import warnings

COLUMNS = ("name", "version", "plugin", "package", "status")


def info(as_json: bool = False, start: bool = True, out=None) -> int:
    """Print the installed backends; returns 1 if any plugin or backend is broken, else 0."""
    import fusion
    from fusion.core.backend import BackendError, registry

    out = out or sys.stdout
    with warnings.catch_warnings():
        # A broken plugin warns when the registry loads; here it is a row of the table.
        warnings.simplefilter("ignore", RuntimeWarning)
        registry.load()
    if start:
        for name in list(registry.entries):
            try:
                fusion.get_backend(name)
            except BackendError:
                pass  # the entry keeps the error, and the table shows it
    rows = fusion.backend_info()
    if as_json:
        json.dump(rows, out, indent=2)
        out.write("\n")
    else:
        _print_table(rows, out)
    broken = any(r["status"].startswith(("failed", "unavailable")) for r in rows)
    return 1 if broken else 0


def _print_table(rows: list[dict], out) -> None:
    cells = [[_cell(row, col) for col in COLUMNS] for row in rows]
    widths = [max(len(col), *(len(c[i]) for c in cells)) for i, col in enumerate(COLUMNS)]
    # the status is last and left unpadded: a failure's message may be long
    out.write("  ".join(col.ljust(w) for col, w in zip(COLUMNS, widths, strict=True)).rstrip())
    out.write("\n")
    for c in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip() + "\n")
    if not rows:
        out.write("(no backend is installed)\n")


def _cell(row: dict, column: str) -> str:
    value = row.get(column)
    if column == "name" and row.get("aliases"):
        return f"{value} ({', '.join(row['aliases'])})"
    return "-" if value is None else str(value)
