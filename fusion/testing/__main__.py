"""Run Fusion's conformance suite against one backend by name.

Usage::

    python -m fusion.testing NAME [--xfail FILE] [pytest arguments ...]

    python -m fusion.testing pylist                      # the whole suite on backend "pylist"
    python -m fusion.testing mine --xfail xfails.txt -x  # known deviations, stop at a failure
    python -m fusion.testing mine -k TestPrimitives -q   # any pytest option passes through

NAME may be a comma-separated list. The exit status is pytest's (0: everything passed or was
skipped or xfailed as declared). It is the same run as
``pytest --fusion-backend NAME --pyargs fusion.testing``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

USAGE = "usage: python -m fusion.testing NAME [--xfail FILE] [pytest arguments ...]"


def build_args(name: str, xfails: list[str], extra: list[str]) -> list[str]:
    """The pytest command line of a run of the suite against backend ``name``."""
    import fusion.testing

    package_dir = Path(fusion.testing.__file__).resolve().parent
    args = ["--fusion-backend", name]
    # one argument, option and value: pytest takes every argument that does not start with
    # "-" for a path when it looks for the configuration file, and the folder of an xfail
    # file is no reason to read that folder's pytest settings
    args += [f"--fusion-xfail={path}" for path in xfails]
    if not _plugin_autoloaded():
        # A source tree that was never installed has no pytest11 entry point, and
        # PYTEST_DISABLE_PLUGIN_AUTOLOAD turns entry points off: load the plugin by name.
        args += ["-p", "fusion.testing.plugin"]
    # Test ids relative to the directory that holds the `fusion` package read the same in
    # every environment (fusion/testing/test_suite.py::...), which keeps xfail files portable;
    # the cache then goes to the working directory, never into site-packages.
    args += ["--rootdir", str(package_dir.parent.parent),
             "-o", f"cache_dir={Path.cwd() / '.pytest_cache'}"]
    return [*args, *extra, "--pyargs", "fusion.testing"]


def _plugin_autoloaded() -> bool:
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return any(ep.value == "fusion.testing.plugin" for ep in entry_points(group="pytest11"))


def parse(argv: list[str]) -> tuple[str, list[str], list[str]]:
    """Split ``argv`` into the backend name, the xfail files and the arguments for pytest.

    Only ``--xfail FILE`` (or ``--xfail=FILE``) is ours; everything else goes to pytest as it
    was written, so pytest's options need no escaping.
    """
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        raise SystemExit(0)
    if not argv or argv[0].startswith("-"):
        raise SystemExit(f"{USAGE}\n(the backend name comes first; `python -m fusion info` "
                         "lists the installed ones)")
    name, rest = argv[0], argv[1:]
    xfails, extra = [], []
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--xfail":
            if i + 1 == len(rest):
                raise SystemExit(f"--xfail needs a file\n{USAGE}")
            xfails.append(rest[i + 1])
            i += 2
            continue
        if arg.startswith("--xfail="):
            xfails.append(arg.split("=", 1)[1])
        else:
            extra.append(arg)
        i += 1
    return name, xfails, extra


def main(argv: list[str] | None = None) -> int:
    """Run the suite; returns pytest's exit status."""
    name, xfails, extra = parse(sys.argv[1:] if argv is None else argv)
    # A fresh interpreter rather than pytest.main() here: this process has imported
    # fusion.testing already, and pytest can only rewrite the asserts (for its detailed
    # failure messages) of modules it imports itself.
    return subprocess.call([sys.executable, "-m", "pytest", *build_args(name, xfails, extra)])


if __name__ == "__main__":
    sys.exit(main())
