"""One JSON access line per request on stdout, with the request id; X-Request-ID
accepted when well-formed, generated otherwise, returned on every response."""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest
from ecosystem_helpers import CLEAN_EXITS, LiveServer, call, clean_environment
from fastapi import APIRouter, FastAPI

from service.app import create_app
from service.log import JsonFormatter, RequestIdFilter, current_request_id
from service.settings import Settings

ACCESS_FIELDS = {
    "ts",
    "level",
    "logger",
    "msg",
    "pid",
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "elements",
    "request_id",
}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    app = create_app(Settings(max_body_bytes=1024))
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    app.include_router(router)
    return app


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "lossgrad.access"]


@pytest.mark.parametrize(
    "request_id",
    [
        "3f2b8c1e-8a1d-4d1e-9b55-0c0a3e1f7d42",
        "0123456789abcdef0123456789abcdef",
        "Root=1-5759e988-bd862e3fe1be46a994272793",
        "a",
        "x" * 128,
        "dGVzdA+/=",
    ],
)
def test_a_well_formed_request_id_is_kept_and_logged(app, caplog, request_id):
    with caplog.at_level(logging.INFO, logger="lossgrad.access"):
        response = call(
            app,
            "POST",
            "/v1/sigmoid",
            json={"x": [1.0, 2.0]},
            headers={"X-Request-ID": request_id},
        )

    assert response.headers["x-request-id"] == request_id
    [record] = access_records(caplog)
    assert record.request_id == request_id
    assert (record.method, record.route, record.path) == (
        "POST",
        "/v1/sigmoid",
        "/v1/sigmoid",
    )
    assert (record.status, record.elements) == (200, 2)
    assert record.duration_ms > 0


@pytest.mark.parametrize(
    "request_id",
    ["x" * 129, "has space", '"quoted"', "<script>", "semi;colon", "é"],
)
def test_a_malformed_request_id_is_replaced(app, caplog, request_id):
    with caplog.at_level(logging.INFO, logger="lossgrad.access"):
        response = call(
            app,
            "GET",
            "/v1/info",
            headers=[("X-Request-ID", request_id.encode())],
        )

    returned = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(returned)
    [record] = access_records(caplog)
    assert record.request_id == returned


def test_every_response_gets_its_own_generated_id(app):
    ids = {call(app, "GET", "/health/live").headers["x-request-id"] for _ in range(5)}

    assert len(ids) == 5
    assert all(GENERATED_ID.fullmatch(i) for i in ids)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/nowhere", {}, 404),
        ("DELETE", "/v1/sigmoid", {}, 405),
        ("POST", "/v1/sigmoid", {"content": b"[1]"}, 415),
        ("POST", "/v1/sigmoid", {"json": {"x": [1.0] * 600}}, 413),
        ("POST", "/v1/sigmoid", {"json": {"x": "no"}}, 422),
        (
            "POST",
            "/v1/sigmoid",
            {"content": b"{", "headers": {"content-type": "application/json"}},
            400,
        ),
        ("GET", "/boom", {}, 500),
    ],
)
def test_errors_carry_the_request_id_too(app, caplog, method, path, kwargs, status):
    headers = {**kwargs.pop("headers", {}), "X-Request-ID": "trace-42"}
    with caplog.at_level(logging.INFO):
        response = call(app, method, path, headers=headers, **kwargs)

    assert response.status_code == status
    assert response.headers["x-request-id"] == "trace-42"
    [record] = access_records(caplog)
    assert (record.status, record.request_id, record.elements) == (
        status,
        "trace-42",
        None,
    )
    if status == 500:
        [error] = [r for r in caplog.records if r.name == "lossgrad.error"]
        assert error.request_id == "trace-42"


def test_records_made_during_a_request_carry_its_id():
    record = logging.LogRecord("lossgrad.x", logging.INFO, "f.py", 1, "m", None, None)
    token = current_request_id.set("abc")
    try:
        RequestIdFilter().filter(record)
    finally:
        current_request_id.reset(token)
    outside = logging.LogRecord("lossgrad.x", logging.INFO, "f.py", 1, "m", None, None)
    RequestIdFilter().filter(outside)

    assert json.loads(JsonFormatter().format(record))["request_id"] == "abc"
    assert "request_id" not in json.loads(JsonFormatter().format(outside))


SECRET_KEY = "key-that-must-not-be-logged-7f3a"
SECRET_NUMBER = 0.123456789012345


@pytest.mark.slow
def test_live_server_writes_json_access_lines_on_stdout_without_bodies_or_keys(
    tmp_path,
):
    server = LiveServer(tmp_path, [], clean_environment(LOSSGRAD_API_KEYS=SECRET_KEY))
    try:
        with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
            headers = {
                "Authorization": f"Bearer {SECRET_KEY}",
                "X-Request-ID": "live-1",
            }
            ok = client.post(
                "/v1/sigmoid", json={"x": [SECRET_NUMBER] * 3}, headers=headers
            )
            bad = client.post(
                "/v1/sigmoid",
                json={"x": [SECRET_NUMBER, "secret-string"]},
                headers={**headers, "X-Request-ID": "live-2"},
            )
            wrong_key = client.post(
                "/v1/sigmoid",
                json={"x": [SECRET_NUMBER]},
                headers={
                    "Authorization": "Bearer wrong-key-9c1d",
                    "X-Request-ID": "live-3",
                },
            )
    finally:
        assert server.stop() in CLEAN_EXITS
    assert (ok.status_code, bad.status_code, wrong_key.status_code) == (200, 422, 401)

    stdout = server.stdout_path.read_text(encoding="utf-8")
    stderr = server.stderr_path.read_text(encoding="utf-8")
    records = [json.loads(line) for line in server.stdout_lines()]
    access = {r["request_id"]: r for r in records if r["logger"] == "lossgrad.access"}
    assert access.keys() >= {"live-1", "live-2", "live-3"}
    assert access["live-1"].keys() == ACCESS_FIELDS
    assert access["live-1"]["elements"] == 3
    assert access["live-1"]["route"] == "/v1/sigmoid"
    assert [access[i]["status"] for i in ("live-1", "live-2", "live-3")] == [
        200,
        422,
        401,
    ]
    assert stderr == "", "every log line goes to stdout"
    for secret in (SECRET_KEY, str(SECRET_NUMBER), "secret-string", "wrong-key-9c1d"):
        assert secret not in stdout


@pytest.mark.slow
def test_live_server_log_level_comes_from_settings(tmp_path):
    server = LiveServer(tmp_path, [], clean_environment(LOSSGRAD_LOG_LEVEL="warning"))
    try:
        assert httpx.get(f"{server.base_url}/v1/info", timeout=10.0).status_code == 200
    finally:
        assert server.stop() in CLEAN_EXITS

    records = [json.loads(line) for line in server.stdout_lines()]
    assert {r["level"] for r in records} <= {"warning", "error", "critical"}
    assert not [r for r in records if r["logger"] == "lossgrad.access"]


def test_browsers_may_read_and_send_the_request_id_across_origins():
    origin = "http://ui.lossgrad.test"
    app = create_app(Settings(cors_origins=[origin]))

    simple = call(app, "GET", "/v1/info", headers={"Origin": origin})
    preflight = call(
        app,
        "OPTIONS",
        "/v1/sigmoid",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-request-id",
        },
    )

    exposed = simple.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed.replace(" ", "").split(",")
    assert preflight.status_code == 200
    assert "x-request-id" in preflight.headers["access-control-allow-headers"].lower()
