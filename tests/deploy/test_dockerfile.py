"""Static checks of the Dockerfile and .dockerignore: lint, layering, runtime shape."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_tools import (
    Stage,
    build_context,
    expand_words,
    is_ignored,
    parse_env,
    parse_healthcheck,
    read_dockerignore,
    seconds,
)

from service.settings import Settings

HADOLINT = Path(sys.executable).with_name("hadolint")


def _hadolint(dockerfile: Path, config: Path) -> subprocess.CompletedProcess[str]:
    # An explicit empty config and no inline pragmas: nothing can be ignored, and
    # "style" is the lowest level, so any finding at all fails.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    return subprocess.run(
        [
            str(HADOLINT),
            "--config",
            str(config),
            "--disable-ignore-pragma",
            "--failure-threshold",
            "style",
            "--format",
            "json",
            str(dockerfile),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def empty_hadolint_config(tmp_path: Path) -> Path:
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n", encoding="utf-8")
    return config


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.of("ENV"):
        env.update(parse_env(instruction, env))
    return env


def test_hadolint_finds_nothing(repo: Path, empty_hadolint_config: Path) -> None:
    text = (repo / "Dockerfile").read_text(encoding="utf-8")
    assert "hadolint" not in text.lower(), "no hadolint pragmas in the Dockerfile"
    assert not (repo / ".hadolint.yaml").exists()

    done = _hadolint(repo / "Dockerfile", empty_hadolint_config)

    assert json.loads(done.stdout or "[]") == [], done.stdout
    assert done.returncode == 0, done.stderr


def test_hadolint_catches_a_bad_dockerfile(
    tmp_path: Path, empty_hadolint_config: Path
) -> None:
    # Control: the linter as invoked above does report real problems.
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\nRUN pip install fastapi\nCMD lossgrad serve\n",
        encoding="utf-8",
    )

    done = _hadolint(bad, empty_hadolint_config)

    codes = {finding["code"] for finding in json.loads(done.stdout)}
    assert {"DL3007", "DL3013", "DL3025"} <= codes
    assert done.returncode != 0


def test_stages_share_one_pinned_slim_python_base(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "a multi-stage build"
    bases = {stage.base for stage in stages}
    # The venv copied between stages links to the base interpreter by path, so
    # every stage must use the very same base.
    assert len(bases) == 1, bases
    (base,) = bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", base), base


def test_dependencies_are_a_layer_of_their_own(stages: list[Stage]) -> None:
    build = stages[0].instructions
    keywords = [(item.keyword, item.args) for item in build]
    copies = [i for i, (kw, _) in enumerate(keywords) if kw == "COPY"]
    installs = [
        i
        for i, (kw, args) in enumerate(keywords)
        if kw == "RUN" and "pip install" in args
    ]
    assert len(installs) == 2, "one pip install for dependencies, one for the package"
    deps, package = installs

    # Only pyproject.toml is in the stage when the dependency layer is built, so
    # editing the source does not invalidate it.
    assert [build[i].args for i in copies if i < deps] == ["pyproject.toml ./"]
    assert any(
        build[i].args.startswith("service") for i in copies if deps < i < package
    )
    assert "-r requirements.txt" in build[deps].args
    assert "--no-deps" in build[package].args
    assert "pip check" in build[package].args


def test_runtime_stage_runs_lossgrad_serve_as_non_root(stages: list[Stage]) -> None:
    runtime = stages[-1]
    env = _env(runtime)

    (user,) = runtime.of("USER")
    uid = user.args.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric, so runAsNonRoot can check it"

    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["LOSSGRAD_HOST"] == "0.0.0.0"
    (expose,) = runtime.of("EXPOSE")
    assert expose.args == env["LOSSGRAD_PORT"] == "8000"

    (cmd,) = runtime.of("CMD")
    assert cmd.exec_form() == ["lossgrad", "serve"]

    # Nothing but the build stage's venv is carried over.
    copies = runtime.of("COPY")
    assert [c.flags()[0].get("from") for c in copies] == [stages[0].name]


def test_healthcheck_probes_live_route_with_python(stages: list[Stage]) -> None:
    (healthcheck,) = stages[-1].of("HEALTHCHECK")
    flags, argv = parse_healthcheck(healthcheck)

    assert argv[:2] == ["python", "-c"]
    assert "/health/live" in argv[2]
    assert "LOSSGRAD_PORT" in argv[2], "follows a port changed with -e"
    assert seconds(flags["timeout"]) < seconds(flags["interval"])
    assert int(flags["retries"]) >= 1


def test_image_environment_is_valid_settings(stages: list[Stage]) -> None:
    env = _env(stages[-1])
    settings = {k: v for k, v in env.items() if k.startswith("LOSSGRAD_")}
    fields = {name.removeprefix("LOSSGRAD_").lower() for name in settings}

    assert fields <= set(Settings.model_fields), fields - set(Settings.model_fields)
    parsed = Settings(
        **{k.removeprefix("LOSSGRAD_").lower(): v for k, v in settings.items()}
    )
    assert parsed.workers == 1
    assert parsed.host == "0.0.0.0"


def test_build_context_holds_only_what_the_image_needs(
    repo: Path, stages: list[Stage], tmp_path: Path
) -> None:
    files = build_context(repo, tmp_path)

    assert "pyproject.toml" in files
    assert "service/settings.py" in files
    for name in files:
        top = name.split("/")[0]
        assert top in {"pyproject.toml", "README.md", "service"}, name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name

    # Every COPY from the context finds its source there, as docker build needs.
    for stage in stages:
        for copy in stage.of("COPY"):
            flags, rest = copy.flags()
            if "from" not in flags:
                for source in expand_words(rest, {})[:-1]:
                    assert (tmp_path / source).exists(), (
                        f"COPY {source}: not in context"
                    )


@pytest.mark.parametrize(
    ("lines", "path", "ignored"),
    [
        # Examples of Docker's documented .dockerignore rules.
        (["*"], "a", True),
        (["*"], "dir/file", True),
        (["*", "!dir"], "dir/sub/file", False),
        (["*", "!dir", "**/__pycache__"], "dir/sub/__pycache__/m.pyc", True),
        (["*/temp*"], "somedir/temporary.txt", True),
        (["*/temp*"], "temp", False),
        (["*/*/temp*"], "a/b/temp.txt", True),
        (["temp?"], "temp1", True),
        (["temp?"], "temp12", False),
        (["**/*.go"], "a/b/c.go", True),
        (["**/*.go"], "c.go", True),
        (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
        (["*.md", "!README*.md", "README-secret.md"], "README.md", False),
        (["*.md", "README-secret.md", "!README*.md"], "README-secret.md", False),
        (["/build"], "build/x", True),
        (["# comment", "", "a"], "b", False),
    ],
)
def test_dockerignore_follows_docker_rules(
    lines: list[str], path: str, ignored: bool
) -> None:
    assert is_ignored(path, read_dockerignore("\n".join(lines))) is ignored
