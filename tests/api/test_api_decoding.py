"""The decode path below HTTP: the byte check, both validation paths, encoding."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from service.api.arrays import NUMBERS_ONLY
from service.api.decoding import encode_result, holds_only_numbers, parse_json
from service.api.errors import InvalidRequestError, MalformedJsonError
from service.api.models import (
    BinaryCrossEntropyRequest,
    CrossEntropyRequest,
    SigmoidRequest,
    SoftmaxRequest,
)


def only_numbers(body: bytes) -> bool:
    return holds_only_numbers(body, orjson.loads(body))


def padded(body: bytes, size: int) -> bytes:
    """``body`` with an array of zeros inserted first, ``size`` bytes or more long
    (small and large bodies are counted by different code)."""
    zeros = b",".join([b"0"] * (size // 2))
    return b'{"pad": [' + zeros + b"], " + body[1:]


@pytest.mark.parametrize("size", [0, 64 * 1024])
@pytest.mark.parametrize(
    "body",
    [
        b'{"x": [1, 2.5, -3e-7]}',
        b'{ "x" : [ 1 ,\n\t2 ] , "order" : 2 }',
        b'{"logits": [[1, 2], [3, 4]], "labels": [0, 1], "reduction": "none"}',
        b'{"logits": [1E5], "targets": [0.5], "hessian": true, "weights": null}',
    ],
)
def test_bodies_of_numbers_pass_the_byte_check(body, size):
    assert only_numbers(padded(body, size) if size else body)


@pytest.mark.parametrize("size", [0, 64 * 1024])
@pytest.mark.parametrize(
    "body",
    [
        b'{"x": [1, true]}',
        b'{"x": [false, 1]}',
        b'{"x": [1, null]}',
        b'{"x": [1, "2"]}',
        b'{"x": [1, {}]}',
        b'{"x": [1], "x": [2]}',
        b'{"hessian": true, "x": [true]}',
    ],
)
def test_anything_else_in_arrays_fails_the_byte_check(body, size):
    assert not only_numbers(padded(body, size) if size else body)


@pytest.mark.parametrize("trusted", [True, False])
def test_both_validation_paths_agree_on_valid_input(trusted):
    document = {"logits": [[1, 2.5], [-3, 0]], "labels": [1, 0]}

    request = CrossEntropyRequest.model_validate(
        document, context={NUMBERS_ONLY: trusted}
    )

    assert request.logits.dtype == np.float64
    assert request.logits.tolist() == [[1.0, 2.5], [-3.0, 0.0]]
    assert request.labels.dtype == np.int64
    assert request.labels.tolist() == [1, 0]


@pytest.mark.parametrize(
    ("document", "loc"),
    [
        ({"logits": [[1, [2]]]}, ("logits", 0, 1)),
        ({"logits": [[1, 2], 3]}, ("logits", 1)),
        ({"logits": [[1, 2], [3, 4, 5]]}, ("logits", 1)),
    ],
)
def test_the_trusted_path_still_locates_nested_arrays(document, loc):
    with pytest.raises(ValidationError) as caught:
        SoftmaxRequest.model_validate(document, context={NUMBERS_ONLY: True})

    assert caught.value.errors()[0]["loc"] == loc


def test_python_callers_may_pass_numpy_arrays_and_scalars():
    from_arrays = SigmoidRequest(x=np.array([1, 2, 3], dtype=np.int32))
    from_scalars = SigmoidRequest.model_validate({"x": [np.float32(0.5), np.int64(2)]})

    assert from_arrays.x.dtype == np.float64
    assert from_arrays.x.tolist() == [1.0, 2.0, 3.0]
    assert from_scalars.x.tolist() == [0.5, 2.0]


@pytest.mark.parametrize(
    ("x", "loc"),
    [
        ([1.0, math.nan], ("x", 1)),
        ([math.inf], ("x", 0)),
        ([1, 10**400], ("x", 1)),
        (np.array([1.0, np.nan]), ("x", 1)),
        (np.array([True, False]), ("x",)),
        (np.array([[1.0]]), ("x",)),
        (np.array([], dtype=float), ("x",)),
    ],
)
def test_python_callers_get_the_same_checks(x, loc):
    with pytest.raises(ValidationError) as caught:
        SigmoidRequest.model_validate({"x": x})

    assert caught.value.errors()[0]["loc"] == loc


def test_labels_beyond_int64_are_refused_not_wrapped():
    with pytest.raises(ValidationError) as caught:
        CrossEntropyRequest.model_validate(
            {"logits": [[0.0, 1.0]], "labels": np.array([2**64 - 1], dtype=np.uint64)}
        )

    assert caught.value.errors()[0]["loc"] == ("labels", 0)


def test_pos_weight_is_a_number_or_an_array():
    scalar = BinaryCrossEntropyRequest.model_validate(
        {"logits": [0.0, 1.0], "targets": [1.0, 0.0], "pos_weight": 2}
    )
    vector = BinaryCrossEntropyRequest.model_validate(
        {"logits": [0.0, 1.0], "targets": [1.0, 0.0], "pos_weight": [2, 3]}
    )

    assert scalar.pos_weight == 2.0 and isinstance(scalar.pos_weight, float)
    assert vector.pos_weight.tolist() == [2.0, 3.0]


def test_parse_refuses_non_json_with_its_position():
    with pytest.raises(MalformedJsonError) as caught:
        parse_json(b'{"x": [1,\n 2,, 3]}')

    assert "line 2" in caught.value.detail


def test_encoding_writes_numpy_arrays_exactly():
    values = np.array([0.1, -2.5e-300, 1.7976931348623157e308, 5e-324])
    strided = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]

    encoded = orjson.loads(encode_result({"a": values, "b": strided, "n": None}))

    assert encoded["a"] == values.tolist()
    assert encoded["b"] == strided.tolist()
    assert encoded["n"] is None


@pytest.mark.parametrize(
    "payload",
    [
        {"losses": np.array([1.0, np.inf])},
        {"losses": np.array([np.nan])},
        {"loss": math.inf},
    ],
)
def test_encoding_refuses_non_finite_results(payload):
    with pytest.raises(InvalidRequestError):
        encode_result(payload)


def test_encoding_accepts_finite_arrays_whose_sum_overflows():
    payload = {"gradient": np.array([[1e308, 1e308]])}

    assert orjson.loads(encode_result(payload)) == {"gradient": [[1e308, 1e308]]}
