"""The in-flight bound: a worker takes at most ``max_in_flight`` requests at once;
one more gets 503 with Retry-After and a problem document at once, the health
routes stay open, and every place is given back however a request ends."""

from __future__ import annotations

import math
import time

import anyio
import httpx
import pytest
from reliability_helpers import (
    assert_problem_bytes,
    connect,
    read_response,
    request_bytes,
)
from support import http_scope

from service.api.limits import ComputeSlots, InFlightLimitMiddleware
from service.app import create_app
from service.settings import Settings

BODY = b'{"x": [0, 1, 2], "order": 0}'
SIGMOIDS = [1.0 / (1.0 + math.exp(-x)) for x in (0, 1, 2)]


def test_one_request_too_many_gets_503_and_the_health_routes_stay_open():
    app = create_app(Settings(max_in_flight=1))
    release = anyio.Event()
    answers: dict[str, httpx.Response] = {}

    async def slow_body():
        yield BODY[:10]
        await release.wait()  # holds the only place while its body arrives
        yield BODY[10:]

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://t") as client,
            anyio.create_task_group() as group,
        ):

            async def slow() -> None:
                answers["slow"] = await client.post(
                    "/v1/sigmoid",
                    content=slow_body(),
                    headers={"content-type": "application/json"},
                )

            group.start_soon(slow)
            await anyio.sleep(0.05)
            answers["info"] = await client.get("/v1/info")
            answers["compute"] = await client.post("/v1/sigmoid", json={"x": [1]})
            answers["live"] = await client.get("/health/live")
            answers["ready"] = await client.get("/health/ready")
            release.set()
        answers["after"] = await httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ).get("/v1/info")

    anyio.run(run)

    for name in ("info", "compute"):
        response = answers[name]
        assert response.status_code == 503, name
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"] == "application/problem+json"
        assert "limit of 1 requests in flight" in response.json()["detail"]
    assert answers["live"].status_code == answers["ready"].status_code == 200
    assert answers["slow"].status_code == 200
    assert answers["slow"].json()["value"] == pytest.approx(SIGMOIDS, rel=1e-15)
    assert answers["after"].status_code == 200


def test_every_place_is_given_back_however_the_request_ends(make_client_for):
    client = make_client_for(Settings(max_in_flight=1, max_body_bytes=1024))
    endings = [
        client.post(
            "/v1/sigmoid", content=b"{", headers={"content-type": "application/json"}
        ),
        client.post("/v1/sigmoid", json={"x": ["a"]}),
        client.post(
            "/v1/sigmoid",
            content=b"1" * 2048,
            headers={"content-type": "application/json"},
        ),
        client.post(
            "/v1/sigmoid", content=b"{}", headers={"content-type": "text/plain"}
        ),
        client.get("/nowhere"),
        client.put("/v1/sigmoid"),
    ]

    assert [r.status_code for r in endings] == [400, 422, 413, 415, 404, 405]
    for _ in range(3):
        assert client.get("/v1/info").status_code == 200


def test_a_client_that_leaves_gives_its_place_back():
    limited = InFlightLimitMiddleware(create_app(Settings()), limit=1)
    messages = [
        {"type": "http.request", "body": b'{"x": [1,', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive():
        return messages.pop(0)

    async def send(message):
        pass

    scope = http_scope("/v1/sigmoid", [(b"content-type", b"application/json")])

    anyio.run(limited, scope, receive, send)
    assert limited.in_flight == 0


def test_compute_slots_run_at_most_their_number_at_once():
    slots = ComputeSlots(2)
    running = 0
    most = 0

    def work() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        time.sleep(0.05)
        running -= 1

    async def run() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(slots.run, work)

    anyio.run(run)
    assert most == 2


@pytest.mark.slow
def test_a_real_server_refuses_the_request_over_its_limit(make_server):
    server = make_server({"LOSSGRAD_MAX_IN_FLIGHT": "1"})
    request = request_bytes("POST", "/v1/sigmoid", BODY)
    info = request_bytes("GET", "/v1/info")

    with connect(server.port) as held:
        held.sendall(request[:-5])  # the rest of the body comes later
        deadline = time.monotonic() + 5.0
        while True:
            with connect(server.port) as other:
                other.sendall(info)
                refused = read_response(other)
            if refused.status == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        with connect(server.port) as probe:
            probe.sendall(request_bytes("GET", "/health/live"))
            live = read_response(probe)
        held.sendall(request[-5:])
        answered = read_response(held)
    with connect(server.port) as after:
        after.sendall(info)
        again = read_response(after)

    document = assert_problem_bytes(refused, 503)
    assert refused.headers["retry-after"] == "1"
    assert "in flight" in document["detail"]
    assert live.status == 200
    assert answered.status == 200
    assert answered.json()["value"] == pytest.approx(SIGMOIDS, rel=1e-15)
    assert again.status == 200
    assert again.json()["limits"]["max_in_flight"] == 1
