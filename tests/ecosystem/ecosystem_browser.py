"""Headless Chromium driven over the Chrome DevTools Protocol, for the docs test.

Two independent records of where the browser went:

- every request a page (or a worker it starts) sends, from the protocol's
  ``Network.requestWillBeSent`` events;
- every connection the browser opens to any host but loopback: Chromium is
  told to use a proxy on 127.0.0.1 (it never proxies loopback), and the proxy
  notes the request line of each connection and answers 502.  Nothing can
  reach the internet that way, and nothing that tried goes unnoticed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
START_TIMEOUT = 30.0

# Flags that keep a headless Chromium quiet and self-contained on this machine.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--no-default-browser-check",
    "--window-size=1280,2000",
)


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class RecordingProxy:
    """An HTTP proxy on loopback that forwards nothing and notes everything."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = int(self._server.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2.0)
                try:
                    first_line = connection.recv(4096).split(b"\r\n", 1)[0]
                    self.requests.append(first_line.decode("latin-1"))
                    connection.sendall(
                        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                        b"Connection: close\r\n\r\n"
                    )
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()


@contextlib.contextmanager
def chromium(binary: str, profile: Path, proxy_port: int) -> Iterator[str]:
    """Start Chromium; yield the browser's DevTools websocket URL."""
    process = subprocess.Popen(
        [
            binary,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--proxy-server=http://127.0.0.1:{proxy_port}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT
        while not (port_file.exists() and len(port_file.read_text().split()) == 2):
            if process.poll() is not None:
                raise RuntimeError(f"chromium exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port, path = port_file.read_text().split()
        yield f"ws://127.0.0.1:{port}{path}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class DevTools:
    """One DevTools connection: commands with replies, and the events seen."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._next_id = 0
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._watchers: set[asyncio.Task[None]] = set()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self._connection:
            message = json.loads(raw)
            if "id" in message:
                future = self._replies.pop(message["id"])
                if "error" in message:
                    future.set_exception(RuntimeError(str(message["error"])))
                else:
                    future.set_result(message.get("result", {}))
                continue
            self.events.append(message)
            if message["method"] == "Target.attachedToTarget":
                # A worker of the page: record its requests too.
                session = message["params"]["sessionId"]
                watcher = asyncio.create_task(self._watch(session))
                self._watchers.add(watcher)
                watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, session: str) -> None:
        with contextlib.suppress(RuntimeError):
            await self.send("Network.enable", session=session)
            await self.send("Runtime.runIfWaitingForDebugger", session=session)

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str = ""
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method}
        message["params"] = params or {}
        if session:
            message["sessionId"] = session
        future = asyncio.get_running_loop().create_future()
        self._replies[self._next_id] = future
        await self._connection.send(json.dumps(message))
        return await asyncio.wait_for(future, timeout=30)

    def requested_urls(self) -> list[str]:
        return [
            event["params"]["request"]["url"]
            for event in self.events
            if event["method"] == "Network.requestWillBeSent"
        ]

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class Page:
    """A browser tab attached over one flat DevTools session."""

    def __init__(self, tools: DevTools, session: str) -> None:
        self.tools = tools
        self.session = session

    async def send(
        self, method: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self.tools.send(method, params, session=self.session)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})

    async def evaluate(self, expression: str) -> Any:
        reply = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(str(reply["exceptionDetails"]))
        return reply["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"never true: {expression}")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path) -> None:
        reply = await self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(reply["data"]))


@contextlib.asynccontextmanager
async def open_page(websocket_url: str) -> AsyncIterator[Page]:
    """A new tab recording its network activity and its workers'."""
    async with connect(websocket_url, max_size=None) as connection:
        tools = DevTools(connection)
        try:
            target = await tools.send("Target.createTarget", {"url": "about:blank"})
            attached = await tools.send(
                "Target.attachToTarget",
                {"targetId": target["targetId"], "flatten": True},
            )
            page = Page(tools, attached["sessionId"])
            await page.send("Network.enable")
            await page.send("Page.enable")
            await page.send("Runtime.enable")
            await page.send(
                "Target.setAutoAttach",
                {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True},
            )
            yield page
        finally:
            await tools.close()
