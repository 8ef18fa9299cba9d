"""A catalogue of malformed requests, sent over TCP to a real ``lossgrad serve``:
each gets the documented 4xx problem document, with ``loc`` pointing at the
culprit where there is one, and none gets a 5xx or leaks anything.

The server runs with small limits (1 MiB bodies, 100 000 numbers, 1 000 classes)
so that the oversized requests stay cheap to send.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jsonschema
import pytest
from malformed import (
    CATALOGUE,
    MAX_BODY_BYTES,
    MAX_CLASSES,
    MAX_ELEMENTS,
    PROBLEM_SCHEMA,
    SIGMOID,
    Bad,
)
from reliability_helpers import (
    RawResponse,
    Server,
    assert_problem_bytes,
    connect,
    read_response,
    request_bytes,
    start_server,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("catalogue"),
        {
            "LOSSGRAD_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "LOSSGRAD_MAX_ELEMENTS": str(MAX_ELEMENTS),
            "LOSSGRAD_MAX_CLASSES": str(MAX_CLASSES),
        },
    )
    yield running
    running.stop()


def send(server: Server, bad: Bad) -> RawResponse:
    body = bad.raw_body()
    with connect(server.port) as sock:
        if bad.chunked:
            head = request_bytes(
                bad.method, bad.path, b"", content_type=bad.content_type
            )
            head = head.replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
            sock.sendall(head)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for start in range(0, len(body), 65536):
                    piece = body[start : start + 65536]
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sock.sendall(b"0\r\n\r\n")
        else:
            # The server may answer and close before it has read the whole body.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(
                    request_bytes(
                        bad.method, bad.path, body, content_type=bad.content_type
                    )
                )
        return read_response(sock)


def test_the_catalogue_is_large_and_varied():
    assert len(CATALOGUE) >= 40
    assert len({bad.name for bad in CATALOGUE}) == len(CATALOGUE)
    assert {bad.status for bad in CATALOGUE} == {400, 404, 405, 413, 415, 422}


@pytest.mark.parametrize("bad", CATALOGUE, ids=[bad.name for bad in CATALOGUE])
def test_a_malformed_request_gets_its_problem_document(server, bad):
    response = send(server, bad)

    document = assert_problem_bytes(response, bad.status)
    jsonschema.validate(document, PROBLEM_SCHEMA)
    if bad.loc is not None:
        locations = [error["loc"] for error in document.get("errors", [])]
        assert bad.loc in locations, locations
    # Nothing from the body comes back but field names and indices.
    if len(bad.raw_body()) > 100:
        assert len(response.body) < 1000


def test_the_server_survived_the_catalogue(server):
    with connect(server.port) as sock:
        sock.sendall(request_bytes("POST", SIGMOID, b'{"x": [0]}'))
        response = read_response(sock)
    assert response.status == 200
    assert response.json()["value"] == [0.5]
    assert server.process.poll() is None
