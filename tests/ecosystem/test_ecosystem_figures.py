"""docs/plot_figures.py: its curves are the true functions, it draws the PNG the
README shows, and matplotlib stays out of the service."""

from __future__ import annotations

import asyncio
import importlib.util
import struct
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from types import ModuleType

import mpmath
import pytest
from ecosystem_helpers import ROOT, clean_environment

SCRIPT = ROOT / "docs" / "plot_figures.py"
FIGURE = ROOT / "docs" / "sigmoid-and-bce.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
mpmath.mp.dps = 40


@pytest.fixture(scope="module")
def script() -> Iterator[ModuleType]:
    name = "lossgrad_docs_plot_figures"
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclass resolves annotations through sys.modules.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


@pytest.fixture(scope="module")
def curves(script):
    return asyncio.run(script.collect_in_process())


def sigma(x):
    return 1 / (1 + mpmath.exp(-x))


def check(values, reference, points) -> None:
    """``values`` against an mpmath ``reference`` at every 16th point."""
    for i in range(0, len(points), 16):
        expected = float(reference(mpmath.mpf(float(points[i]))))
        assert values[i] == pytest.approx(expected, rel=1e-12, abs=1e-15), i


def test_sigmoid_curves_are_sigma_and_its_derivatives(curves):
    check(curves.sigmoid, sigma, curves.x)
    check(curves.first_derivative, lambda x: mpmath.diff(sigma, x), curves.x)
    check(curves.second_derivative, lambda x: mpmath.diff(sigma, x, 2), curves.x)


@pytest.mark.parametrize("t", [0.0, 1.0])
def test_loss_and_gradient_against_p(curves, t):
    def loss(p):
        return -(t * mpmath.log(p) + (1 - t) * mpmath.log(1 - p))

    check(curves.loss_of_p[t], loss, curves.p)
    check(curves.gradient_of_p[t], lambda p: mpmath.diff(loss, p), curves.p)


@pytest.mark.parametrize("t", [0.0, 1.0])
def test_loss_and_gradient_against_z(curves, t):
    def loss(z):
        p = sigma(z)
        return -(t * mpmath.log(p) + (1 - t) * mpmath.log(1 - p))

    check(curves.loss_of_z[t], loss, curves.z)
    check(curves.gradient_of_z[t], lambda z: mpmath.diff(loss, z), curves.z)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_committed_figure_is_a_png_of_the_script_s_size(script, curves, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is in the docs extra")
    drawn = tmp_path / "figure.png"

    script.render(curves, drawn)

    assert png_size(drawn.read_bytes()) == png_size(FIGURE.read_bytes())
    assert FIGURE.stat().st_size > 20_000, "a figure, not an empty canvas"


def test_matplotlib_is_no_runtime_dependency():
    with (ROOT / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)["project"]
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, service.main; print('matplotlib' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=clean_environment(LOSSGRAD_LOG_LEVEL="error"),
    )

    assert not any("matplotlib" in d for d in project["dependencies"])
    assert any("matplotlib" in d for d in project["optional-dependencies"]["docs"])
    assert loaded.stdout.strip() == "False"
