"""Helpers for HTTP-level tests: a synchronous client and problem checks."""

from __future__ import annotations

from contextlib import ExitStack
from functools import partial
from typing import Any

import anyio.from_thread
import httpx
from fastapi import FastAPI

PROBLEM_KEYS = {"type", "title", "status", "detail"}


class AppClient:
    """A synchronous httpx client for an ASGI app, running its event loop in a
    background thread (as Starlette's TestClient does), so tests stay plain."""

    def __init__(self, app: FastAPI) -> None:
        self._stack = ExitStack()
        self._portal = self._stack.enter_context(
            anyio.from_thread.start_blocking_portal()
        )
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://lossgrad.test"
        )
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        call = partial(self._client.request, method, url, **kwargs)
        response: httpx.Response = self._portal.call(call)
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def post_bytes(self, url: str, body: bytes) -> httpx.Response:
        return self.post(
            url, content=body, headers={"content-type": "application/json"}
        )

    def close(self) -> None:
        self._portal.call(self._client.aclose)
        self._stack.close()


def assert_problem(
    response: httpx.Response, status: int, loc: list[Any] | None = None
) -> dict[str, Any]:
    """Check that ``response`` is the problem document for ``status`` and, if
    ``loc`` is given, that one of its errors points there."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document.keys() >= PROBLEM_KEYS
    assert document["status"] == status
    assert document["type"] == "about:blank"
    assert isinstance(document["detail"], str) and document["detail"]
    assert "Traceback" not in response.text
    if loc is not None:
        locations = [error["loc"] for error in document.get("errors", [])]
        assert loc in locations, f"{loc} not in {locations}"
    return document
