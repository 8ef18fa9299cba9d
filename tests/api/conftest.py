"""Fixtures for HTTP-level tests: the app, driven in-process through httpx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from api_helpers import AppClient
from fastapi import FastAPI

from service.app import create_app
from service.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def make_client() -> Iterator[Any]:
    """Build clients for apps with chosen settings; all are closed afterwards."""
    clients: list[AppClient] = []

    def make(settings: Settings | None = None, app: FastAPI | None = None) -> AppClient:
        client = AppClient(app or create_app(settings or Settings()))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Any, settings: Settings) -> AppClient:
    client: AppClient = make_client(settings)
    return client
