"""The event loop stays free while large requests are processed: on a real
server with one worker, ``/health/live`` answers within 1 s, every time, while
requests of a million numbers are being parsed, computed and encoded."""

from __future__ import annotations

import threading
import time

import pytest
from load import assert_matches, bce_template, sigmoid_template
from reliability_helpers import connect, read_response, request_bytes

ELEMENTS = 1_000_000
PROBE_INTERVAL = 0.02
LIVE_WITHIN = 1.0

pytestmark = pytest.mark.slow


def test_live_answers_within_a_second_while_a_million_numbers_are_processed(
    make_server,
):
    server = make_server()
    heavy = [
        sigmoid_template("sigmoid-1e6", ELEMENTS, 11),
        bce_template("bce-1e6", ELEMENTS, 12),
    ]
    probe = request_bytes("GET", "/health/live")
    windows: list[tuple[float, float]] = []
    probes: list[tuple[float, float]] = []  # (sent, answered)
    done = threading.Event()

    def send_heavy(index: int) -> None:
        template = heavy[index]
        with connect(server.port, timeout=60.0) as sock:
            sock.sendall(template.request)
            sent = time.monotonic()  # the whole body is with the server
            response = read_response(sock)
            windows.append((sent, time.monotonic()))
        assert_matches(template, response)

    def send_probes() -> None:
        with connect(server.port) as sock:
            while not done.is_set():
                sent = time.monotonic()
                sock.sendall(probe)
                response = read_response(sock)
                assert response.status == 200
                probes.append((sent, time.monotonic()))
                time.sleep(PROBE_INTERVAL)

    prober = threading.Thread(target=send_probes)
    prober.start()
    try:
        senders = [threading.Thread(target=send_heavy, args=(i,)) for i in range(2)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=120.0)
    finally:
        done.set()
        prober.join(timeout=10.0)

    assert len(windows) == 2, "a large request failed; see the thread's exception"
    start, end = min(w[0] for w in windows), max(w[1] for w in windows)
    during = [(s, a) for s, a in probes if s >= start and a <= end]
    slowest = max(a - s for s, a in probes)
    print(
        f"\nevent loop: 2 requests of {ELEMENTS} numbers took {end - start:.2f} s "
        f"after their bodies arrived; {len(during)} probes of /health/live answered "
        f"meanwhile, the slowest in {slowest * 1e3:.0f} ms"
    )
    assert slowest < LIVE_WITHIN
    assert len(during) >= 5
