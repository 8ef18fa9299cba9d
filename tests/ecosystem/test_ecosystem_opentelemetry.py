"""FastAPI's native OpenTelemetry: off by default, on with LOSSGRAD_OPENTELEMETRY.

A tracer provider that records the spans started through it stands in for a
configured OpenTelemetry SDK; FastAPI finds it where it finds any global
provider.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from ecosystem_helpers import call
from fastapi import FastAPI

from service.app import create_app
from service.settings import Settings

trace = pytest.importorskip("opentelemetry.trace")

pytestmark = pytest.mark.skipif(
    "telemetry" not in inspect.signature(FastAPI.__init__).parameters,
    reason="this FastAPI release has no native OpenTelemetry",
)

BODY = {"logits": [0.5, -1.0], "targets": [1, 0]}


class RecordingTracer(trace.NoOpTracer):  # type: ignore[misc]
    def __init__(self, spans: list[str]) -> None:
        self.spans = spans

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.spans.append(name)
        return super().start_span(name, *args, **kwargs)


class RecordingProvider(trace.TracerProvider):  # type: ignore[misc]
    def __init__(self) -> None:
        self.spans: list[str] = []

    def get_tracer(self, *args: Any, **kwargs: Any) -> RecordingTracer:
        return RecordingTracer(self.spans)


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> RecordingProvider:
    recording = RecordingProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: recording)
    return recording


def test_requests_are_not_traced_by_default(provider: RecordingProvider) -> None:
    app = create_app(Settings())
    response = call(app, "POST", "/v1/losses/binary-cross-entropy", json=BODY)
    assert response.status_code == 200
    assert provider.spans == []


def test_the_setting_lets_fastapi_trace_each_request(
    provider: RecordingProvider,
) -> None:
    app = create_app(Settings(opentelemetry=True))
    for _ in range(2):
        response = call(app, "POST", "/v1/losses/binary-cross-entropy", json=BODY)
        assert response.status_code == 200
    # One server span per request, named by its method, with FastAPI's own
    # spans for the dependencies and the endpoint inside it.
    assert [name for name in provider.spans if name.startswith("POST")] == [
        "POST",
        "POST",
    ]
