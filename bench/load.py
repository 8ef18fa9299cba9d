"""A small HTTP/1.1 load generator over keep-alive connections, loopback only.

Each of ``connections`` coroutines sends the same request again and again on
its own connection until ``max_requests`` have been sent in all or
``max_seconds`` have passed, whichever comes first.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured."""

    requests: int
    errors: int
    seconds: float
    cpu_seconds: float  # this process's own CPU time during the run

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_share(self) -> float:
        """The generator's CPU use, in cores (of the machine's two)."""
        return self.cpu_seconds / self.seconds if self.seconds else 0.0


def _request_bytes(url: str, path: str, body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return host, port, head + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _run(
    url: str,
    path: str,
    body: bytes,
    connections: int,
    max_requests: int,
    max_seconds: float,
    churn: int,
) -> tuple[int, int]:
    host, port, request = _request_bytes(url, path, body)
    deadline = time.monotonic() + max_seconds
    sent = 0
    done = errors = 0

    async def client() -> None:
        nonlocal sent, done, errors
        while True:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                for _ in range(churn or max_requests):
                    if sent >= max_requests or time.monotonic() >= deadline:
                        return
                    sent += 1
                    writer.write(request)
                    status = await _read_response(reader)
                    done += 1
                    errors += status != 200
            finally:
                writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return done, errors


def run_load(
    url: str,
    path: str,
    body: bytes,
    *,
    connections: int = 16,
    max_requests: int = 20_000,
    max_seconds: float = 5.0,
    churn: int = 0,
) -> LoadResult:
    """Send ``body`` to ``url + path`` under load; ``churn`` > 0 reconnects each
    connection after that many requests, so new connections spread over workers."""
    cpu_start = time.process_time()
    start = time.perf_counter()
    done, errors = asyncio.run(
        _run(url, path, body, connections, max_requests, max_seconds, churn)
    )
    seconds = time.perf_counter() - start
    return LoadResult(done, errors, seconds, time.process_time() - cpu_start)
