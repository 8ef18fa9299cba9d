"""Framework and transport errors are problem documents too: 400, 404, 405, 413,
415, 500; limits hold before arrays exist; nothing from the input is echoed."""

from __future__ import annotations

import httpx
import pytest
from api_helpers import assert_problem
from fastapi import APIRouter

from service import core
from service.app import create_app
from service.settings import Settings

SIGMOID = "/v1/sigmoid"


def test_unknown_path_is_404(client):
    assert_problem(client.get("/v1/nothing-here"), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/sigmoid", "POST"),
        ("PUT", "/v1/losses/cross-entropy", "POST"),
        ("POST", "/health/live", "GET"),
        ("DELETE", "/v1/info", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(client, method, path, allowed):
    response = client.request(method, path)

    assert_problem(response, 405)
    assert response.headers["allow"] == allowed


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "application/json; charset=latin-1",
        "multipart/form-data; boundary=x",
    ],
)
def test_content_types_other_than_json_are_415(client, content_type):
    headers = {} if content_type is None else {"content-type": content_type}

    response = client.post(SIGMOID, content=b'{"x": [1.0]}', headers=headers)

    assert_problem(response, 415)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON", "application/json; charset=UTF-8"],
)
def test_json_content_types_are_accepted(client, content_type):
    response = client.post(
        SIGMOID, content=b'{"x": [1.0]}', headers={"content-type": content_type}
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b'{"x": [1, 2', b'{"x": [1, 2,]}', b"{'x': [1]}", b"[" * 5000],
)
def test_malformed_json_is_400(client, body):
    document = assert_problem(client.post_bytes(SIGMOID, body), 400)

    assert "not valid JSON" in document["detail"]


def test_declared_oversized_body_is_413_before_reading(make_client):
    client = make_client(Settings(max_body_bytes=1024))
    body = b'{"x": [' + b"1," * 1000 + b"1]}"

    assert_problem(client.post_bytes(SIGMOID, body), 413)


def test_streamed_oversized_body_is_413_without_reading_it_whole(make_client):
    client = make_client(Settings(max_body_bytes=64 * 1024))
    sent = []

    async def chunks():
        yield b'{"x": ['
        for _ in range(1000):  # 16 MB in all, 250 times the limit
            sent.append(1)
            yield b"1," * 8192
        yield b"1]}"

    response = client.post(
        SIGMOID, content=chunks(), headers={"content-type": "application/json"}
    )

    assert_problem(response, 413)
    assert len(sent) < 10


def test_body_at_the_limit_is_accepted(make_client):
    body = b'{"x": [' + b"1," * 2000 + b"1]}"
    client = make_client(Settings(max_body_bytes=len(body)))

    assert client.post_bytes(SIGMOID, body).status_code == 200


def test_too_many_elements_is_413(make_client):
    client = make_client(Settings(max_elements=10))

    assert client.post(SIGMOID, json={"x": [0.0] * 10}).status_code == 200
    assert_problem(client.post(SIGMOID, json={"x": [0.0] * 11}), 413)
    too_many = {"logits": [[0.0] * 3] * 2, "target_probabilities": [[1, 0, 0]] * 2}
    assert_problem(client.post("/v1/losses/cross-entropy", json=too_many), 413)


def test_too_many_classes_is_413_pointing_at_the_matrix(make_client):
    client = make_client(Settings(max_classes=3))

    response = client.post("/v1/softmax", json={"logits": [[0.0] * 4]})

    assert_problem(response, 413, ["body", "logits", 0])


def test_limits_are_checked_before_arrays_are_built(make_client, monkeypatch):
    client = make_client(Settings(max_elements=5))
    calls = []
    monkeypatch.setattr(
        "service.api.arrays.np.fromiter", lambda *a, **k: calls.append(a)
    )

    assert_problem(client.post(SIGMOID, json={"x": [0.0] * 6}), 413)
    assert calls == []


def test_errors_are_capped_at_twenty(client):
    body = {"x": [1.0]} | {f"unknown_{i}": i for i in range(50)}

    document = assert_problem(client.post(SIGMOID, json=body), 422)

    assert len(document["errors"]) == 20
    assert "first 20" in document["detail"]


def test_inputs_are_not_echoed(client):
    secret = "do-not-echo-" * 1000
    response = client.post(
        "/v1/losses/binary-cross-entropy",
        json={"logits": [secret], "targets": [secret], "reduction": secret},
    )

    assert_problem(response, 422)
    assert "do-not-echo" not in response.text
    assert len(response.content) < 2000


def test_an_unexpected_exception_is_a_bare_500(make_client):
    app = create_app(Settings())
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail at /srv/lossgrad/internal.py")

    app.include_router(router)
    client = make_client(app=app)

    response = client.get("/boom")

    document = assert_problem(response, 500)
    assert "secret" not in response.text
    assert "internal.py" not in response.text
    assert set(document) == {"type", "title", "status", "detail"}


def test_a_core_refusal_is_422_with_the_cores_message(client, monkeypatch):
    def refuse(x, order):
        raise ValueError("x must be something else")

    monkeypatch.setattr(core, "sigmoid_family", refuse)

    document = assert_problem(client.post(SIGMOID, json={"x": [1.0]}), 422)

    assert document["detail"] == "x must be something else"


def test_a_result_that_overflows_is_422_not_null(client):
    # Each loss is about 1e10 · 1e300: finite inputs, an infinite answer.
    response = client.post(
        "/v1/losses/binary-cross-entropy",
        json={"logits": [-1e10], "targets": [1.0], "weights": [1e300]},
    )

    document = assert_problem(response, 422)
    assert "float64" in document["detail"]


def test_problem_responses_carry_server_timing(client):
    for response in (
        client.get("/nowhere"),
        client.post(SIGMOID, json={"x": []}),
        client.post(SIGMOID, content=b"{}"),
    ):
        assert response.headers["server-timing"].startswith("app;dur=")


def test_error_responses_are_valid_json_even_for_binary_garbage(client):
    response = client.post_bytes(SIGMOID, bytes(range(256)))

    assert_problem(response, 400)
    assert isinstance(httpx.Response(400, content=response.content).json(), dict)
