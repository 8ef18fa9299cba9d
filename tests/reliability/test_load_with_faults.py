"""Load with faults against a real ``lossgrad serve``: 32 connections for 20 s,
mixing valid requests of three sizes (each answer checked against the core),
10 % malformed requests and clients that leave in the middle of a body.

No answer may be a 5xx, every valid answer must carry the core's numbers, and
the server's memory after the run must be within 10 % of its memory after the
warm-up (both measured idle, after the same load).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from load import malformed_requests, run_load, templates
from reliability_helpers import Server, start_server

CONNECTIONS = 32
WARM_UP_SECONDS = 15.0
LOAD_SECONDS = 20.0
SETTLE_SECONDS = 1.0
RSS_TOLERANCE = 0.10

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("load"))
    yield running
    running.stop()


def idle_rss(server: Server) -> int:
    """The server's memory once the connections of a run have wound down."""
    time.sleep(SETTLE_SECONDS)
    return server.rss()


def test_load_with_faults_gets_no_5xx_right_numbers_and_flat_memory(server):
    pool = templates()
    malformed = malformed_requests()

    warm_up = asyncio.run(
        run_load(server.port, WARM_UP_SECONDS, CONNECTIONS, pool, malformed, seed=1)
    )
    rss_warm = idle_rss(server)
    tally = asyncio.run(
        run_load(server.port, LOAD_SECONDS, CONNECTIONS, pool, malformed, seed=1000)
    )
    rss_after = idle_rss(server)

    print(
        f"\nload: {tally.answered} answered in {LOAD_SECONDS:.0f} s over "
        f"{CONNECTIONS} connections ({tally.valid} valid, {tally.malformed} "
        f"malformed, {tally.abandoned} abandoned mid-body); statuses "
        f"{dict(sorted(tally.statuses.items()))}; RSS after warm-up "
        f"{rss_warm / 2**20:.1f} MiB, after the run {rss_after / 2**20:.1f} MiB"
    )
    for run in (warm_up, tally):
        assert run.failures == []
        assert run.server_errors == 0
    assert tally.valid > 1000 and tally.malformed > 100 and tally.abandoned > 50
    # Every template was answered and verified against the core.
    assert all(t.verified is not None for size in pool.values() for t in size)
    assert abs(rss_after - rss_warm) <= RSS_TOLERANCE * rss_warm
    assert server.process.poll() is None


def test_abandoned_requests_are_logged_as_499_not_as_errors(server):
    records = server.log_records()
    statuses = access_statuses(records)

    assert statuses.get(499, 0) > 0
    assert not any(status >= 500 for status in statuses)
    assert not [r for r in records if r.get("level") in ("error", "critical")]


def access_statuses(records: list[dict[str, object]]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for record in records:
        status = record.get("status")
        if record.get("logger") == "lossgrad.access" and isinstance(status, int):
            counts[status] = counts.get(status, 0) + 1
    return counts
