"""Micro-benchmark of the core: time per element and ratio to one ``np.exp`` pass.

Each ratio is measured side by side in one run: the core call and an
``np.exp`` over an array of the same size (``N`` for binary losses, ``N·C``
for categorical ones) are timed in alternating short batches, each side's
fastest batch giving one sample of the ratio; ``--repeats`` samples are taken
and their median and spread printed.  The allocator is tuned as in a serving
process (:func:`service.runtime.tune_allocator`).

    python -m bench.core [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import numpy as np

from bench._stats import Row, best_times, print_table
from service.core import binary_cross_entropy_with_logits, cross_entropy_with_logits
from service.runtime import tune_allocator

TARGET = "<= 6"


def cases(rng: np.random.Generator) -> list[tuple[str, int, Callable[[], object]]]:
    """The benchmarked calls: (name, elements, call)."""
    out: list[tuple[str, int, Callable[[], object]]] = []
    for n in (100_000, 1_000_000):
        z = rng.normal(scale=4.0, size=n)
        t = (rng.random(n) < 0.5).astype(np.float64)
        out.append(
            (
                f"BCE logits loss+gradient, N={n:.0e}",
                n,
                lambda z=z, t=t: binary_cross_entropy_with_logits(
                    z, t, reduction="mean"
                ),
            )
        )
    for c in (10, 1000):
        rows = 10_000
        z = rng.normal(scale=4.0, size=(rows, c))
        y = rng.integers(0, c, size=rows)
        out.append(
            (
                f"softmax CE labels loss+gradient, N=1e4, C={c}",
                rows * c,
                lambda z=z, y=y: cross_entropy_with_logits(z, labels=y),
            )
        )
    return out


def core_rows(repeats: int, rng: np.random.Generator) -> list[Row]:
    """One row per case: core time / one ``np.exp`` pass, ``repeats`` samples."""
    rows = []
    for name, size, call in cases(rng):
        x = rng.normal(size=size)
        out = np.empty(size)
        ratios, per_element = [], []
        for _ in range(repeats):
            core, exp = best_times([call, lambda x=x, out=out: np.exp(x, out=out)])
            ratios.append(core / exp)
            per_element.append(core / size * 1e9)
        median_ns = statistics.median(per_element)
        figure = f"core / np.exp: {name} ({median_ns:.2f} ns/element)"
        rows.append(Row(figure, ratios, TARGET))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    tune_allocator()
    print_table(core_rows(args.repeats, np.random.default_rng(20261203)))


if __name__ == "__main__":
    main()
