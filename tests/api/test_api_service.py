"""Health, info, the Server-Timing header, and which requests leave the loop."""

from __future__ import annotations

import asyncio
import re

import anyio
import pytest
from api_helpers import assert_problem

from service import core
from service.app import create_app, service_version
from service.settings import Settings


def test_live_is_ok(client):
    response = client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_is_ready_until_shutdown(client):
    assert client.get("/health/ready").json() == {"status": "ready"}

    client.app.state.ready = False
    response = client.get("/health/ready")

    assert_problem(response, 503)
    assert response.headers["retry-after"] == "1"


def test_info_reports_version_limits_and_losses(make_client):
    settings = Settings(
        max_body_bytes=2048,
        max_elements=77,
        max_classes=5,
        offload_min_elements=9,
        max_in_flight=3,
        compute_threads=4,
    )
    client = make_client(settings)

    body = client.get("/v1/info").json()

    assert body["name"] == "lossgrad"
    assert body["version"] == service_version() != "0+unknown"
    assert body["api_version"] == "v1"
    assert body["limits"] == {
        "max_body_bytes": 2048,
        "max_elements": 77,
        "max_classes": 5,
        "offload_min_elements": 9,
        "max_in_flight": 3,
        "compute_threads": 4,
    }
    paths = {loss["name"]: loss["path"] for loss in body["losses"]}
    assert paths == {
        "binary_cross_entropy": "/v1/losses/binary-cross-entropy",
        "cross_entropy": "/v1/losses/cross-entropy",
    }
    for loss in body["losses"]:
        assert client.post(loss["path"], json={}).status_code == 422


@pytest.mark.parametrize("path", ["/health/live", "/v1/info"])
def test_get_routes_send_server_timing(client, path):
    header = client.get(path).headers["server-timing"]

    assert re.fullmatch(r"app;dur=\d+\.\d{3}", header)


def test_server_timing_measures_the_request(client, monkeypatch):
    real = core.sigmoid_family

    def slow(x, order):
        import time

        time.sleep(0.05)
        return real(x, order)

    monkeypatch.setattr(core, "sigmoid_family", slow)

    response = client.post("/v1/sigmoid", json={"x": [0.0]})

    metrics = dict(
        metric.split(";dur=")
        for metric in response.headers["server-timing"].split(", ")
    )
    assert list(metrics) == ["app", "read", "process"]
    app, read, process = (float(metrics[name]) for name in ("app", "read", "process"))
    assert 50.0 <= process < 5000.0
    assert 0.0 <= read < process <= app


def test_large_requests_run_off_the_event_loop_small_ones_on_it(
    make_client, monkeypatch
):
    client = make_client(Settings(offload_min_elements=1000))
    seen = []
    real = core.sigmoid_family

    def probe(x, order):
        try:
            asyncio.get_running_loop()
            seen.append("event loop")
        except RuntimeError:
            seen.append("worker thread")
        return real(x, order)

    monkeypatch.setattr(core, "sigmoid_family", probe)

    client.post("/v1/sigmoid", json={"x": [0.0] * 10})
    client.post("/v1/sigmoid", json={"x": [0.0] * 1000})

    assert seen == ["event loop", "worker thread"]


def test_readiness_follows_the_lifespan_each_time_it_runs(make_client):
    app = create_app(Settings())
    client = make_client(app=app)

    async def ready_while_running() -> bool:
        async with app.router.lifespan_context(app):
            return bool(app.state.ready)

    for _ in range(2):
        assert anyio.run(ready_while_running) is True
        assert app.state.ready is False
        assert_problem(client.get("/health/ready"), 503)
