"""/metrics with ``lossgrad serve --workers 2``: every scrape, whichever worker
answers it, reports the requests of both workers, and the directory the workers
shared is gone once the server stops."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from ecosystem_helpers import (
    CLEAN_EXITS,
    LiveServer,
    clean_environment,
    parse_metrics,
    sample,
)

pytestmark = pytest.mark.slow

REQUESTS = "lossgrad_http_requests_total"
SIGMOID = {"method": "POST", "route": "/v1/sigmoid", "status": "200"}
# Bounds of the loop that spreads requests over both workers.
MAX_REQUESTS = 400
MAX_SECONDS = 30.0


def serving_pids(server: LiveServer, request_ids: set[str]) -> set[int]:
    """The worker processes that logged an access line for these requests."""
    pids = set()
    for line in server.stdout_lines():
        record = json.loads(line)
        if record.get("request_id") in request_ids:
            pids.add(record["pid"])
    return pids


def test_two_workers_add_up_in_every_scrape(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    server = LiveServer(
        tmp_path, ["--workers", "2"], clean_environment(TMPDIR=str(temp))
    )
    try:
        [directory] = temp.iterdir()
        assert directory.name.startswith("lossgrad-metrics-")

        # A new connection per request lets either worker accept it; go on
        # until both have answered some (the kernel picks, not the test).
        sent: set[str] = set()
        deadline = time.monotonic() + MAX_SECONDS
        while len(sent) < MAX_REQUESTS and time.monotonic() < deadline:
            request_id = f"spread-{len(sent)}"
            response = httpx.post(
                f"{server.base_url}/v1/sigmoid",
                json={"x": [0.0, 1.0, 2.0]},
                headers={"X-Request-ID": request_id},
                timeout=10.0,
            )
            assert response.status_code == 200
            sent.add(request_id)
            if len(sent) % 10 == 0 and len(serving_pids(server, sent)) == 2:
                break
        assert len(serving_pids(server, sent)) == 2, "one worker got every request"

        # Scrapes on new connections land on either worker; each sees all.
        totals = set()
        elements = set()
        for _ in range(10):
            text = httpx.get(f"{server.base_url}/metrics", timeout=10.0).text
            samples = parse_metrics(text)
            totals.add(sample(samples, REQUESTS, **SIGMOID))
            elements.add(
                sample(
                    samples, "lossgrad_elements_processed_total", operation="sigmoid"
                )
            )
            # livesum: one number for the server, this scrape being in flight.
            assert sample(samples, "lossgrad_http_requests_in_flight") == 1
        assert totals == {len(sent)}
        assert elements == {3 * len(sent)}
        pid_files = {path.stem.rsplit("_", 1)[1] for path in directory.glob("*.db")}
        assert len(pid_files) >= 2
    finally:
        assert server.stop() in CLEAN_EXITS
    assert list(temp.iterdir()) == [], "the metrics directory is removed at exit"


def test_a_given_directory_is_emptied_of_an_earlier_run(tmp_path):
    given = tmp_path / "metrics"
    given.mkdir()
    # An earlier run's counter file: 1000 sigmoid requests, written by the same
    # library in multiprocess mode.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from prometheus_client import Counter\n"
            "labels = ('method', 'route', 'status')\n"
            "c = Counter('lossgrad_http_requests', 'h', labels)\n"
            "c.labels('POST', '/v1/sigmoid', '200').inc(1000)\n",
        ],
        env=clean_environment(PROMETHEUS_MULTIPROC_DIR=str(given)),
        check=True,
        timeout=60,
    )
    assert list(given.glob("counter_*.db"))

    server = LiveServer(
        tmp_path, [], clean_environment(PROMETHEUS_MULTIPROC_DIR=str(given))
    )
    try:
        httpx.post(f"{server.base_url}/v1/sigmoid", json={"x": [1.0]}, timeout=10.0)
        samples = parse_metrics(httpx.get(f"{server.base_url}/metrics").text)
    finally:
        assert server.stop() in CLEAN_EXITS

    assert sample(samples, REQUESTS, **SIGMOID) == 1
    # Multiprocess mode: process figures of one worker are not reported.
    assert not any(name.startswith("process_") for name, _ in samples)
    assert given.is_dir(), "a directory the operator gave is kept"
