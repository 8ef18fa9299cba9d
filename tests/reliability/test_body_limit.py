"""The body limit holds while the body arrives: a 1 GB body streamed in chunks to
a real server is refused with 413 once it passes the limit, and the server's
memory grows by no more than the limit meanwhile.  A declared 1 GB body is
refused before any of it is read.

A body must be held whole to be parsed, so a body just under the limit costs the
limit; what the server holds besides is its read buffer, a chunk or two, for
which the memory bound allows 4 MiB.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Iterator

import pytest
from reliability_helpers import (
    Server,
    assert_problem_bytes,
    connect,
    parse_head,
    read_response,
    request_bytes,
    start_server,
)

from service.settings import Settings

GIB = 1 << 30
CHUNK = 1 << 20
LIMIT = Settings().max_body_bytes  # the default, 64 MiB
SEND_SECONDS = 30.0
READ_BUFFERS = 4 << 20

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("body-limit"))
    yield running
    running.stop()


class PeakMemory:
    """Samples a process's RSS every few milliseconds until stopped."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = server.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss())
            time.sleep(0.005)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def stream_until_answered(server: Server, total: int) -> tuple[int, bytes]:
    """Send up to ``total`` bytes of a chunked JSON body until the server
    answers; return the bytes sent and what it answered."""
    head = request_bytes("POST", "/v1/sigmoid", b"").replace(
        b"Content-Length: 0", b"Transfer-Encoding: chunked"
    )
    chunk = b"1," * (CHUNK // 2)
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    answer = b""
    deadline = time.monotonic() + SEND_SECONDS
    with connect(server.port) as sock:
        opening = b'{"x": ['
        sock.sendall(head + b"%x\r\n%s\r\n" % (len(opening), opening))
        while sent < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                break
            if writable:
                try:
                    sock.sendall(frame)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(chunk)
        sock.settimeout(10.0)
        while b"\r\n\r\n" not in answer:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
    return sent, answer


def test_a_streamed_gigabyte_is_refused_at_the_limit_without_being_held(server):
    before = server.rss()

    with PeakMemory(server) as memory:
        sent, answer = stream_until_answered(server, GIB)

    status, headers = parse_head(answer.partition(b"\r\n\r\n")[0])
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    mib = 2**20
    print(
        f"\nstreamed body: refused after {sent / mib:.0f} MiB sent of 1024 MiB; "
        f"server RSS {before / mib:.0f} MiB before, peak {memory.peak / mib:.0f} MiB "
        f"(+{(memory.peak - before) / mib:.0f} MiB, limit {LIMIT / mib:.0f} MiB)"
    )
    # Refused at the limit: what was sent beyond it sat in socket buffers.
    assert sent < LIMIT + 16 * CHUNK
    assert memory.peak - before < LIMIT + READ_BUFFERS


def test_a_declared_gigabyte_is_refused_before_it_is_read(server):
    head = request_bytes("POST", "/v1/sigmoid", b"").replace(
        b"Content-Length: 0", f"Content-Length: {GIB}".encode()
    )
    with connect(server.port) as sock:
        sock.sendall(head + b'{"x": [1,')
        response = read_response(sock)

    assert_problem_bytes(response, 413)


def test_the_server_still_answers_after_the_refusals(server):
    with connect(server.port) as sock:
        sock.sendall(request_bytes("POST", "/v1/sigmoid", b'{"x": [0], "order": 0}'))
        response = read_response(sock)

    assert response.status == 200
    assert response.json()["value"] == [0.5]
