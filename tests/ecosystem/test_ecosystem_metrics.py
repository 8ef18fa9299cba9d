"""GET /metrics: requests by route template and status, latency, elements by
operation, rejections by limit; read back with Prometheus's own text parser.

The metrics live for the whole test process, so every check compares the
counts before and after the requests it makes.
"""

from __future__ import annotations

import json

import pytest
from ecosystem_helpers import call, parse_metrics, sample
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from service.api.errors import problem_response
from service.api.middleware import RequestMiddleware
from service.app import create_app
from service.settings import Settings

REQUESTS = "lossgrad_http_requests_total"
LATENCY = "lossgrad_http_request_duration_seconds"
ELEMENTS = "lossgrad_elements_processed_total"
REJECTED = "lossgrad_requests_rejected_total"
IN_FLIGHT = "lossgrad_http_requests_in_flight"


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(Settings(max_body_bytes=4096, max_elements=50, max_classes=8))


def scrape(app: FastAPI) -> dict:
    response = call(app, "GET", "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse_metrics(response.text)


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    return sample(after, name, **labels) - sample(before, name, **labels)


def test_requests_are_counted_by_route_template_method_and_status(app):
    before = scrape(app)

    assert call(app, "POST", "/v1/sigmoid", json={"x": [0.5]}).status_code == 200
    assert call(app, "POST", "/v1/sigmoid", json={"x": []}).status_code == 422
    assert call(app, "GET", "/v1/sigmoid").status_code == 405
    assert call(app, "GET", "/v1/info").status_code == 200
    for path in ("/v1/nothing-here", "/wp-admin/setup.php", "/v1/sigmoid/x"):
        assert call(app, "GET", path).status_code == 404

    after = scrape(app)
    sigmoid = {"method": "POST", "route": "/v1/sigmoid"}
    assert delta(before, after, REQUESTS, **sigmoid, status="200") == 1
    assert delta(before, after, REQUESTS, **sigmoid, status="422") == 1
    assert (
        delta(before, after, REQUESTS, method="GET", route="/v1/sigmoid", status="405")
        == 1
    )
    assert (
        delta(before, after, REQUESTS, method="GET", route="/v1/info", status="200")
        == 1
    )
    assert (
        delta(before, after, REQUESTS, method="GET", route="unmatched", status="404")
        == 3
    )
    # A raw path never becomes a label value.
    routes = {dict(labels).get("route") for _, labels in after}
    assert not routes & {"/v1/nothing-here", "/wp-admin/setup.php", "/v1/sigmoid/x"}


def test_docs_assets_share_their_mount_s_label(app):
    before = scrape(app)

    for name in ("favicon.svg", "swagger-ui.css", "missing.js"):
        call(app, "GET", f"/static/docs/{name}")

    after = scrape(app)
    mount = {"method": "GET", "route": "/static/docs"}
    assert delta(before, after, REQUESTS, **mount, status="200") == 2
    assert delta(before, after, REQUESTS, **mount, status="404") == 1


def test_invented_methods_share_one_label(app):
    before = scrape(app)

    for method in ("BREW", "WHEN", "PROPFIND"):
        assert call(app, method, "/v1/sigmoid").status_code == 405

    after = scrape(app)
    labels = {"method": "other", "route": "/v1/sigmoid", "status": "405"}
    assert delta(before, after, REQUESTS, **labels) == 3
    methods = {dict(labels).get("method") for _, labels in after}
    assert not methods & {"BREW", "WHEN", "PROPFIND"}


def test_latency_histogram_counts_each_request_once_per_route(app):
    before = scrape(app)

    for _ in range(3):
        call(app, "POST", "/v1/softmax", json={"logits": [[1.0, 2.0]]})

    after = scrape(app)
    route = {"method": "POST", "route": "/v1/softmax"}
    assert delta(before, after, f"{LATENCY}_count", **route) == 3
    assert delta(before, after, f"{LATENCY}_sum", **route) > 0
    bounds = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in after.items()
        if name == f"{LATENCY}_bucket" and dict(labels)["route"] == "/v1/softmax"
    )
    counts = [value for _, value in bounds]
    assert counts == sorted(counts), "buckets are cumulative"
    assert bounds[-1] == (float("inf"), sample(after, f"{LATENCY}_count", **route))
    assert bounds[0][0] <= 0.001, "the smallest bucket resolves sub-ms requests"


@pytest.mark.parametrize(
    ("path", "body", "operation", "elements"),
    [
        ("/v1/sigmoid", {"x": [1.0, 2.0, 3.0]}, "sigmoid", 3),
        ("/v1/softmax", {"logits": [[1.0, 2.0, 3.0], [0.0] * 3]}, "softmax", 6),
        (
            "/v1/losses/binary-cross-entropy",
            {"logits": [0.1, 0.2, 0.3, 0.4], "targets": [0.0, 1.0, 1.0, 0.0]},
            "binary_cross_entropy",
            4,
        ),
        (
            "/v1/losses/binary-cross-entropy",
            {"probabilities": [0.1, 0.2], "targets": [0.0, 1.0]},
            "binary_cross_entropy",
            2,
        ),
        (
            "/v1/losses/cross-entropy",
            {"logits": [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], "labels": [0, 2]},
            "cross_entropy",
            6,
        ),
    ],
)
def test_elements_are_counted_by_operation(app, path, body, operation, elements):
    before = scrape(app)

    assert call(app, "POST", path, json=body).status_code == 200
    # A refused request processed nothing.
    assert call(app, "POST", path, json={**body, "extra": 1}).status_code == 422

    after = scrape(app)
    assert delta(before, after, ELEMENTS, operation=operation) == elements


@pytest.mark.parametrize(
    ("limit", "content", "content_type", "status"),
    [
        ("max_body_bytes", b'{"x": [' + b"1," * 3000 + b"1]}", "application/json", 413),
        (
            "max_elements",
            json.dumps({"x": [1.0] * 51}).encode(),
            "application/json",
            413,
        ),
        (
            "max_classes",
            json.dumps({"logits": [[0.0] * 9]}).encode(),
            "application/json",
            413,
        ),
        ("content_type", b'{"x": [1]}', "text/plain", 415),
        ("content_type", b'{"x": [1]}', "application/json; charset=latin-1", 415),
    ],
)
def test_rejections_are_counted_by_limit(app, limit, content, content_type, status):
    path = "/v1/softmax" if limit == "max_classes" else "/v1/sigmoid"
    before = scrape(app)

    response = call(
        app, "POST", path, content=content, headers={"content-type": content_type}
    )

    assert response.status_code == status
    after = scrape(app)
    assert delta(before, after, REJECTED, limit=limit) == 1
    others = {
        dict(labels)["limit"]
        for (name, labels) in after
        if name == REJECTED and dict(labels)["limit"] != limit
    }
    assert others >= {"max_in_flight"}, "every limit has a series from the start"
    for other in others:
        assert delta(before, after, REJECTED, limit=other) == 0


def test_a_request_refused_before_routing_is_labelled_with_its_route():
    class RefuseEverything:
        """Stands for a guard that answers before the router runs."""

        def __init__(self, app: object) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await problem_response(503, "busy")(scope, receive, send)

    app = FastAPI()

    @app.post("/v1/guarded/{name}")
    async def guarded(name: str) -> dict[str, str]:
        return {"name": name}

    app.add_middleware(RefuseEverything)
    app.add_middleware(RequestMiddleware)
    before = parse_metrics(call(create_app(Settings()), "GET", "/metrics").text)

    assert call(app, "POST", "/v1/guarded/abc").status_code == 503

    after = parse_metrics(call(create_app(Settings()), "GET", "/metrics").text)
    labels = {"method": "POST", "route": "/v1/guarded/{name}", "status": "503"}
    assert delta(before, after, REQUESTS, **labels) == 1


def test_in_flight_counts_the_scrape_itself(app):
    assert sample(scrape(app), IN_FLIGHT) == 1


def test_metrics_and_docs_stay_out_of_the_openapi_document(app):
    paths = call(app, "GET", "/openapi.json").json()["paths"]

    assert not {"/metrics", "/docs", "/redoc"} & paths.keys()
    assert all(not path.startswith("/static") for path in paths)


def test_single_process_exposition_includes_process_figures(app):
    names = {name for name, _ in scrape(app)}

    assert "process_resident_memory_bytes" in names
    assert not any(name.endswith("_created") for name in names)


def test_metrics_name_no_python_or_library_version(app):
    # The platform collector would publish python_info{version="3.11.x"}; no
    # response of the service may advertise a version.
    import platform

    text = call(app, "GET", "/metrics").text
    assert "python_info" not in text
    assert platform.python_version() not in text
