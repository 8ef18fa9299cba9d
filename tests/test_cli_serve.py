"""``lossgrad serve`` for real: a server process on a free loopback port, called
over TCP, and every curl example of README.md run against it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import free_port, lossgrad_command, stop_process

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_BASE_URL = "http://127.0.0.1:8000"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class Server:
    """A running ``lossgrad serve`` and the file its logs go to."""

    def __init__(self, base_url: str, log_path: Path) -> None:
        self.base_url = base_url
        self.log_path = log_path

    def log_lines(self) -> list[str]:
        text = self.log_path.read_text(encoding="utf-8")
        return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOSSGRAD_")}
    env["LOSSGRAD_LOG_FORMAT"] = "json"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [lossgrad_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base_url}/health/live", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start in time"
            time.sleep(0.1)
        yield Server(base_url, log_path)
    finally:
        stop_process(process, STOP_TIMEOUT)


def test_the_server_answers_over_tcp(server):
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        live = client.get("/health/live")
        ready = client.get("/health/ready")
        info = client.get("/v1/info")
        sigmoid = client.post("/v1/sigmoid", json={"x": [0.0], "order": 2})
        problem = client.post("/v1/sigmoid", json={"x": [True]})

    assert live.json() == {"status": "ok"}
    assert ready.json() == {"status": "ready"}
    assert info.json()["limits"]["max_elements"] == 10_000_000
    assert sigmoid.json() == {
        "value": [0.5],
        "derivative": [0.25],
        "second_derivative": [0.0],
    }
    assert sigmoid.headers["server-timing"].startswith("app;dur=")
    assert "server" not in sigmoid.headers
    assert problem.status_code == 422
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json()["errors"][0]["loc"] == ["body", "x", 0]


def test_the_server_logs_json_lines_with_an_access_line(server):
    httpx.get(f"{server.base_url}/v1/info", timeout=10.0)

    deadline = time.monotonic() + 5.0
    while True:
        records = [json.loads(line) for line in server.log_lines()]
        access = [r for r in records if r.get("path") == "/v1/info"]
        if access or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert access and access[-1]["status"] == 200
    assert access[-1]["logger"] == "lossgrad.access"
    assert {"ts", "level", "msg", "duration_ms", "method"} <= access[-1].keys()


# README examples: a ```bash block holding one curl command, then a ```json
# block holding what it prints.
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_examples() -> list[tuple[str, str]]:
    blocks = _BLOCK.findall(README.read_text(encoding="utf-8"))
    examples = []
    for (language, code), following in zip(
        blocks, [*blocks[1:], ("", "")], strict=True
    ):
        if language == "bash" and code.lstrip().startswith("curl "):
            assert following[0] == "json", f"no json output after: {code}"
            examples.append((code.replace("\\\n", " ").strip(), following[1]))
    return examples


def run_with_curl(argv: list[str]) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=30, check=True
    )
    return result.stdout


def run_with_httpx(argv: list[str]) -> str:
    """What curl would do with the few options the README uses."""
    assert argv[0] == "curl"
    method, headers, data, url = None, {}, None, None
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument in ("-s", "-S", "-sS"):
            continue
        if argument == "-X":
            method = next(arguments)
        elif argument == "-H":
            name, _, value = next(arguments).partition(":")
            headers[name.strip()] = value.strip()
        elif argument in ("-d", "--data", "--data-raw"):
            data = next(arguments).encode()
        elif argument.startswith("http"):
            url = argument
        else:
            raise AssertionError(
                f"README uses a curl option this test lacks: {argument}"
            )
    if data is not None:
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    response = httpx.request(
        method or ("POST" if data is not None else "GET"),
        url,
        headers=headers,
        content=data,
        timeout=30.0,
    )
    return response.text


def assert_json_close(actual: Any, expected: Any, where: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), where
        for key in expected:
            assert_json_close(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_json_close(a, e, f"{where}[{i}]")
    elif isinstance(expected, float) or (
        isinstance(expected, int) and isinstance(actual, float)
    ):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), where
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12), where
    else:
        assert actual == expected, where


def test_readme_has_a_curl_example_for_every_route():
    commands = " ".join(command for command, _ in EXAMPLES)
    for path in (
        "/v1/sigmoid",
        "/v1/softmax",
        "/v1/losses/binary-cross-entropy",
        "/v1/losses/cross-entropy",
        "/v1/info",
        "/health/live",
        "/health/ready",
    ):
        assert f"{README_BASE_URL}{path}" in commands, path


RUNNERS = {"curl": run_with_curl, "httpx": run_with_httpx}
EXAMPLES = readme_examples()


def test_readme_has_its_examples():
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("runner", sorted(RUNNERS))
@pytest.mark.parametrize(
    ("command", "shown"), EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))]
)
def test_readme_curl_example_prints_what_the_readme_shows(
    server, runner, command, shown
):
    if runner == "curl" and shutil.which("curl") is None:
        pytest.skip("curl is not installed; the httpx runner covers the examples")
    argv = [
        part.replace(README_BASE_URL, server.base_url) for part in shlex.split(command)
    ]

    output = RUNNERS[runner](argv)

    assert_json_close(json.loads(output), json.loads(shown), command)
