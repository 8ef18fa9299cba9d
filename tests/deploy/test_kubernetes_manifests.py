"""The Kubernetes manifests: schema-valid, consistent with each other and the app."""

from __future__ import annotations

import asyncio
import copy
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from dockerfile_tools import Stage
from kubernetes_validate.utils import all_versions

from service.settings import Settings

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"

# The oldest release still in wide use that has every API version used here
# (autoscaling/v2 and policy/v1 are GA from 1.23), and the newest the validator
# knows.
KUBERNETES_VERSIONS = ["1.29.0", all_versions()[-1]]


def _load(name: str) -> list[dict[str, Any]]:
    with (MANIFESTS / name).open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def _resources() -> list[dict[str, Any]]:
    (kustomization,) = _load("kustomization.yaml")
    return [doc for name in kustomization["resources"] for doc in _load(name)]


def _one(kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in _resources() if doc["kind"] == kind]
    return found


def _container() -> dict[str, Any]:
    (container,) = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def _quantity(value: str | int) -> float:
    # Kubernetes resource quantities used here: cores, millicores, binary bytes.
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?", str(value))
    assert match, value
    scale = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return float(match.group(1)) * scale[match.group(2)]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network use: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = _load("kustomization.yaml")
    on_disk = {path.name for path in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}

    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(on_disk)
    kinds = {doc["kind"] for doc in _resources()}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap"} <= kinds


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    for resource in _resources():
        # Strict: an unknown or misspelt field is an error, not silently dropped.
        kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.usefixtures("no_network")
def test_schema_validation_rejects_broken_manifests() -> None:
    # Control: the validator as called above does reject real mistakes.
    deployment = _one("Deployment")
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}

    for broken in (wrong_type, misspelt):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_configmap_keys_are_settings() -> None:
    data = _one("ConfigMap")["data"]
    fields = {
        key.removeprefix("LOSSGRAD_").lower(): value for key, value in data.items()
    }

    assert all(key.startswith("LOSSGRAD_") for key in data)
    assert set(fields) <= set(Settings.model_fields), set(fields) - set(
        Settings.model_fields
    )
    assert "api_keys" not in fields, "secrets go in a Secret, not a ConfigMap"
    # Every value is one Settings accepts (types, ranges, choices).
    Settings(**fields)


def test_deployment_reads_the_configmap_and_runs_one_worker() -> None:
    container = _container()
    configmap = _one("ConfigMap")
    refs = [
        ref["configMapRef"]["name"]
        for ref in container["envFrom"]
        if "configMapRef" in ref
    ]
    assert refs == [configmap["metadata"]["name"]]

    # What the process sees: envFrom first, then env, which wins.
    effective = dict(configmap["data"])
    effective.update({item["name"]: item["value"] for item in container["env"]})
    settings = Settings(
        **{
            key.removeprefix("LOSSGRAD_").lower(): value
            for key, value in effective.items()
        }
    )
    assert settings.workers == 1
    assert settings.host == "0.0.0.0"


def test_probes_hit_the_app_health_routes_on_its_port() -> None:
    from service.app import create_app

    container = _container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    settings = Settings(
        **{
            key.removeprefix("LOSSGRAD_").lower(): value
            for key, value in _one("ConfigMap")["data"].items()
        }
    )

    paths = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        action = container[probe]["httpGet"]
        assert ports[action["port"]] == settings.port
        paths[probe] = action["path"]
    assert paths["livenessProbe"] == "/health/live"
    assert paths["readinessProbe"] == "/health/ready"

    # A fresh app with the pod's settings, started as uvicorn starts it.
    app = create_app(settings)

    async def statuses() -> dict[str, int]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://lossgrad"
            ) as client:
                return {
                    path: (await client.get(path)).status_code
                    for path in sorted(set(paths.values()))
                }

    assert asyncio.run(statuses()) == dict.fromkeys(set(paths.values()), 200)


def test_service_and_hpa_point_at_the_deployment() -> None:
    deployment = _one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()

    service = _one("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {port["name"] for port in _container()["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names

    hpa = _one("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == (
        "Deployment",
        deployment["metadata"]["name"],
    )
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert 1 < hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]

    for pdb in (doc for doc in _resources() if doc["kind"] == "PodDisruptionBudget"):
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_resources_have_requests_within_limits() -> None:
    resources = _container()["resources"]
    for name in ("cpu", "memory"):
        request = _quantity(resources["requests"][name])
        limit = _quantity(resources["limits"][name])
        assert 0 < request <= limit, name
    # One process uses at most about one core; the HPA's percentage is of this.
    assert _quantity(resources["requests"]["cpu"]) <= 1


def test_pod_is_locked_down_and_matches_the_image_user(stages: list[Stage]) -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    container = _container()

    (user,) = stages[-1].of("USER")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == user.args.split(":")[0]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]

    # /tmp is the one writable path, on an emptyDir.
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_grace_period_covers_graceful_shutdown() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    container = _container()
    data = _one("ConfigMap")["data"]
    graceful = Settings(
        graceful_timeout=data["LOSSGRAD_GRACEFUL_TIMEOUT"]
    ).graceful_timeout

    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause = float(command[1])
    # SIGTERM comes after the preStop pause; uvicorn then has graceful_timeout
    # seconds to finish requests before the kubelet's SIGKILL.
    assert pod["terminationGracePeriodSeconds"] >= pause + graceful + 1


def test_image_tag_is_the_project_version(pyproject: dict[str, Any]) -> None:
    image = _container()["image"]
    assert image == f"lossgrad:{pyproject['project']['version']}"
