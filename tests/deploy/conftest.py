"""Shared paths and parsed files for the deployment tests."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from dockerfile_tools import Stage, parse_dockerfile

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo() -> Path:
    """The project's top-level directory (the Docker build context)."""
    return REPO


@pytest.fixture(scope="session")
def stages() -> list[Stage]:
    """The top-level Dockerfile, parsed into stages."""
    return parse_dockerfile((REPO / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def pyproject() -> dict[str, Any]:
    """pyproject.toml, parsed."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)
