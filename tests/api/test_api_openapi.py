"""The committed OpenAPI document is the app's, clean, and true to the bytes sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from service.app import create_app
from service.openapi import DEFAULT_PATH, main, render
from service.settings import Settings

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"

OPERATIONS = {
    ("post", "/v1/sigmoid"): ("sigmoid", "functions"),
    ("post", "/v1/softmax"): ("softmax", "functions"),
    ("post", "/v1/losses/binary-cross-entropy"): ("binary_cross_entropy", "losses"),
    ("post", "/v1/losses/cross-entropy"): ("cross_entropy", "losses"),
    ("get", "/v1/info"): ("info", "info"),
    ("get", "/health/live"): ("health_live", "health"),
    ("get", "/health/ready"): ("health_ready", "health"),
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(render(create_app(Settings()).openapi()))


def schema_of(spec: dict[str, Any], path: str, method: str, status: int, media: str):
    response = spec["paths"][path][method]["responses"][str(status)]
    reference = response["content"][media]["schema"]
    # A root holding the components, so that "#/components/..." resolves.
    return {"$ref": reference["$ref"], "components": spec["components"]}


def validate(instance: Any, schema: dict[str, Any]) -> None:
    Draft202012Validator(schema).validate(instance)


def test_committed_document_is_what_the_app_generates(spec):
    assert COMMITTED == DEFAULT_PATH
    assert json.loads(COMMITTED.read_text(encoding="utf-8")) == spec, (
        "openapi/openapi.json is out of date: run `make openapi`"
    )


def test_check_mode_reports_drift(tmp_path):
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")

    assert main([str(stale), "--check"]) == 1
    assert main([str(stale)]) == 0
    assert main([str(stale), "--check"]) == 0


def test_served_document_is_the_committed_one(client, spec):
    assert client.get("/openapi.json").json() == spec


def test_operation_ids_and_one_tag_per_router(spec):
    found = {
        (method, path): (operation["operationId"], *operation["tags"])
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }

    assert found == OPERATIONS
    assert [tag["name"] for tag in spec["tags"]] == [
        "functions",
        "losses",
        "info",
        "health",
    ]


def test_schema_names_are_clean_for_generated_clients(spec):
    names = set(spec["components"]["schemas"])

    assert not [n for n in names if n.startswith("Body_") or not n.isidentifier()]
    assert {
        "SigmoidRequest",
        "SigmoidResponse",
        "SoftmaxRequest",
        "SoftmaxResponse",
        "BinaryCrossEntropyRequest",
        "BinaryCrossEntropyResponse",
        "CrossEntropyRequest",
        "CrossEntropyResponse",
        "Problem",
        "ProblemError",
    } <= names


def test_every_reference_resolves(spec):
    def references(node: Any):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from references(value)
        elif isinstance(node, list):
            for value in node:
                yield from references(value)

    for reference in references(spec):
        prefix, _, name = reference.rpartition("/")
        assert prefix == "#/components/schemas"
        assert name in spec["components"]["schemas"]


def request_models(spec: dict[str, Any]):
    for path, methods in spec["paths"].items():
        body = methods.get("post", {}).get("requestBody")
        if body:
            name = body["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
            yield path, name


def test_every_request_model_has_a_description_and_worked_examples(spec):
    models = dict(request_models(spec))

    assert len(models) == 4
    for name in models.values():
        schema = spec["components"]["schemas"][name]
        assert len(schema["description"]) > 40
        assert schema["examples"]
        for field in schema["properties"].values():
            assert field.get("description")


def test_worked_examples_fit_their_schema_and_the_service_answers_them(client, spec):
    for path, name in request_models(spec):
        schema = {
            "$ref": f"#/components/schemas/{name}",
            "components": spec["components"],
        }
        for example in spec["components"]["schemas"][name]["examples"]:
            validate(example, schema)

            response = client.post(path, json=example)

            assert response.status_code == 200, (path, example, response.text)
            validate(
                response.json(), schema_of(spec, path, "post", 200, "application/json")
            )


# Requests whose answers are checked against the documented response schemas.
SAMPLES = [
    ("post", "/v1/sigmoid", {"x": [-1.0, 0.0, 2.0], "order": 0}),
    ("post", "/v1/sigmoid", {"x": [-1.0, 0.0, 2.0], "order": 2}),
    ("post", "/v1/softmax", {"logits": [[0.0, 1.0], [5.0, -5.0]]}),
    (
        "post",
        "/v1/losses/binary-cross-entropy",
        {"logits": [1.0, -2.0], "targets": [1.0, 0.0], "reduction": "none"},
    ),
    (
        "post",
        "/v1/losses/binary-cross-entropy",
        {"probabilities": [0.0, 0.7], "targets": [1.0, 0.0], "hessian": True},
    ),
    (
        "post",
        "/v1/losses/cross-entropy",
        {"logits": [[0.0, 1.0]], "labels": [1], "hessian": True, "reduction": "sum"},
    ),
    (
        "post",
        "/v1/losses/cross-entropy",
        {"probabilities": [[0.0, 1.0]], "target_probabilities": [[0.5, 0.5]]},
    ),
    ("post", "/v1/sigmoid", {"x": []}),
    ("post", "/v1/losses/cross-entropy", {"logits": [[0.0, 1.0]], "labels": [2]}),
    ("post", "/v1/sigmoid", {"x": [0.0]} | {f"k{i}": 0 for i in range(30)}),
    ("post", "/v1/softmax", b'{"logits": [[1, 2'),
    ("post", "/v1/softmax", b"x=1"),
    ("post", "/v1/softmax", {"logits": [[0.0] * 5000]}),
    ("get", "/v1/info", None),
    ("get", "/health/live", None),
    ("get", "/health/ready", None),
]


@pytest.mark.parametrize(("method", "path", "body"), SAMPLES)
def test_returned_bytes_conform_to_the_documented_schemas(
    make_client, spec, method, path, body
):
    client = make_client(Settings(max_body_bytes=16 * 1024))
    if body is None:
        response = client.get(path)
    elif isinstance(body, bytes):
        content_type = "text/plain" if body == b"x=1" else "application/json"
        response = client.post(
            path, content=body, headers={"content-type": content_type}
        )
    else:
        response = client.post(path, json=body)

    media = response.headers["content-type"]
    operation = spec["paths"][path][method]
    assert str(response.status_code) in operation["responses"], response.text
    assert media in operation["responses"][str(response.status_code)]["content"]
    validate(
        json.loads(response.content),
        schema_of(spec, path, method, response.status_code, media),
    )
