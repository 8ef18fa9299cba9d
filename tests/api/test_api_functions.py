"""POST /v1/sigmoid and /v1/softmax: the numbers are the core's, the shapes right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service import core

X = [-745.0, -30.0, -2.5, -1e-9, 0.0, 1e-9, 0.75, 3, 40.0, 800.0]


@pytest.mark.parametrize("order", [0, 1, 2])
def test_sigmoid_returns_the_cores_values_for_each_order(client, order):
    response = client.post("/v1/sigmoid", json={"x": X, "order": order})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    value, derivative, second = core.sigmoid_family(np.array(X, dtype=float), order)
    assert body["value"] == value.tolist()
    if order == 0:
        assert body["derivative"] is None
    else:
        assert body["derivative"] == derivative.tolist()
    if order == 2:
        assert body["second_derivative"] == second.tolist()
    else:
        assert body["second_derivative"] is None
    assert set(body) == {"value", "derivative", "second_derivative"}


def test_sigmoid_default_order_is_one(client):
    body = client.post("/v1/sigmoid", json={"x": [0.0]}).json()

    assert body["derivative"] is not None
    assert body["second_derivative"] is None


def test_sigmoid_values_match_the_closed_form(client):
    # An independent reference: σ(x) = 1/(1 + e^-x), σ' = σ(1-σ), σ'' = σ'(1-2σ).
    xs = [-3.0, -0.5, 0.0, 0.5, 3.0]
    body = client.post("/v1/sigmoid", json={"x": xs, "order": 2}).json()

    for i, x in enumerate(xs):
        s = 1.0 / (1.0 + math.exp(-x))
        assert body["value"][i] == pytest.approx(s, rel=1e-15)
        assert body["derivative"][i] == pytest.approx(s * (1 - s), rel=1e-14)
        assert body["second_derivative"][i] == pytest.approx(
            s * (1 - s) * (1 - 2 * s), rel=1e-12, abs=1e-300
        )


def test_sigmoid_accepts_json_integers_as_numbers(client):
    integers = client.post("/v1/sigmoid", json={"x": [-2, 0, 3]}).json()
    floats = client.post("/v1/sigmoid", json={"x": [-2.0, 0.0, 3.0]}).json()

    assert integers == floats


def test_softmax_returns_the_cores_values(client):
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=5.0, size=(7, 4))
    logits[3] = [1000.0, -1000.0, 0.0, 999.5]

    response = client.post("/v1/softmax", json={"logits": logits.tolist()})

    assert response.status_code == 200
    body = response.json()
    probabilities, log_probabilities = core.softmax_and_log_softmax(logits)
    assert body["probabilities"] == probabilities.tolist()
    assert body["log_probabilities"] == log_probabilities.tolist()
    assert np.shape(body["probabilities"]) == (7, 4)


def test_softmax_matches_the_closed_form(client):
    row = [1.0, 2.0, 3.0]
    body = client.post("/v1/softmax", json={"logits": [row]}).json()

    total = sum(math.exp(z) for z in row)
    for c, z in enumerate(row):
        assert body["probabilities"][0][c] == pytest.approx(math.exp(z) / total)
        assert body["log_probabilities"][0][c] == pytest.approx(z - math.log(total))


def test_softmax_of_a_single_class_is_one(client):
    body = client.post("/v1/softmax", json={"logits": [[5.0], [-3.0]]}).json()

    assert body == {
        "probabilities": [[1.0], [1.0]],
        "log_probabilities": [[0.0], [0.0]],
    }
