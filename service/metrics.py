"""Prometheus metrics of the service, and their text exposition for ``/metrics``.

Every metric is named ``lossgrad_*``:

- ``lossgrad_http_requests_total{method, route, status}``: requests answered;
- ``lossgrad_http_request_duration_seconds{method, route}``: their latency;
- ``lossgrad_http_requests_in_flight``: requests being processed now;
- ``lossgrad_elements_processed_total{operation}``: prediction elements of the
  requests answered successfully (``x`` of sigmoid, ``logits`` or
  ``probabilities`` otherwise);
- ``lossgrad_requests_rejected_total{limit}``: requests refused by a limit.

``route`` is the route's template (``/v1/sigmoid``), never the raw path, so a
client cannot create series at will: requests matching no route share
``unmatched``, and methods other than the standard seven share ``other``.

With several worker processes each one counts in its own files under
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them all, whichever worker
answers the scrape (see :mod:`service.multiprocess`).  prometheus-client picks
that mode when it is imported, so the variable must be set before then.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final, Literal, get_args

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector

MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
UNMATCHED_ROUTE: Final = "unmatched"
OTHER_METHOD: Final = "other"

# Any token is a valid method; those a client invents share one label value, so
# that what a client sends cannot multiply the series.
_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
)

RejectedBy = Literal[
    "max_body_bytes",  # 413: the body has too many bytes
    "max_elements",  # 413: the arrays hold too many numbers
    "max_classes",  # 413: a matrix has too many columns
    "content_type",  # 415: the body is not application/json
    "max_in_flight",  # 503: the worker already processes its most requests
]

# prometheus-client leaves these unannotated; these are their signatures.
_disable_created_metrics: Callable[[], None] = disable_created_metrics
_collect_files: Callable[[CollectorRegistry, str], object] = (
    multiprocess.MultiProcessCollector
)
_mark_process_dead: Callable[[int, str], None] = multiprocess.mark_process_dead

# The _created series double every counter's output and mean nothing across
# worker processes; prometheus-client can only drop them for the whole process.
_disable_created_metrics()

REGISTRY: Final = CollectorRegistry(auto_describe=True)

# From half a millisecond (a small request on loopback) to 10 s (a body of tens
# of MiB on a busy worker), about three buckets per decade.
LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

REQUESTS: Final = Counter(
    "lossgrad_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ("method", "route", "status"),
    registry=REGISTRY,
)
LATENCY: Final = Histogram(
    "lossgrad_http_request_duration_seconds",
    "Time from a request's arrival at the app to the end of its response.",
    ("method", "route"),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
IN_FLIGHT: Final = Gauge(
    "lossgrad_http_requests_in_flight",
    "HTTP requests being processed, over all live worker processes.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
ELEMENTS: Final = Counter(
    "lossgrad_elements_processed",
    "Prediction elements of successful requests, by operation.",
    ("operation",),
    registry=REGISTRY,
)
REJECTED: Final = Counter(
    "lossgrad_requests_rejected",
    "Requests refused by a limit, by the setting that refused them.",
    ("limit",),
    registry=REGISTRY,
)

# Series that exist before their first event read 0 rather than being absent,
# so that rate() and alerts work from the start.
for _limit in get_args(RejectedBy):
    REJECTED.labels(_limit)


def multiprocess_directory() -> str | None:
    """The directory shared by the worker processes, or None in a single process."""
    return os.environ.get(MULTIPROCESS_ENV) or None


if multiprocess_directory() is None:
    # Process and GC figures are those of one process: meaningful only when
    # one process serves everything.  The platform collector is left out: it
    # would publish the Python version, and no response names a version.
    ProcessCollector(registry=REGISTRY)
    GCCollector(registry=REGISTRY)


def record_rejection(limit: RejectedBy) -> None:
    """Count one request refused by ``limit``; call it where the refusal is raised."""
    REJECTED.labels(limit).inc()


# The labelled children by (method, route, status): a dict lookup per request
# instead of labels(), which validates and locks each time.
_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
_elements: dict[str, Counter] = {}


def record_request(
    method: str,
    route: str,
    status: int,
    seconds: float,
    operation: str | None,
    elements: int | None,
) -> None:
    """Count one answered request, its latency and, if it succeeded, its elements."""
    if method not in _METHODS:
        method = OTHER_METHOD
    key = (method, route, status)
    series = _series.get(key)
    if series is None:
        series = _series[key] = (
            REQUESTS.labels(method, route, str(status)),
            LATENCY.labels(method, route),
        )
    requests, latency = series
    requests.inc()
    latency.observe(seconds)
    if operation is not None and elements is not None and status < 400:
        counter = _elements.get(operation)
        if counter is None:
            counter = _elements[operation] = ELEMENTS.labels(operation)
        counter.inc(elements)


def exposition() -> bytes:
    """Every metric in the Prometheus text format, summed over all workers."""
    directory = multiprocess_directory()
    if directory is None:
        return generate_latest(REGISTRY)
    # A fresh registry per scrape: the collector reads the files as they are now.
    registry = CollectorRegistry()
    _collect_files(registry, directory)
    return generate_latest(registry)


def mark_worker_stopped() -> None:
    """Drop this process's live gauges (in flight) when its worker stops."""
    directory = multiprocess_directory()
    if directory is not None:
        _mark_process_dead(os.getpid(), directory)
