"""Every validation rule answers 422 with a problem document pointing at the culprit."""

from __future__ import annotations

import pytest
from api_helpers import assert_problem

SIGMOID = "/v1/sigmoid"
SOFTMAX = "/v1/softmax"
BCE = "/v1/losses/binary-cross-entropy"
CE = "/v1/losses/cross-entropy"

LOGITS = [0.5, -1.0, 2.0]
TARGETS = [1.0, 0.0, 1.0]
Z = [[1.0, 2.0, 3.0], [0.0, 0.5, -0.5]]
P = [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]

# (path, body, the loc one of the errors must have)
CASES = [
    # sigmoid: types, sizes, options
    (SIGMOID, {}, ["body", "x"]),
    (SIGMOID, {"x": []}, ["body", "x"]),
    (SIGMOID, {"x": 5}, ["body", "x"]),
    (SIGMOID, {"x": "1, 2"}, ["body", "x"]),
    (SIGMOID, {"x": None}, ["body", "x"]),
    (SIGMOID, {"x": [1, "2"]}, ["body", "x", 1]),
    (SIGMOID, {"x": [1.0, 2.0, True]}, ["body", "x", 2]),
    (SIGMOID, {"x": [False]}, ["body", "x", 0]),
    (SIGMOID, {"x": [0, None]}, ["body", "x", 1]),
    (SIGMOID, {"x": [0, [1]]}, ["body", "x", 1]),
    (SIGMOID, {"x": [0, {"a": 1}]}, ["body", "x", 1]),
    (SIGMOID, {"x": [1], "order": 3}, ["body", "order"]),
    (SIGMOID, {"x": [1], "order": -1}, ["body", "order"]),
    (SIGMOID, {"x": [1], "order": True}, ["body", "order"]),
    (SIGMOID, {"x": [1], "order": 1.5}, ["body", "order"]),
    (SIGMOID, {"x": [1], "order": "2"}, ["body", "order"]),
    (SIGMOID, {"x": [1], "orders": 2}, ["body", "orders"]),
    # softmax: shape of the matrix
    (SOFTMAX, {"logits": []}, ["body", "logits"]),
    (SOFTMAX, {"logits": [[]]}, ["body", "logits", 0]),
    (SOFTMAX, {"logits": [1.0, 2.0]}, ["body", "logits", 0]),
    (SOFTMAX, {"logits": [[1.0, 2.0], 3.0]}, ["body", "logits", 1]),
    (SOFTMAX, {"logits": [[1.0, 2.0], [3.0, 4.0], [5.0]]}, ["body", "logits", 2]),
    (SOFTMAX, {"logits": [[1.0, 2.0], [3.0, "4"]]}, ["body", "logits", 1, 1]),
    (SOFTMAX, {"logits": [[1.0, True]]}, ["body", "logits", 0, 1]),
    (SOFTMAX, {"logits": [[1.0, [2.0]]]}, ["body", "logits", 0, 1]),
    # binary cross-entropy: which input, lengths, ranges, options
    (BCE, {"targets": TARGETS}, ["body"]),
    (BCE, {"logits": LOGITS, "probabilities": TARGETS, "targets": TARGETS}, ["body"]),
    (BCE, {"logits": LOGITS}, ["body", "targets"]),
    (BCE, {"logits": LOGITS, "targets": [1.0, 0.0]}, ["body", "targets"]),
    (BCE, {"logits": LOGITS, "targets": [1.0, 1.5, 0.0]}, ["body", "targets", 1]),
    (BCE, {"logits": LOGITS, "targets": [1.0, 0.0, -0.1]}, ["body", "targets", 2]),
    (
        BCE,
        {"probabilities": [0.5, 1.01, 0.5], "targets": TARGETS},
        ["body", "probabilities", 1],
    ),
    (
        BCE,
        {"logits": LOGITS, "targets": TARGETS, "weights": [1.0]},
        ["body", "weights"],
    ),
    (
        BCE,
        {"logits": LOGITS, "targets": TARGETS, "weights": [1.0, -2.0, 1.0]},
        ["body", "weights", 1],
    ),
    (
        BCE,
        {"logits": LOGITS, "targets": TARGETS, "pos_weight": 0},
        ["body", "pos_weight"],
    ),
    (
        BCE,
        {"logits": LOGITS, "targets": TARGETS, "pos_weight": -1.5},
        ["body", "pos_weight"],
    ),
    (
        BCE,
        {"logits": LOGITS, "targets": TARGETS, "pos_weight": True},
        ["body", "pos_weight"],
    ),
    (
        BCE,
        {"logits": LOGITS, "targets": TARGETS, "pos_weight": "2"},
        ["body", "pos_weight"],
    ),
    (
        BCE,
        {"logits": LOGITS, "targets": TARGETS, "pos_weight": [1.0, 2.0]},
        ["body", "pos_weight"],
    ),
    (
        BCE,
        {"logits": LOGITS, "targets": TARGETS, "pos_weight": [1.0, 0.0, 1.0]},
        ["body", "pos_weight", 1],
    ),
    (
        BCE,
        {"logits": LOGITS, "targets": TARGETS, "label_smoothing": 1.0},
        ["body", "label_smoothing"],
    ),
    (
        BCE,
        {"logits": LOGITS, "targets": TARGETS, "label_smoothing": -0.1},
        ["body", "label_smoothing"],
    ),
    (
        BCE,
        {"logits": LOGITS, "targets": TARGETS, "reduction": "avg"},
        ["body", "reduction"],
    ),
    (BCE, {"logits": LOGITS, "targets": TARGETS, "hessian": 1}, ["body", "hessian"]),
    (
        BCE,
        {"logits": LOGITS, "targets": TARGETS, "hessian": "true"},
        ["body", "hessian"],
    ),
    # cross-entropy: which inputs and targets, shapes, ranges, sums, options
    (CE, {"labels": [0, 1]}, ["body"]),
    (CE, {"logits": Z, "probabilities": P, "labels": [0, 1]}, ["body"]),
    (CE, {"logits": Z}, ["body"]),
    (
        CE,
        {"logits": Z, "labels": [0, 1], "target_probabilities": [[1, 0, 0]] * 2},
        ["body"],
    ),
    (CE, {"logits": Z, "labels": [0]}, ["body", "labels"]),
    (CE, {"logits": Z, "labels": [0, 3]}, ["body", "labels", 1]),
    (CE, {"logits": Z, "labels": [-1, 0]}, ["body", "labels", 0]),
    (CE, {"logits": Z, "labels": [0, -100], "ignore_index": -1}, ["body", "labels", 1]),
    (CE, {"logits": Z, "labels": [0, 1.5]}, ["body", "labels", 1]),
    (CE, {"logits": Z, "labels": [True, 0]}, ["body", "labels", 0]),
    (CE, {"logits": Z, "labels": [0, 2**64]}, ["body", "labels", 1]),
    (
        CE,
        {"logits": Z, "labels": [0, 1], "ignore_index": 1.5},
        ["body", "ignore_index"],
    ),
    (
        CE,
        {"logits": Z, "target_probabilities": [[1, 0, 0]] * 2, "ignore_index": 0},
        ["body", "ignore_index"],
    ),
    (
        CE,
        {"logits": Z, "target_probabilities": [[1, 0, 0]]},
        ["body", "target_probabilities"],
    ),
    (
        CE,
        {"logits": Z, "target_probabilities": [[1, 0], [0, 1]]},
        ["body", "target_probabilities", 0],
    ),
    (
        CE,
        {"logits": Z, "target_probabilities": [[1, 0, 0], [0.5, 0.4, 0]]},
        ["body", "target_probabilities", 1],
    ),
    (
        CE,
        {"logits": Z, "target_probabilities": [[1, 0, 0], [1.5, -0.5, 0]]},
        ["body", "target_probabilities", 1, 0],
    ),
    (
        CE,
        {"logits": Z, "target_probabilities": [[1, 0, 0], [0, 1]]},
        ["body", "target_probabilities", 1],
    ),
    (
        CE,
        {"probabilities": [[0.5, 0.5, 0.0], [0.2, 0.2, 0.2]], "labels": [0, 1]},
        ["body", "probabilities", 1],
    ),
    (
        CE,
        {"probabilities": [[0.5, 0.5, 0.0], [1.2, -0.2, 0.0]], "labels": [0, 1]},
        ["body", "probabilities", 1, 0],
    ),
    (
        CE,
        {"logits": Z, "labels": [0, 1], "class_weights": [1.0, 1.0]},
        ["body", "class_weights"],
    ),
    (
        CE,
        {"logits": Z, "labels": [0, 1], "class_weights": [1.0, 1.0, -1.0]},
        ["body", "class_weights", 2],
    ),
    (
        CE,
        {"logits": Z, "labels": [0, 1], "label_smoothing": 1.5},
        ["body", "label_smoothing"],
    ),
    (CE, {"logits": [[1.0, 2.0], [3.0]], "labels": [0, 1]}, ["body", "logits", 1]),
    (CE, {"logits": Z, "labels": [0, 1], "reduction": None}, ["body", "reduction"]),
]


@pytest.mark.parametrize(("path", "body", "loc"), CASES)
def test_invalid_request_is_422_pointing_at_the_culprit(client, path, body, loc):
    response = client.post(path, json=body)

    assert_problem(response, 422, loc)


def test_the_first_offending_element_is_named(client):
    # The issue's own example: targets[17] is the first value outside [0, 1].
    targets = [0.5] * 30
    targets[17] = 1.5
    targets[23] = -1.0

    response = client.post(BCE, json={"logits": [0.0] * 30, "targets": targets})

    document = assert_problem(response, 422, ["body", "targets", 17])
    assert document["errors"] == [
        {"loc": ["body", "targets", 17], "msg": "must be in [0, 1]; got 1.5"}
    ]


def test_independent_errors_are_all_reported(client):
    response = client.post(
        BCE,
        json={
            "logits": LOGITS,
            "targets": [1.0],
            "weights": [1.0],
            "pos_weight": [1.0],
        },
    )

    document = assert_problem(response, 422)
    locations = sorted(error["loc"] for error in document["errors"])
    assert locations == [
        ["body", "pos_weight"],
        ["body", "targets"],
        ["body", "weights"],
    ]


def test_the_both_and_neither_messages_say_which(client):
    both = client.post(
        BCE, json={"logits": LOGITS, "probabilities": TARGETS, "targets": TARGETS}
    )
    neither = client.post(CE, json={"logits": Z})

    assert "both" in assert_problem(both, 422)["errors"][0]["msg"]
    assert "labels or target_probabilities" in neither.json()["errors"][0]["msg"]
    assert "neither" in neither.json()["errors"][0]["msg"]


def test_labels_equal_to_ignore_index_are_accepted_even_outside_the_classes(client):
    response = client.post(
        CE, json={"logits": Z, "labels": [-100, 2], "ignore_index": -100}
    )

    assert response.status_code == 200


def test_probability_rows_within_the_tolerance_are_accepted(client):
    rows = [[0.5, 0.5 + 0.9e-6, 0.0], [0.2, 0.3, 0.5 - 0.9e-6]]

    response = client.post(
        CE, json={"probabilities": rows, "target_probabilities": rows}
    )

    assert response.status_code == 200


def test_probability_rows_just_outside_the_tolerance_are_refused(client):
    rows = [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5 + 1.1e-6]]

    response = client.post(CE, json={"logits": Z, "target_probabilities": rows})

    assert_problem(response, 422, ["body", "target_probabilities", 1])


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b'{"x": [0.5, NaN]}', ["body", "x", 1]),
        (b'{"x": [Infinity]}', ["body", "x", 0]),
        (b'{"x": [1, 2, -Infinity]}', ["body", "x", 2]),
        (b'{"x": [1, 2, 1e400]}', ["body", "x", 2]),
        (b'{"x": [-1.5e309]}', ["body", "x", 0]),
        (b'{"logits": [[0, 1], [2, 1e999]]}', ["body", "logits", 1, 1]),
        (b'{"x": [1], "order": NaN}', ["body", "order"]),
    ],
)
def test_non_finite_literals_and_huge_numbers_are_422_with_their_place(
    client, body, loc
):
    path = SOFTMAX if b"logits" in body else SIGMOID

    response = client.post_bytes(path, body)

    assert_problem(response, 422, loc)


def test_duplicate_keys_are_refused(client):
    response = client.post_bytes(SIGMOID, b'{"x": [1.0], "order": 0, "x": [2.0]}')

    assert_problem(response, 422, ["body", "x"])


def test_escaped_keys_are_still_understood(client):
    # "\u0078" is "x": the fast path's byte check misses, the slow path agrees.
    response = client.post_bytes(SIGMOID, b'{"\\u0078": [0.0], "order": 0}')

    assert response.status_code == 200
    assert response.json()["value"] == [0.5]


@pytest.mark.parametrize(
    "body",
    [b'[{"x": [1]}]', b'"x"', b"3", b"null"],
)
def test_a_body_that_is_not_an_object_is_422(client, body):
    assert_problem(client.post_bytes(SIGMOID, body), 422, ["body"])
