"""Shared timing and table helpers for the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def best_time(func: Callable[[], object], *, min_seconds: float = 0.05) -> float:
    """Seconds per call of ``func``: the fastest of three timed batches.

    The batch size grows until one batch lasts ``min_seconds``, so short
    calls are not dominated by the clock's resolution.
    """
    return best_times([func], rounds=3, min_seconds=min_seconds)[0]


def best_times(
    funcs: Sequence[Callable[[], object]],
    *,
    rounds: int = 10,
    min_seconds: float = 0.005,
) -> list[float]:
    """Seconds per call of each of ``funcs``, timed in alternation.

    Each round times one batch of every function in turn, and each function's
    figure is its fastest batch.  Short batches taken in alternation make it
    likely that every function gets some quiet moments on a busy machine,
    and that the figures compared were taken in the same minutes.
    """
    numbers = []
    for func in funcs:
        func()  # warm-up: first-touch page faults, lazy imports
        number = 1
        while _batch_seconds(func, number) < min_seconds:
            number *= 2
        numbers.append(number)
    best = [float("inf")] * len(funcs)
    for _ in range(rounds):
        for i, (func, number) in enumerate(zip(funcs, numbers, strict=True)):
            best[i] = min(best[i], _batch_seconds(func, number) / number)
    return best


def _batch_seconds(func: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        func()
    return time.perf_counter() - start


@dataclass(frozen=True)
class Row:
    """One line of the results table: a ratio measured several times."""

    figure: str
    samples: list[float]
    target: str  # "<= 1.5", ">= 0.7", or "report" for a figure without one

    @property
    def met(self) -> bool | None:
        """Whether the median meets the target; ``None`` without a target."""
        if self.target.startswith("<="):
            return self.median <= float(self.target[2:])
        if self.target.startswith(">="):
            return self.median >= float(self.target[2:])
        return None

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Half the range of the samples, relative to the median."""
        if len(self.samples) < 2 or self.median == 0:
            return 0.0
        return (max(self.samples) - min(self.samples)) / (2 * self.median)


def print_table(rows: list[Row]) -> None:
    """Print the rows as a markdown table."""
    print("| figure | median | spread | target | met |")
    print("|---|---|---|---|---|")
    for row in rows:
        met = {True: "yes", False: "**no**", None: "-"}[row.met]
        print(
            f"| {row.figure} | {row.median:.3g} | ±{row.spread:.0%} "
            f"| {row.target} | {met} |"
        )
