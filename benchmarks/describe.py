"""``fusion describe`` beside pandas on a large CSV file: time and peak memory.

Writes a ~76 MB CSV (a header, an id column, a text column and ten numeric columns with a few
missing values; rows are seeded), then runs each reader in a fresh process so that peak memory
(the process's maximum resident set) is its own:

- pandas: ``pd.read_csv(path).describe()``, the reference;
- fusion: ``fusion.data.describe(path)`` with pandas' parser (how it runs where pandas is
  installed);
- fusion, no pandas: the same with the standard-library reader (how it runs without pandas).

Times are the median of ``--repeat`` runs; the figures to quote are the ratios to pandas.

    python benchmarks/describe.py [--rows 830000] [--repeat 3] [--keep data.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

RUNNERS = {
    "pandas": "import pandas as pd\nresult = pd.read_csv(PATH).describe()",
    "fusion": "from fusion.data.describe import describe\nresult = describe(PATH)",
    "fusion, no pandas": (
        "import fusion.data.csvfile as c\nc._pandas_available = lambda: False\n"
        "from fusion.data.describe import describe\nresult = describe(PATH)"),
}

# Runs one reader in a fresh process; prints seconds and the peak resident set in bytes.
CHILD = """
import resource, sys, time
PATH = sys.argv[1]
import numpy
start = time.perf_counter()
{body}
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(seconds, peak)
"""


def write_csv(path: str, rows: int, seed: int = 0) -> None:
    """Ten numeric columns of several scales, an id and a text column, 0.5% missing."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write("id,kind," + ",".join(f"x{i}" for i in range(10)) + "\n")
        block = 100_000
        for start in range(0, rows, block):
            n = min(block, rows - start)
            columns = [np.arange(start, start + n).astype(str),
                       rng.choice(np.array(["alpha", "beta", "gamma"]), n)]
            for i in range(10):
                values = rng.normal(10.0 ** (i % 4), 1.0 + i, n).round(4).astype(str)
                values[rng.random(n) < 0.005] = ""
                columns.append(values)
            f.write("\n".join(",".join(row) for row in zip(*columns, strict=True)) + "\n")


def measure(body: str, path: str, repeat: int) -> tuple[float, float]:
    times, peaks = [], []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", CHILD.format(body=body), path],
                             capture_output=True, text=True, check=True).stdout.split()
        times.append(float(out[0]))
        peaks.append(float(out[1]))
    return statistics.median(times), statistics.median(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=830_000, help="rows (830000: ~76 MB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (median)")
    parser.add_argument("--keep", help="write the CSV here and keep it")
    args = parser.parse_args()

    folder = tempfile.mkdtemp()
    path = args.keep or os.path.join(folder, "large.csv")
    write_csv(path, args.rows)
    size = os.path.getsize(path)
    print(f"{path}: {size / 1e6:.1f} MB, {args.rows} rows, 12 columns")
    results = {name: measure(body, path, args.repeat) for name, body in RUNNERS.items()}
    base_time, base_peak = results["pandas"]
    print(f"{'reader':<20}{'seconds':>9}{'x pandas':>10}{'peak MB':>10}{'x pandas':>10}")
    for name, (seconds, peak) in results.items():
        print(f"{name:<20}{seconds:>9.2f}{seconds / base_time:>10.2f}"
              f"{peak / 1e6:>10.0f}{peak / base_peak:>10.2f}")
    print(json.dumps({name: {"seconds": round(t, 3), "peak_mb": round(p / 1e6, 1)}
                      for name, (t, p) in results.items()}))
    if not args.keep:
        os.remove(path)
        os.rmdir(folder)


if __name__ == "__main__":
    main()
