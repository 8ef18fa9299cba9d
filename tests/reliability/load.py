"""A bounded load with faults against a real server, for the load and shutdown
tests: valid requests of several sizes, each answer checked against the core,
malformed requests, and clients that leave in the middle of a body.

Every valid request is one of a few fixed templates.  The first answer to each
template is compared number by number with what :mod:`service.core` computes;
later answers must be the same bytes.  One asyncio task per connection sends
requests one after another on a keep-alive connection.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from malformed import CATALOGUE, Bad
from reliability_helpers import RawResponse, parse_head, request_bytes

from service import core

Expected = Mapping[str, Any]


@dataclass
class Template:
    """A valid request and the values the core computes for it."""

    name: str
    path: str
    body: bytes
    expected: Expected
    verified: bytes | None = None

    @property
    def request(self) -> bytes:
        return request_bytes("POST", self.path, self.body)


def _loss_expected(result: core.LossResult) -> dict[str, Any]:
    return {
        "loss": None if result.loss is None else float(result.loss),
        "losses": result.losses,
        "gradient": result.gradient,
        "hessian": result.hessian,
        "clamped": int(result.clamped),
    }


def sigmoid_template(name: str, n: int, seed: int, order: int = 2) -> Template:
    x = np.random.default_rng(seed).normal(0.0, 4.0, n)
    value, derivative, second = core.sigmoid_family(x, order)
    body = orjson.dumps({"x": x, "order": order}, option=orjson.OPT_SERIALIZE_NUMPY)
    expected = {"value": value, "derivative": derivative, "second_derivative": second}
    return Template(name, "/v1/sigmoid", body, expected)


def softmax_template(name: str, n: int, c: int, seed: int) -> Template:
    logits = np.random.default_rng(seed).normal(0.0, 3.0, (n, c))
    probabilities, log_probabilities = core.softmax_and_log_softmax(logits)
    body = orjson.dumps({"logits": logits}, option=orjson.OPT_SERIALIZE_NUMPY)
    expected = {"probabilities": probabilities, "log_probabilities": log_probabilities}
    return Template(name, "/v1/softmax", body, expected)


def bce_template(name: str, n: int, seed: int) -> Template:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 5.0, n)
    targets = rng.uniform(0.0, 1.0, n)
    weights = rng.uniform(0.0, 2.0, n)
    result = core.binary_cross_entropy_with_logits(
        logits, targets, weights=weights, pos_weight=2.0, reduction="sum", hessian=True
    )
    document = {
        "logits": logits,
        "targets": targets,
        "weights": weights,
        "pos_weight": 2.0,
        "reduction": "sum",
        "hessian": True,
    }
    body = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    return Template(
        name, "/v1/losses/binary-cross-entropy", body, _loss_expected(result)
    )


def ce_template(name: str, n: int, c: int, seed: int) -> Template:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 3.0, (n, c))
    labels = rng.integers(0, c, n)
    labels[::7] = -100
    result = core.cross_entropy_with_logits(
        logits, labels=labels, ignore_index=-100, label_smoothing=0.1, hessian=True
    )
    document = {
        "logits": logits,
        "labels": labels,
        "ignore_index": -100,
        "label_smoothing": 0.1,
        "hessian": True,
    }
    body = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    return Template(name, "/v1/losses/cross-entropy", body, _loss_expected(result))


def templates() -> dict[str, list[Template]]:
    """The valid requests by size: small, medium, and large (run off the loop)."""
    return {
        "small": [
            sigmoid_template("sigmoid-10", 10, 1),
            softmax_template("softmax-4x3", 4, 3, 2),
            bce_template("bce-100", 100, 3),
            ce_template("ce-50x10", 50, 10, 4),
        ],
        "medium": [
            sigmoid_template("sigmoid-5k", 5_000, 5),
            bce_template("bce-5k", 5_000, 6),
            ce_template("ce-500x10", 500, 10, 7),
        ],
        "large": [
            sigmoid_template("sigmoid-100k", 100_000, 8),
            ce_template("ce-5000x10", 5_000, 10, 9),
        ],
    }


def malformed_requests() -> list[Bad]:
    """Catalogue entries whose answer does not depend on the server's limits."""
    return [
        bad
        for bad in CATALOGUE
        if bad.status in (400, 404, 405, 415, 422)
        and not bad.chunked
        and len(bad.raw_body()) < 20_000
    ]


def assert_matches(template: Template, response: RawResponse) -> None:
    """The answer is 200 and its numbers are the core's, exactly."""
    assert response.status == 200, (template.name, response.status, response.body)
    if template.verified is not None and response.body == template.verified:
        return
    document = orjson.loads(response.body)
    assert document.keys() == template.expected.keys(), template.name
    for key, want in template.expected.items():
        got = document[key]
        if want is None or isinstance(want, int | float):
            assert got == want, (template.name, key)
        else:
            assert np.array_equal(np.asarray(got, dtype=np.float64), want), (
                template.name,
                key,
            )
    template.verified = response.body


@dataclass
class Tally:
    """What the load saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    valid: int = 0
    malformed: int = 0
    abandoned: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


async def read_answer(reader: asyncio.StreamReader) -> RawResponse:
    """Read one response with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, headers = parse_head(head[:-4])
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawResponse(status, headers, body)


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> RawResponse:
    """Send ``request`` and read its response."""
    writer.write(request)
    await writer.drain()
    return await read_answer(reader)


@dataclass
class Mix:
    """How often each kind of request is sent."""

    small: float = 0.55
    medium: float = 0.22
    large: float = 0.05
    malformed: float = 0.10
    abandoned: float = 0.08

    def choose(self, rng: random.Random) -> str:
        kinds = ["small", "medium", "large", "malformed", "abandoned"]
        weights = [self.small, self.medium, self.large, self.malformed, self.abandoned]
        return rng.choices(kinds, weights)[0]


async def client(
    port: int,
    until: Callable[[], bool],
    pool: dict[str, list[Template]],
    malformed: list[Bad],
    mix: Mix,
    tally: Tally,
    seed: int,
) -> None:
    """Send requests on one connection until ``until()``; reconnect as needed."""
    rng = random.Random(seed)
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while not until():
        if connection is None:
            connection = await asyncio.open_connection("127.0.0.1", port)
        reader, writer = connection
        kind = mix.choose(rng)
        if kind == "abandoned":
            # A client that leaves in the middle of its body, on its own connection.
            template = rng.choice(pool["medium"] + pool["large"])
            request = template.request
            _, leaving = await asyncio.open_connection("127.0.0.1", port)
            leaving.write(request[: len(request) // 2])
            await leaving.drain()
            await asyncio.sleep(rng.uniform(0.0, 0.02))
            if rng.random() < 0.5:
                leaving.transport.abort()  # a reset
            else:
                leaving.close()
            tally.abandoned += 1
            continue
        try:
            if kind == "malformed":
                bad = rng.choice(malformed)
                response = await exchange(
                    reader,
                    writer,
                    request_bytes(
                        bad.method,
                        bad.path,
                        bad.raw_body(),
                        content_type=bad.content_type,
                    ),
                )
                tally.malformed += 1
                tally.statuses[response.status] += 1
                if response.status != bad.status:
                    tally.failures.append(f"{bad.name}: {response.status}")
            else:
                template = rng.choice(pool[kind])
                response = await exchange(reader, writer, template.request)
                tally.valid += 1
                tally.statuses[response.status] += 1
                try:
                    assert_matches(template, response)
                except AssertionError as exc:
                    tally.failures.append(f"{template.name}: {exc}")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            tally.failures.append(f"{kind}: connection lost: {exc!r}")
            writer.close()
            connection = None
            continue
        if response.headers.get("connection") == "close":
            writer.close()
            connection = None
    if connection is not None:
        connection[1].close()


async def run_load(
    port: int,
    seconds: float,
    connections: int,
    pool: dict[str, list[Template]],
    malformed: list[Bad],
    mix: Mix | None = None,
    seed: int = 0,
) -> Tally:
    """Run ``connections`` clients for ``seconds``; bounded in time."""
    tally = Tally()
    deadline = time.monotonic() + seconds

    def until() -> bool:
        return time.monotonic() >= deadline

    await asyncio.wait_for(
        asyncio.gather(
            *(
                client(port, until, pool, malformed, mix or Mix(), tally, seed + i)
                for i in range(connections)
            )
        ),
        timeout=seconds + 60.0,
    )
    return tally
