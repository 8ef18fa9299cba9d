"""One access line per request, errors logged with their trace, JSON lines."""

from __future__ import annotations

import json
import logging

import anyio
import pytest
from fastapi import APIRouter
from support import http_scope

from service.app import create_app
from service.log import JsonFormatter, configure_logging
from service.settings import Settings


def test_each_request_writes_one_access_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="lossgrad.access"):
        client.post("/v1/sigmoid", json={"x": [1.0]})
        client.get("/nowhere")

    records = [r for r in caplog.records if r.name == "lossgrad.access"]
    assert [(r.method, r.path, r.status) for r in records] == [
        ("POST", "/v1/sigmoid", 200),
        ("GET", "/nowhere", 404),
    ]
    assert all(r.duration_ms >= 0 for r in records)


def test_an_unexpected_exception_is_logged_with_its_trace(make_client, caplog):
    app = create_app(Settings())
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    app.include_router(router)

    with caplog.at_level(logging.INFO):
        make_client(app=app).get("/boom")

    [error] = [r for r in caplog.records if r.name == "lossgrad.error"]
    assert error.exc_info is not None and "kaput" in str(error.exc_info[1])
    [access] = [r for r in caplog.records if r.name == "lossgrad.access"]
    assert access.status == 500


def test_a_client_that_leaves_mid_body_is_logged_as_499(caplog):
    app = create_app(Settings())
    messages = [
        {"type": "http.request", "body": b'{"x": [1,', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = http_scope("/v1/sigmoid", [(b"content-type", b"application/json")])

    with caplog.at_level(logging.INFO):
        anyio.run(app, scope, receive, send)

    assert sent == []
    assert not [r for r in caplog.records if r.name == "lossgrad.error"]
    [access] = [r for r in caplog.records if r.name == "lossgrad.access"]
    assert access.status == 499


def make_record(**extra):
    record = logging.LogRecord(
        "lossgrad.test", logging.WARNING, "f.py", 1, "hi %s", ("you",), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_formatter_writes_one_object_per_line_with_extras():
    line = JsonFormatter().format(make_record(path="/v1/info", status=200))

    entry = json.loads(line)
    assert "\n" not in line
    assert entry["level"] == "warning"
    assert entry["logger"] == "lossgrad.test"
    assert entry["msg"] == "hi you"
    assert entry["path"] == "/v1/info" and entry["status"] == 200
    assert entry["ts"].endswith("+00:00")


def test_json_formatter_keeps_the_trace_and_drops_terminal_colours():
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record = make_record(color_message="\x1b[36mhi\x1b[0m")
        record.exc_info = sys.exc_info()

    entry = json.loads(JsonFormatter().format(record))

    assert "ValueError: bad" in entry["exc"]
    assert "color_message" not in entry


@pytest.mark.parametrize(
    ("log_format", "json_lines"), [("json", True), ("text", False)]
)
def test_configure_logging_routes_everything_through_one_handler(
    log_format, json_lines
):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    access = logging.getLogger("uvicorn.access")
    saved_access = access.disabled
    try:
        configure_logging("warning", log_format)

        [handler] = root.handlers
        assert isinstance(handler.formatter, JsonFormatter) is json_lines
        assert root.level == logging.WARNING
        assert logging.getLogger("uvicorn.error").propagate
        assert access.disabled
    finally:
        root.handlers[:], root.level = saved
        access.disabled = saved_access
