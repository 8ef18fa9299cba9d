"""Optional API keys: with ``LOSSGRAD_API_KEYS`` set, every route but the health
routes answers 401 without a key or with a wrong one, and 200 with a right one;
keys are compared in constant time and never written to a log."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

import pytest
from pydantic import SecretStr
from reliability_helpers import connect, read_response, request_bytes

import service.api.auth as auth
from service.api.models import REQUEST_MODELS
from service.app import create_app
from service.log import JsonFormatter
from service.openapi import current_spec
from service.settings import Settings

KEYS = ["k3y-alpha-7f1c2d9e", "k3y-beta-0a4b8e6f"]
WRONG = "k3y-alpha-7f1c2d9X"
HEALTH = ["/health/live", "/health/ready"]
# Routes outside the OpenAPI document that the app may serve.
UNDOCUMENTED = ["/openapi.json", "/docs", "/redoc", "/metrics"]


def worked_examples() -> dict[str, dict[str, Any]]:
    """The first worked example of each request model, by schema name."""
    return {
        model.__name__: model.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
        for model in REQUEST_MODELS
    }


def guarded_requests() -> list[tuple[str, str, Any]]:
    """(method, path, JSON body) for every route that must require a key."""
    examples = worked_examples()
    requests: list[tuple[str, str, Any]] = []
    for path, operations in current_spec()["paths"].items():
        if path in HEALTH:
            continue
        for method, operation in operations.items():
            body = None
            if "requestBody" in operation:
                ref = operation["requestBody"]["content"]["application/json"]["schema"]
                body = examples[ref["$ref"].rsplit("/", 1)[1]]
            requests.append((method.upper(), path, body))
    return requests


GUARDED = guarded_requests()


@pytest.fixture
def keyed(make_client_for):
    return make_client_for(Settings(api_keys=KEYS))


@pytest.fixture
def undocumented_routes(make_client_for) -> list[str]:
    """The routes outside the document that this app serves at all."""
    open_client = make_client_for(Settings())
    return [path for path in UNDOCUMENTED if open_client.get(path).status_code == 200]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_unauthorized(response: Any, wrong_key: bool) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    document = response.json()
    assert document["status"] == 401 and document["title"] == "Unauthorized"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="lossgrad"')
    assert ('error="invalid_token"' in challenge) is wrong_key
    assert not any(key in response.text for key in KEYS)


def test_every_documented_route_is_guarded():
    assert {path for _, path, _ in GUARDED} >= {
        "/v1/sigmoid",
        "/v1/softmax",
        "/v1/losses/binary-cross-entropy",
        "/v1/losses/cross-entropy",
        "/v1/info",
    }


@pytest.mark.parametrize(("method", "path", "body"), GUARDED)
def test_a_guarded_route_gives_401_401_200(keyed, method, path, body):
    without = keyed.request(method, path, json=body)
    wrong = keyed.request(method, path, json=body, headers=bearer(WRONG))
    right = keyed.request(method, path, json=body, headers=bearer(KEYS[0]))

    assert_unauthorized(without, wrong_key=False)
    assert_unauthorized(wrong, wrong_key=True)
    assert right.status_code == 200, right.text


def test_the_undocumented_routes_are_guarded_too(keyed, undocumented_routes):
    assert "/openapi.json" in undocumented_routes
    for path in undocumented_routes:
        assert_unauthorized(keyed.get(path), wrong_key=False)
        assert_unauthorized(keyed.get(path, headers=bearer(WRONG)), wrong_key=True)
        assert keyed.get(path, headers=bearer(KEYS[1])).status_code == 200


@pytest.mark.parametrize("path", HEALTH)
def test_the_health_routes_stay_open(keyed, path):
    assert keyed.get(path).status_code == 200
    assert keyed.get(path, headers=bearer(WRONG)).status_code == 200


def test_every_key_is_accepted_and_unknown_paths_do_not_show_through(keyed):
    for key in KEYS:
        assert keyed.get("/v1/info", headers=bearer(key)).status_code == 200
    assert_unauthorized(keyed.get("/v1/nothing-here"), wrong_key=False)
    assert keyed.get("/v1/nothing-here", headers=bearer(KEYS[0])).status_code == 404


@pytest.mark.parametrize(
    ("authorization", "accepted"),
    [
        (f"Bearer {KEYS[0]}", True),
        (f"bearer {KEYS[0]}", True),
        (f"Bearer   {KEYS[0]}  ", True),
        (f"Basic {KEYS[0]}", False),
        (KEYS[0], False),
        ("Bearer", False),
        ("Bearer ", False),
        (f"Bearer {KEYS[0]}{KEYS[1]}", False),
        (f"Bearer {KEYS[0][:-1]}", False),
        ("Bearer \u00e9t\u00e9", False),
    ],
)
def test_only_a_bearer_token_equal_to_a_key_is_accepted(keyed, authorization, accepted):
    response = keyed.get(
        "/v1/info", headers={"Authorization": authorization.encode("utf-8")}
    )
    assert (response.status_code == 200) is accepted


def test_keys_are_compared_in_constant_time_against_every_key(monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    guard = auth.ApiKeyMiddleware(app=None, keys=KEYS)  # type: ignore[arg-type]

    for token, known in [
        (KEYS[0], True),
        (KEYS[1], True),
        (WRONG, False),
        ("x", False),
    ]:
        calls.clear()
        assert guard.knows(token.encode()) is known
        # One comparison per key, whichever matched, of equal-length digests.
        assert len(calls) == len(KEYS)
        assert {len(a) for a, _ in calls} == {len(b) for _, b in calls} == {32}


def test_keys_never_reach_a_log_line(keyed, caplog):
    formatter = JsonFormatter()
    with caplog.at_level(logging.DEBUG):
        app = create_app(Settings(api_keys=KEYS))
        for key in [*KEYS, WRONG]:
            keyed.get("/v1/info", headers=bearer(key))
            keyed.post("/v1/sigmoid", json={"x": [1]}, headers=bearer(key))
        logging.getLogger("test").info("settings: %r", app.state.settings)

    lines = [formatter.format(record) for record in caplog.records]
    assert any("settings:" in line for line in lines)
    for line in lines:
        for key in [*KEYS, WRONG]:
            assert key not in line


def test_settings_never_show_a_key():
    settings = Settings(api_keys=",".join(KEYS))

    assert [key.get_secret_value() for key in settings.api_keys] == KEYS
    assert all(isinstance(key, SecretStr) for key in settings.api_keys)
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert not any(key in shown for key in KEYS)


@pytest.mark.slow
def test_a_real_server_with_keys_guards_its_routes_and_logs_no_key(make_server):
    server = make_server(
        {"LOSSGRAD_API_KEYS": ",".join(KEYS), "LOSSGRAD_LOG_LEVEL": "debug"}
    )

    def status(path: str, key: str | None = None) -> int:
        headers = bearer(key) if key else {}
        with connect(server.port) as sock:
            sock.sendall(request_bytes("GET", path, headers=headers))
            return read_response(sock).status

    assert [status("/v1/info"), status("/v1/info", WRONG)] == [401, 401]
    assert status("/v1/info", KEYS[0]) == 200
    assert [status(path) for path in HEALTH] == [200, 200]

    log = server.log_text()
    assert not any(key in log for key in [*KEYS, WRONG])
    started = [r for r in server.log_records() if r.get("msg", "").endswith("started")]
    assert started and started[0]["auth"] == "api_keys"
    assert "the service is open" not in log


@pytest.mark.slow
def test_a_real_server_without_keys_says_it_is_open(make_server):
    server = make_server()

    records = server.log_records()
    warnings = [r for r in records if "the service is open" in r.get("msg", "")]
    started = [r for r in records if r.get("msg", "").endswith("started")]
    assert warnings and warnings[0]["level"] == "warning"
    assert started and started[0]["auth"] == "open"
    assert json.dumps(records).count("LOSSGRAD_API_KEYS") >= 1
