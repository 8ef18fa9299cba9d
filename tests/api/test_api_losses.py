"""POST /v1/losses/*: every option reaches the core, and the answer is the core's."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from service import core

N, C = 6, 4
RNG = np.random.default_rng(7)
LOGITS = RNG.normal(scale=3.0, size=N)
# Probabilities on both boundaries as well, so that clamps and caps happen.
PROBABILITIES = np.array([0.0, 1.0, 0.3, 0.999, 1e-9, 0.5])
TARGETS = np.array([1.0, 0.0, 0.25, 1.0, 0.0, 0.5])
WEIGHTS = np.array([1.0, 0.5, 2.0, 0.0, 1.0, 3.0])
POS_WEIGHTS = np.array([1.0, 2.0, 0.5, 4.0, 1.0, 1.5])

LOGITS_2D = RNG.normal(scale=2.0, size=(N, C))
PROBABILITIES_2D = np.exp(LOGITS_2D) / np.exp(LOGITS_2D).sum(axis=1, keepdims=True)
PROBABILITIES_2D[0] = [1.0, 0.0, 0.0, 0.0]  # an exact zero to clamp
LABELS = np.array([0, 3, 1, 2, 2, 1])
LABELS_WITH_IGNORED = np.array([0, -100, 1, 2, -100, 1])
TARGET_PROBABILITIES = np.full((N, C), 0.1)
TARGET_PROBABILITIES[:, 0] = 0.7
CLASS_WEIGHTS = np.array([1.0, 2.0, 0.5, 0.0])


def assert_same_result(body, result):
    """The HTTP answer carries exactly the core's numbers."""
    assert set(body) == {"loss", "losses", "gradient", "hessian", "clamped"}
    assert body["loss"] == result.loss
    assert body["losses"] == result.losses.tolist()
    assert body["gradient"] == result.gradient.tolist()
    assert body["hessian"] == (
        None if result.hessian is None else result.hessian.tolist()
    )
    assert body["clamped"] == result.clamped


BCE_CASES = list(
    itertools.product(
        ["logits", "probabilities"],
        ["mean", "sum", "none"],
        [False, True],
        [None, "weights"],
        [None, 2.5, "array"],
        [0.0, 0.2],
    )
)


@pytest.mark.parametrize(
    ("inputs", "reduction", "hessian", "weights", "pos_weight", "smoothing"), BCE_CASES
)
def test_binary_cross_entropy_equals_the_core(
    client, inputs, reduction, hessian, weights, pos_weight, smoothing
):
    values = LOGITS if inputs == "logits" else PROBABILITIES
    options = {
        "weights": WEIGHTS if weights else None,
        "pos_weight": POS_WEIGHTS if pos_weight == "array" else pos_weight,
        "label_smoothing": smoothing,
        "reduction": reduction,
        "hessian": hessian,
    }
    request = {inputs: values.tolist(), "targets": TARGETS.tolist()}
    request |= {
        k: v.tolist() if isinstance(v, np.ndarray) else v
        for k, v in options.items()
        if v is not None
    }

    response = client.post("/v1/losses/binary-cross-entropy", json=request)

    assert response.status_code == 200, response.text
    function = (
        core.binary_cross_entropy_with_logits
        if inputs == "logits"
        else core.binary_cross_entropy
    )
    assert_same_result(response.json(), function(values, TARGETS, **options))


def test_binary_cross_entropy_defaults_are_mean_without_hessian(client):
    body = client.post(
        "/v1/losses/binary-cross-entropy",
        json={"logits": LOGITS.tolist(), "targets": TARGETS.tolist()},
    ).json()

    assert_same_result(body, core.binary_cross_entropy_with_logits(LOGITS, TARGETS))
    assert body["hessian"] is None
    assert body["clamped"] == 0


def test_binary_cross_entropy_on_logits_matches_the_closed_form(client):
    # ℓ = log(1 + e^z) - t·z; dℓ/dz = σ(z) - t; d²ℓ/dz² = σ(z)(1 - σ(z)).
    z, t = [2.0, -1.0, 0.5], [1.0, 0.0, 0.25]
    body = client.post(
        "/v1/losses/binary-cross-entropy",
        json={"logits": z, "targets": t, "reduction": "none", "hessian": True},
    ).json()

    assert body["loss"] is None
    for i in range(3):
        s = 1 / (1 + math.exp(-z[i]))
        assert body["losses"][i] == pytest.approx(
            math.log1p(math.exp(z[i])) - t[i] * z[i]
        )
        assert body["gradient"][i] == pytest.approx(s - t[i])
        assert body["hessian"][i] == pytest.approx(s * (1 - s))


def test_binary_cross_entropy_mean_divides_the_gradient_by_n(client):
    z, t = [0.3, -0.7, 1.1, 0.0], [1.0, 0.0, 1.0, 1.0]
    body = client.post(
        "/v1/losses/binary-cross-entropy", json={"logits": z, "targets": t}
    ).json()

    expected = [(1 / (1 + math.exp(-zi)) - ti) / 4 for zi, ti in zip(z, t, strict=True)]
    assert body["gradient"] == pytest.approx(expected)
    assert body["loss"] == pytest.approx(sum(body["losses"]) / 4)


def test_binary_cross_entropy_counts_clamped_probabilities(client):
    body = client.post(
        "/v1/losses/binary-cross-entropy",
        json={"probabilities": [0.0, 0.5, 1.0], "targets": [1.0, 1.0, 0.0]},
    ).json()

    # log 0 is clamped at -100 for the first and last element.
    assert body["clamped"] == 2
    assert body["losses"] == [100.0, pytest.approx(math.log(2)), 100.0]


CE_CASES = list(
    itertools.product(
        ["logits", "probabilities"],
        ["labels", "ignored labels", "target_probabilities"],
        [None, "class_weights"],
        [0.0, 0.2],
        ["mean", "sum", "none"],
        [False, True],
    )
)


@pytest.mark.parametrize(
    ("inputs", "targets", "class_weights", "smoothing", "reduction", "hessian"),
    CE_CASES,
)
def test_cross_entropy_equals_the_core(
    client, inputs, targets, class_weights, smoothing, reduction, hessian
):
    values = LOGITS_2D if inputs == "logits" else PROBABILITIES_2D
    options = {
        "class_weights": CLASS_WEIGHTS if class_weights else None,
        "label_smoothing": smoothing,
        "reduction": reduction,
        "hessian": hessian,
    }
    if targets == "labels":
        options["labels"] = LABELS
    elif targets == "ignored labels":
        options["labels"] = LABELS_WITH_IGNORED
        options["ignore_index"] = -100
    else:
        options["target_probabilities"] = TARGET_PROBABILITIES
    request = {inputs: values.tolist()} | {
        k: v.tolist() if isinstance(v, np.ndarray) else v
        for k, v in options.items()
        if v is not None
    }

    response = client.post("/v1/losses/cross-entropy", json=request)

    assert response.status_code == 200, response.text
    function = (
        core.cross_entropy_with_logits if inputs == "logits" else core.cross_entropy
    )
    body = response.json()
    assert_same_result(body, function(values, **options))
    assert np.shape(body["gradient"]) == (N, C)
    if hessian:
        assert np.shape(body["hessian"]) == (N, C)


def test_cross_entropy_with_labels_matches_the_closed_form(client):
    # ℓ_n = log Σ_c e^{z_nc} - z_{n,y_n}; ∂ℓ_n/∂z_nc = p_nc - [c = y_n].
    z = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]
    labels = [0, 2]
    body = client.post(
        "/v1/losses/cross-entropy",
        json={"logits": z, "labels": labels, "reduction": "sum"},
    ).json()

    total = 0.0
    for n, row in enumerate(z):
        lse = math.log(sum(math.exp(v) for v in row))
        total += lse - row[labels[n]]
        for c, v in enumerate(row):
            expected = math.exp(v - lse) - (c == labels[n])
            assert body["gradient"][n][c] == pytest.approx(expected, abs=1e-15)
    assert body["loss"] == pytest.approx(total)


def test_cross_entropy_ignored_rows_contribute_nothing(client):
    body = client.post(
        "/v1/losses/cross-entropy",
        json={
            "logits": [[1.0, 2.0], [3.0, -1.0]],
            "labels": [7, 1],
            "ignore_index": 7,
            "reduction": "none",
            "hessian": True,
        },
    ).json()

    assert body["losses"][0] == 0.0
    assert body["gradient"][0] == [0.0, 0.0]
    assert body["hessian"][0] == [0.0, 0.0]
    assert body["losses"][1] > 0


def test_cross_entropy_label_smoothing_of_one_is_accepted(client):
    response = client.post(
        "/v1/losses/cross-entropy",
        json={"logits": [[0.0, 0.0]], "labels": [1], "label_smoothing": 1.0},
    )

    assert response.status_code == 200
    # Uniform targets against uniform predictions: the loss is log C.
    assert response.json()["loss"] == pytest.approx(math.log(2))
