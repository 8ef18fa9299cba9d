"""The directory where worker processes keep their Prometheus metrics.

``lossgrad serve`` runs the workers; each counts in its own files under
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up.  The variable must
be in the environment before a worker imports prometheus-client, which is why
the command sets it before starting uvicorn, and why this module does not
import prometheus-client itself.

- More than one worker, variable unset: a fresh temporary directory, removed
  when the server stops.
- Variable set (any number of workers): that directory, created if missing and
  emptied of the metric files of an earlier run, which would otherwise be
  counted again.  It is left in place at the end.
- One worker, variable unset: no directory; metrics live in the process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"

# The files prometheus-client writes: {counter,gauge_<mode>,histogram,summary}_<pid>.db
_METRIC_FILE_PREFIXES = ("counter_", "gauge_", "histogram_", "summary_")


def _remove_metric_files(directory: Path) -> None:
    for path in directory.glob("*.db"):
        if path.name.startswith(_METRIC_FILE_PREFIXES):
            path.unlink(missing_ok=True)


@contextmanager
def metrics_directory(workers: int) -> Iterator[Path | None]:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` for the workers while the server runs."""
    given = os.environ.get(ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        _remove_metric_files(directory)
        yield directory
        return
    if workers <= 1:
        yield None
        return
    created = Path(tempfile.mkdtemp(prefix="lossgrad-metrics-"))
    os.environ[ENV] = str(created)
    try:
        yield created
    finally:
        os.environ.pop(ENV, None)
        shutil.rmtree(created, ignore_errors=True)
