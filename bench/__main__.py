"""Run every benchmark and print one table: ``python -m bench`` (``make bench``).

Each row is a ratio measured side by side in this run, its median over
``--repeats`` samples, the spread of those samples, the target and whether
the median meets it.  Servers run on 127.0.0.1 and are stopped afterwards.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import numpy as np

from bench._stats import Row, print_table
from bench.core import core_rows
from bench.server import codec_rows, memory_rows, throughput_rows
from service.runtime import tune_allocator


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load-seconds", type=float, default=4.0)
    parser.add_argument(
        "--only", choices=["core", "codec", "throughput", "memory"], action="append"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(20261203)
    tune_allocator()  # as in the servers, so the core and F are timed alike
    only = set(args.only or ["core", "codec", "throughput", "memory"])

    start = time.monotonic()
    rows: list[Row] = []
    if "core" in only:
        rows += core_rows(max(args.repeats, 5), rng)
    if "codec" in only:
        rows += codec_rows(args.repeats, rng)
    if "throughput" in only:
        rows += throughput_rows(args.repeats, rng, args.load_seconds)
    if "memory" in only:
        rows += memory_rows(args.repeats, rng)

    today = datetime.date.today().isoformat()
    print(f"lossgrad benchmarks, {today}, {_machine()}")
    print(f"({time.monotonic() - start:.0f} s; spread = half the range / median)\n")
    print_table(rows)


if __name__ == "__main__":
    main()
