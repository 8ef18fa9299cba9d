"""Bodies of 4 MiB and more take another parser (pydantic-core's) and the same
checks: every hazard a small body is refused for is refused here too, at the
same location, and valid numbers equal the core's."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from api_helpers import AppClient, assert_problem

from service.api.decoding import LARGE_BODY_BYTES
from service.core import cross_entropy_with_logits

CE = "/v1/losses/cross-entropy"
ROWS, CLASSES = 30_000, 10  # about 5.5 MiB of logits written by orjson


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    return {
        "logits": rng.normal(scale=3.0, size=(ROWS, CLASSES)).tolist(),
        "labels": rng.integers(0, CLASSES, size=ROWS).tolist(),
        "reduction": "sum",
        "hessian": True,
    }


def encode(document: dict[str, Any], **changes: Any) -> bytes:
    body = orjson.dumps({**document, **changes})
    assert len(body) >= LARGE_BODY_BYTES
    return body


def with_logit(document: dict[str, Any], row: int, value: Any) -> list[list[Any]]:
    logits = [list(r) for r in document["logits"]]
    logits[row][3] = value
    return logits


def test_a_valid_large_body_gives_the_core_s_numbers(client: AppClient, document):
    response = client.post_bytes(CE, encode(document))
    assert response.status_code == 200, response.text
    expected = cross_entropy_with_logits(
        np.array(document["logits"]),
        labels=np.array(document["labels"]),
        reduction="sum",
        hessian=True,
    )
    got = response.json()
    assert got["loss"] == expected.loss
    np.testing.assert_array_equal(got["gradient"], expected.gradient)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "boolean"),
        (None, "null"),
        ("1.5", "string"),
    ],
)
def test_non_numbers_in_a_large_array_are_located(
    client: AppClient, document, value, message
):
    body = encode(document, logits=with_logit(document, 12_345, value))
    problem = assert_problem(client.post_bytes(CE, body), 422)
    (error,) = problem["errors"]
    assert error["loc"] == ["body", "logits", 12_345, 3]
    assert message in error["msg"]


def test_a_number_beyond_float64_in_a_large_array_is_located(client, document):
    body = encode(document, logits=with_logit(document, 777, 7.25e300))
    assert body.count(b"7.25e+300") == 1
    body = body.replace(b"7.25e+300", b"7.25e+400")
    problem = assert_problem(client.post_bytes(CE, body), 422)
    assert problem["errors"][0]["loc"] == ["body", "logits", 777, 3]


def test_an_integer_beyond_64_bits_in_a_large_body_is_a_422(client, document):
    # pydantic-core's parser keeps such integers exact (orjson reads them as
    # floats); re-encoding them must not fail the request with a 500.
    body = encode(document, ignore_index=7).replace(
        b'"ignore_index":7', b'"ignore_index":123456789012345678901234567890'
    )
    problem = assert_problem(client.post_bytes(CE, body), 422)
    assert problem["errors"][0]["loc"] == ["body", "ignore_index"]


def test_a_duplicate_key_in_a_large_body_is_refused(client, document):
    body = encode(document).replace(
        b'"reduction":"sum"', b'"reduction":"sum","reduction":"none"'
    )
    problem = assert_problem(client.post_bytes(CE, body), 422)
    assert problem["errors"][0]["loc"] == ["body", "reduction"]
