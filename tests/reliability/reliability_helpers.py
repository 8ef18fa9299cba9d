"""Helpers for the reliability tests: a real ``lossgrad serve`` process on a free
loopback port, a raw HTTP/1.1 client (so a test controls every byte and every
moment of a request), and the server's memory."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import orjson
import psutil
from support import free_port, lossgrad_command, stop_process

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

PROBLEM_KEYS = {"type", "title", "status", "detail"}

# What must never appear in a response: traces, source paths, library names
# followed by a version.
LEAK_PATTERNS = re.compile(
    r"Traceback|File \"|\.py\b|/work/|site-packages|"
    r"(?i:uvicorn|starlette|fastapi|pydantic|python|numpy|orjson)[ /]?v?\d+\.\d+"
)


@dataclass
class Server:
    """A ``lossgrad serve`` subprocess and the file its logs go to."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        """Resident memory of the server process, in bytes."""
        return int(psutil.Process(self.pid).memory_info().rss)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                records.append(orjson.loads(line))
        return records

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        stop_process(self.process, STOP_TIMEOUT)


def start_server(
    log_dir: Path, env: Mapping[str, str] | None = None, workers: int = 1
) -> Server:
    """Start ``lossgrad serve`` on a free loopback port and wait until it is live."""
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("LOSSGRAD_")}
    server_env["LOSSGRAD_LOG_FORMAT"] = "json"
    server_env.update(env or {})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                lossgrad_command(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_env,
            cwd=ROOT,
        )
    server = Server(process, port, log_path, dict(env or {}))
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert process.poll() is None, server.log_text()
        try:
            response = httpx.get(f"{server.base_url}/health/live", timeout=1.0)
            if response.status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(
                "the server did not start in time:\n" + server.log_text()
            )
        time.sleep(0.05)


@dataclass
class RawResponse:
    """An HTTP response read off a socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def request_bytes(
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    content_type: str | None = "application/json",
) -> bytes:
    """An HTTP/1.1 request with a Content-Length, as bytes."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if content_type is not None and (body or method == "POST"):
        lines.append(f"Content-Type: {content_type}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and headers (names lower-cased) of a response head."""
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


def read_response(sock: socket.socket) -> RawResponse:
    """Read one response with a Content-Length from a blocking socket."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buffer)} bytes")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status, headers = parse_head(head)
    length = int(headers.get("content-length", "0"))
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("connection closed mid-body")
        body += chunk
    return RawResponse(status, headers, bytes(body[:length]))


def connect(port: int, timeout: float = 30.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def assert_problem_bytes(response: RawResponse, status: int) -> dict[str, Any]:
    """``response`` is the problem document for ``status``, and leaks nothing."""
    assert response.status == status, (response.status, response.body[:500])
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document.keys() >= PROBLEM_KEYS
    assert document["status"] == status
    assert_no_leak(response.body)
    return document


def assert_no_leak(body: bytes | str) -> None:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    found = LEAK_PATTERNS.search(text)
    assert found is None, f"the response shows {found.group(0)!r}: {text[:300]}"


class InProcessClient:
    """A synchronous httpx client of an ASGI app, whose event loop runs in a
    background thread; the app's lifespan does not run."""

    def __init__(self, app: Any) -> None:
        self._stack = ExitStack()
        self._portal = self._stack.enter_context(
            anyio.from_thread.start_blocking_portal()
        )
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://lossgrad.test"
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self._portal.call(
            partial(self._client.request, method, url, **kwargs)
        )
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def close(self) -> None:
        self._portal.call(self._client.aclose)
        self._stack.close()
