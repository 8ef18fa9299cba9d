"""Build the image by replaying the Dockerfile on the host, then run its CMD.

There is no Docker engine here, so this is the check that a broken RUN step, a
missing COPY source, a wrong CMD or HEALTHCHECK is caught before anyone builds the
image for real: the Dockerfile's own commands install lossgrad from a clean copy of
the build context into a fresh virtual environment, and the image's CMD serves on
loopback with the image's environment.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from dockerfile_tools import Image, Replay, Stage, build_context, seconds

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# Bounds for one replay and one server start on this 2-core machine; a fresh
# install takes well under a minute here.
RUN_STEP_TIMEOUT = 300.0
START_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def image(
    repo: Path, stages: list[Stage], tmp_path_factory: pytest.TempPathFactory
) -> Image:
    """The final stage after every build step ran, under a scratch root."""
    (base,) = {stage.base for stage in stages}
    image_minor = base.split(":")[1].split(".")[:2]
    if image_minor != ["3", str(sys.version_info.minor)] or sys.version_info.major != 3:
        pytest.skip(f"the replay needs Python {'.'.join(image_minor)} for {base}")

    workspace = tmp_path_factory.mktemp("image")
    context = workspace / "context"
    build_context(repo, context)
    return Replay(stages, context, workspace, RUN_STEP_TIMEOUT).run()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tree(root: Path) -> dict[str, float]:
    return {
        str(path): path.lstat().st_mtime for path in root.rglob("*") if path.exists()
    }


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        status: int = response.status
        return status


def _wait_until_live(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"CMD exited {server.returncode} before serving {url}:\n"
                + log.read_text(errors="replace")
            )
        try:
            if _get(url) == 200:
                return
        except OSError:
            pass  # not listening yet, or not live yet
        time.sleep(0.2)
    pytest.fail(
        f"CMD did not answer {url} within {START_TIMEOUT} s:\n"
        + log.read_text(errors="replace")
    )


def test_image_holds_an_installed_lossgrad(image: Image, tmp_path: Path) -> None:
    # Only the venv reaches the runtime stage: no source tree, no requirements file.
    assert sorted(
        p.relative_to(image.root).as_posix() for p in image.root.iterdir()
    ) == ["opt"]
    assert image.which("lossgrad").is_relative_to(image.root)
    python = image.which("python")
    assert python.is_relative_to(image.root)

    # The package imports from the image's site-packages, not from any source tree.
    done = subprocess.run(
        [
            str(python),
            "-c",
            "import service.settings; print(service.settings.__file__)",
        ],
        env=image.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    location = Path(done.stdout.strip())
    assert location.is_relative_to(image.root), location
    assert "site-packages" in location.parts

    # The runtime user is not root and owns nothing: everything must be readable.
    for path in image.root.rglob("*"):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        assert mode & 0o004, f"{path} is not world-readable"
        if path.is_dir():
            assert mode & 0o001, f"{path} is not world-searchable"


def test_cmd_serves_health_and_healthcheck_agrees(image: Image, tmp_path: Path) -> None:
    port = _free_port()
    # The image's environment, but on loopback and a free port for the test.
    env = dict(image.env, LOSSGRAD_HOST="127.0.0.1", LOSSGRAD_PORT=str(port))
    cmd = [str(image.which(image.cmd[0])), *image.cmd[1:]]
    healthcheck = [str(image.which(image.healthcheck[0])), *image.healthcheck[1:]]
    healthcheck_timeout = seconds(image.healthcheck_flags["timeout"])
    cwd, home = tmp_path / "cwd", Path(env["HOME"])
    cwd.mkdir()
    home_before = sorted(home.iterdir())
    before = _tree(image.root)
    base = f"http://127.0.0.1:{port}"

    def run_healthcheck() -> int:
        return subprocess.run(
            healthcheck,
            env=env,
            cwd=cwd,
            capture_output=True,
            timeout=healthcheck_timeout + 5,
            check=False,
        ).returncode

    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_live(server, base + "/health/live", log_path)
        assert _get(base + "/health/ready") == 200
        assert run_healthcheck() == 0

        # The host came from LOSSGRAD_HOST alone: the socket is on loopback only.
        processes = [psutil.Process(server.pid), *psutil.Process(server.pid).children()]
        listening = {
            (conn.laddr.ip, conn.laddr.port)
            for process in processes
            for conn in process.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN
        }
        assert listening == {("127.0.0.1", port)}, listening

        # docker stop: SIGTERM to the exec-form CMD, which is PID 1 in a container.
        # uvicorn shuts down and then re-raises the signal, so either status is a
        # clean stop.
        server.send_signal(signal.SIGTERM)
        graceful = float(env.get("LOSSGRAD_GRACEFUL_TIMEOUT", "30"))
        status = server.wait(timeout=graceful + 10)
        assert status in (0, -signal.SIGTERM), log_path.read_text(errors="replace")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)

    # With the server gone the health check must report unhealthy.
    assert run_healthcheck() != 0
    # Nothing was written into the image (read-only root filesystem in Kubernetes),
    # the working directory or the home directory.
    assert _tree(image.root) == before
    assert list(cwd.iterdir()) == []
    assert sorted(home.iterdir()) == home_before
