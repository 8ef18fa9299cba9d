"""Nothing leaks: no stack trace, file path or library version in any response,
no Server header, and no CORS headers unless origins are configured, in which
case exactly those origins are allowed."""

from __future__ import annotations

import pytest
from reliability_helpers import (
    LEAK_PATTERNS,
    assert_no_leak,
    assert_problem_bytes,
    connect,
    read_response,
    request_bytes,
)

from service import core
from service.settings import Settings

ALLOWED = ["https://app.example", "https://admin.example"]
EVIL = "https://evil.example"


def test_the_leak_patterns_catch_what_they_should():
    for leaked in (
        'Traceback (most recent call last):\n  File "/srv/x.py", line 3',
        "/work/main/service/core/binary.py",
        "uvicorn/0.55.0",
        "Python 3.11.7",
        "pydantic 2.14",
    ):
        assert LEAK_PATTERNS.search(leaked), leaked
    assert LEAK_PATTERNS.search('{"detail": "must be in [0, 1]; got 1.5"}') is None


def test_an_unexpected_exception_tells_nothing(make_client_for, monkeypatch):
    def broken(x, order):
        raise RuntimeError(f"boom in {__file__} with numpy {core.__name__} 1.26.4")

    monkeypatch.setattr(core, "sigmoid_family", broken)
    client = make_client_for(Settings())

    response = client.post("/v1/sigmoid", json={"x": [1.0]})

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The server failed to process the request."
    assert_no_leak(response.content)
    assert "boom" not in response.text


@pytest.mark.slow
def test_a_real_server_sends_no_server_header_and_no_cors_by_default(make_server):
    server = make_server()
    requests = [
        request_bytes("GET", "/v1/info", headers={"Origin": ALLOWED[0]}),
        request_bytes("POST", "/v1/sigmoid", b'{"x": [1]}', {"Origin": EVIL}),
        request_bytes("POST", "/v1/sigmoid", b'{"x": [true]}'),
        request_bytes("GET", "/nowhere"),
        request_bytes("DELETE", "/v1/sigmoid"),
        request_bytes(
            "OPTIONS",
            "/v1/sigmoid",
            headers={"Origin": ALLOWED[0], "Access-Control-Request-Method": "POST"},
        ),
    ]
    responses = []
    for request in requests:
        with connect(server.port) as sock:
            sock.sendall(request)
            responses.append(read_response(sock))
    # uvicorn's own answer to something that is not HTTP at all.
    with connect(server.port) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        responses.append(read_response(sock))

    assert [r.status for r in responses] == [200, 200, 422, 404, 405, 405, 400]
    for response in responses:
        assert "server" not in response.headers
        assert "x-powered-by" not in response.headers
        assert not any(name.startswith("access-control-") for name in response.headers)
        assert_no_leak(response.body)


def test_cors_allows_exactly_the_configured_origins(make_client_for):
    client = make_client_for(Settings(cors_origins=",".join(ALLOWED)))
    preflight = {"Access-Control-Request-Method": "POST"}

    for origin in ALLOWED:
        allowed = client.request(
            "OPTIONS", "/v1/sigmoid", headers={"Origin": origin, **preflight}
        )
        simple = client.post("/v1/sigmoid", json={"x": [1]}, headers={"Origin": origin})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == origin
        assert simple.headers["access-control-allow-origin"] == origin
        assert (
            "server-timing" in simple.headers["access-control-expose-headers"].lower()
        )

    refused = client.request(
        "OPTIONS", "/v1/sigmoid", headers={"Origin": EVIL, **preflight}
    )
    simple = client.post("/v1/sigmoid", json={"x": [1]}, headers={"Origin": EVIL})
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert "origin" in refused.json()["detail"]
    assert "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-origin" not in simple.headers
    assert simple.status_code == 200


def test_cors_preflight_needs_no_key_but_the_request_does(make_client_for):
    client = make_client_for(Settings(cors_origins=ALLOWED[0], api_keys="secret-k3y"))

    preflight = client.request(
        "OPTIONS",
        "/v1/info",
        headers={
            "Origin": ALLOWED[0],
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    unauthorized = client.get("/v1/info", headers={"Origin": ALLOWED[0]})

    assert preflight.status_code == 200
    assert unauthorized.status_code == 401
    # The browser may read the 401, so the caller learns why.
    assert unauthorized.headers["access-control-allow-origin"] == ALLOWED[0]


@pytest.mark.slow
def test_a_real_server_with_origins_allows_them_only(make_server):
    server = make_server({"LOSSGRAD_CORS_ORIGINS": ",".join(ALLOWED)})

    def preflight(origin: str):
        with connect(server.port) as sock:
            sock.sendall(
                request_bytes(
                    "OPTIONS",
                    "/v1/sigmoid",
                    headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
                )
            )
            return read_response(sock)

    allowed, refused = preflight(ALLOWED[1]), preflight(EVIL)

    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED[1]
    assert_problem_bytes(refused, 400)
    assert "access-control-allow-origin" not in refused.headers
