"""Fixtures for the reliability tests: real servers and in-process clients,
stopped and closed at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pytest
from reliability_helpers import InProcessClient, Server, start_server

from service.app import create_app
from service.settings import Settings

MakeServer = Callable[[Mapping[str, str] | None], Server]


@pytest.fixture
def make_server(tmp_path) -> Iterator[MakeServer]:
    """Start ``lossgrad serve`` processes with chosen environments; each is
    stopped after the test, whatever happened to it."""
    servers: list[Server] = []

    def make(env: Mapping[str, str] | None = None) -> Server:
        server = start_server(tmp_path, env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def make_client_for() -> Iterator[Callable[[Settings], InProcessClient]]:
    """In-process clients of apps with chosen settings, closed afterwards."""
    clients: list[InProcessClient] = []

    def make(settings: Settings) -> InProcessClient:
        client = InProcessClient(create_app(settings))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
