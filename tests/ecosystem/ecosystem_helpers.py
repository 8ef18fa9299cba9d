"""Helpers for the ecosystem tests: live servers, in-process calls, metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
from prometheus_client.parser import text_string_to_metric_families
from support import free_port, lossgrad_command, stop_process

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# uvicorn ends a single process by re-raising the SIGTERM it handled; its
# supervisor of several workers exits with 0.
CLEAN_EXITS = (0, -signal.SIGTERM)


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without LOSSGRAD_ or Prometheus settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LOSSGRAD_") and k.upper() != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update(extra)
    return env


class LiveServer:
    """``lossgrad serve`` on a free loopback port, its stdout and stderr in files."""

    def __init__(self, folder: Path, args: list[str], env: Mapping[str, str]) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = folder / "stdout.log"
        self.stderr_path = folder / "stderr.log"
        with (
            self.stdout_path.open("wb") as stdout,
            self.stderr_path.open("wb") as stderr,
        ):
            self.process = subprocess.Popen(
                [
                    lossgrad_command(),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *args,
                ],
                stdout=stdout,
                stderr=stderr,
                env=dict(env),
                cwd=folder,
            )
        try:
            self._wait_until_live()
        except BaseException:
            self.stop()
            raise

    def _wait_until_live(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process.poll() is None, self.output()
            try:
                response = httpx.get(f"{self.base_url}/health/live", timeout=1.0)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start in time"
            time.sleep(0.1)

    def output(self) -> str:
        return self.stdout_path.read_text(
            errors="replace"
        ) + self.stderr_path.read_text(errors="replace")

    def stdout_lines(self) -> list[str]:
        text = self.stdout_path.read_text(encoding="utf-8")
        return [line for line in text.splitlines() if line.strip()]

    def stop(self) -> int:
        """SIGTERM, as an orchestrator stops it; SIGKILL if it hangs."""
        return stop_process(self.process, STOP_TIMEOUT)


def call(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request to an ASGI app in this process."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://lossgrad.test"
        ) as client:
            return await client.request(method, url, **kwargs)

    return anyio.run(send)


Sample = tuple[str, tuple[tuple[str, str], ...]]


def parse_metrics(text: str) -> dict[Sample, float]:
    """Every sample of a Prometheus text exposition, by name and sorted labels.

    Parsed by prometheus-client's own parser, which is independent of the code
    that wrote the text.
    """
    samples: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = sample.value
    return samples


def sample(samples: Mapping[Sample, float], name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
