"""A Python client generated from the committed openapi/openapi.json by
openapi-python-client: clean names, and every endpoint called against a live
``lossgrad serve``, its numbers checked against service.core."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from ecosystem_helpers import ROOT, LiveServer, clean_environment

from service import core
from service.settings import Settings

pytestmark = pytest.mark.slow

SPEC = ROOT / "openapi" / "openapi.json"
PACKAGE = "lossgrad_generated_client"

# One module per operation, under one folder per tag.
OPERATION_MODULES = {
    "api/functions/sigmoid.py",
    "api/functions/softmax.py",
    "api/losses/binary_cross_entropy.py",
    "api/losses/cross_entropy.py",
    "api/info/info.py",
    "api/health/health_live.py",
    "api/health/health_ready.py",
}
REQUIRED_MODELS = {
    "SigmoidRequest",
    "SigmoidResponse",
    "SoftmaxRequest",
    "SoftmaxResponse",
    "BinaryCrossEntropyRequest",
    "BinaryCrossEntropyResponse",
    "CrossEntropyRequest",
    "CrossEntropyResponse",
    "ServiceInfo",
    "Health",
    "Problem",
}
# What generators produce from an unnamed body or an operation without an id.
UNCLEAN = re.compile(r"body_|_post|_get|Body[A-Z]|Post$|Get$|Api[A-Z]", re.IGNORECASE)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("client")
    config = folder / "config.yaml"
    # No formatting hooks: the test needs the code, not its layout.
    config.write_text("post_hooks: []\n", encoding="utf-8")
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("openapi-python-client")),
            "generate",
            "--path",
            str(SPEC),
            "--output-path",
            str(folder / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in (done.stdout + done.stderr).lower()
    sys.path.insert(0, str(folder))
    try:
        yield folder / PACKAGE
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def client_package(generated: Path) -> ModuleType:
    return importlib.import_module(PACKAGE)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("server"), [], clean_environment())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(client_package: ModuleType, server: LiveServer) -> Iterator[Any]:
    with client_package.Client(
        base_url=server.base_url, raise_on_unexpected_status=True, timeout=30.0
    ) as client:
        yield client


def api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def models() -> Any:
    return importlib.import_module(f"{PACKAGE}.models")


def assert_close(actual: Any, expected: Any) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=float), expected, rtol=1e-14)


def test_generated_names_are_clean(generated, client_package):
    modules = {
        path.relative_to(generated).as_posix()
        for path in (generated / "api").rglob("*.py")
        if path.name != "__init__.py"
    }
    model_names = set(models().__all__)

    assert modules == OPERATION_MODULES
    assert model_names >= REQUIRED_MODELS
    files = [p.relative_to(generated).as_posix() for p in generated.rglob("*.py")]
    assert not [name for name in [*files, *model_names] if UNCLEAN.search(name)]


def test_sigmoid(client):
    x = [-3.0, 0.0, 0.5, 40.0]

    result = api("functions.sigmoid").sync(
        client=client, body=models().SigmoidRequest(x=x, order=2)
    )

    value, first, second = core.sigmoid_family(np.array(x), 2)
    assert_close(result.value, value)
    assert_close(result.derivative, first)
    assert_close(result.second_derivative, second)


def test_softmax(client):
    logits = [[1.0, 2.0, 3.0], [-1000.0, 0.0, 1000.0]]

    result = api("functions.softmax").sync(
        client=client, body=models().SoftmaxRequest(logits=logits)
    )

    probabilities, log_probabilities = core.softmax_and_log_softmax(np.array(logits))
    assert_close(result.probabilities, probabilities)
    assert_close(result.log_probabilities, log_probabilities)


def test_binary_cross_entropy_on_logits(client):
    logits, targets = [2.0, -1.0, 0.5, -40.0], [1.0, 0.0, 0.7, 1.0]
    weights, pos_weight = [1.0, 2.0, 0.5, 1.0], [1.0, 3.0, 0.5, 2.0]
    body = models().BinaryCrossEntropyRequest(
        logits=logits,
        targets=targets,
        weights=weights,
        pos_weight=pos_weight,
        label_smoothing=0.1,
        reduction=models().BinaryCrossEntropyRequestReduction.NONE,
        hessian=True,
    )

    result = api("losses.binary_cross_entropy").sync(client=client, body=body)

    expected = core.binary_cross_entropy_with_logits(
        np.array(logits),
        np.array(targets),
        weights=np.array(weights),
        pos_weight=np.array(pos_weight),
        label_smoothing=0.1,
        reduction="none",
        hessian=True,
    )
    assert result.loss is None
    assert_close(result.losses, expected.losses)
    assert_close(result.gradient, expected.gradient)
    assert_close(result.hessian, expected.hessian)
    assert result.clamped == 0


def test_binary_cross_entropy_on_probabilities(client):
    probabilities, targets = [0.9, 0.2, 0.0], [1.0, 0.0, 1.0]
    body = models().BinaryCrossEntropyRequest(
        probabilities=probabilities,
        targets=targets,
        pos_weight=2.0,
        reduction=models().BinaryCrossEntropyRequestReduction.SUM,
    )

    result = api("losses.binary_cross_entropy").sync(client=client, body=body)

    expected = core.binary_cross_entropy(
        np.array(probabilities), np.array(targets), pos_weight=2.0, reduction="sum"
    )
    assert_close(result.loss, expected.loss)
    assert_close(result.gradient, expected.gradient)
    assert result.hessian is None
    assert result.clamped == expected.clamped == 1


def test_cross_entropy_with_labels(client):
    logits = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [1.0, 1.0, 1.0]]
    labels, class_weights = [0, -100, 1], [1.0, 2.0, 0.5]
    body = models().CrossEntropyRequest(
        logits=logits, labels=labels, class_weights=class_weights, ignore_index=-100
    )

    result = api("losses.cross_entropy").sync(client=client, body=body)

    expected = core.cross_entropy_with_logits(
        np.array(logits),
        labels=np.array(labels),
        class_weights=np.array(class_weights),
        ignore_index=-100,
    )
    assert_close(result.loss, expected.loss)
    assert_close(result.losses, expected.losses)
    assert_close(result.gradient, expected.gradient)


def test_cross_entropy_against_distributions(client):
    probabilities = [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]
    targets = [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]
    body = models().CrossEntropyRequest(
        probabilities=probabilities,
        target_probabilities=targets,
        label_smoothing=0.2,
        reduction=models().CrossEntropyRequestReduction.SUM,
        hessian=True,
    )

    result = api("losses.cross_entropy").sync(client=client, body=body)

    expected = core.cross_entropy(
        np.array(probabilities),
        target_probabilities=np.array(targets),
        label_smoothing=0.2,
        reduction="sum",
        hessian=True,
    )
    assert_close(result.loss, expected.loss)
    assert_close(result.gradient, expected.gradient)
    assert_close(result.hessian, expected.hessian)


def test_info_and_health(client):
    info = api("info.info").sync(client=client)
    live = api("health.health_live").sync(client=client)
    ready = api("health.health_ready").sync(client=client)

    defaults = Settings()
    assert info.name == "lossgrad"
    assert info.limits.max_elements == defaults.max_elements
    assert info.limits.max_body_bytes == defaults.max_body_bytes
    assert {loss.name for loss in info.losses} == {
        "binary_cross_entropy",
        "cross_entropy",
    }
    assert (live.status.value, ready.status.value) == ("ok", "ready")


def test_errors_arrive_as_problem_models(client):
    body = models().BinaryCrossEntropyRequest(logits=[0.5, 1.0], targets=[1.0, 1.5])

    response = api("losses.binary_cross_entropy").sync_detailed(
        client=client, body=body
    )

    assert response.status_code == 422
    problem = response.parsed
    assert isinstance(problem, models().Problem)
    assert problem.status == 422
    assert [error.loc for error in problem.errors] == [["body", "targets", 1]]
