"""The ``lossgrad`` command line: arguments, defaults from the environment, and
what it hands to uvicorn."""

from __future__ import annotations

import pytest

from service import cli
from service.settings import get_settings


@pytest.fixture
def uvicorn_calls(monkeypatch):
    """Record uvicorn.run instead of serving; keep pytest's logging setup."""
    calls = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setattr(cli, "configure_logging", lambda *args: None)
    get_settings.cache_clear()
    yield calls
    get_settings.cache_clear()


def test_serve_defaults_come_from_settings(uvicorn_calls, monkeypatch):
    monkeypatch.setenv("LOSSGRAD_HOST", "127.0.0.2")
    monkeypatch.setenv("LOSSGRAD_PORT", "9123")
    monkeypatch.setenv("LOSSGRAD_WORKERS", "3")

    assert cli.main(["serve"]) == 0

    [(app, options)] = uvicorn_calls
    assert app == "service.main:app"
    assert (options["host"], options["port"], options["workers"]) == (
        "127.0.0.2",
        9123,
        3,
    )


def test_serve_without_environment_uses_loopback_8000_one_worker(
    uvicorn_calls, monkeypatch
):
    for name in ("LOSSGRAD_HOST", "LOSSGRAD_PORT", "LOSSGRAD_WORKERS"):
        monkeypatch.delenv(name, raising=False)

    cli.main(["serve"])

    [(_, options)] = uvicorn_calls
    assert (options["host"], options["port"], options["workers"]) == (
        "127.0.0.1",
        8000,
        1,
    )


def test_arguments_override_the_environment(uvicorn_calls, monkeypatch):
    monkeypatch.setenv("LOSSGRAD_PORT", "9123")

    cli.main(["serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"])

    [(_, options)] = uvicorn_calls
    assert (options["host"], options["port"], options["workers"]) == (
        "0.0.0.0",
        8080,
        2,
    )


def test_uvicorn_is_told_to_leave_logging_and_headers_to_the_app(uvicorn_calls):
    cli.main(["serve"])

    [(_, options)] = uvicorn_calls
    assert options["log_config"] is None
    assert options["access_log"] is False
    assert options["server_header"] is False


@pytest.mark.parametrize(
    "argv",
    [[], ["serve", "--workers", "0"], ["serve", "--port", "http"], ["start"]],
)
def test_bad_command_lines_exit_with_usage(uvicorn_calls, argv, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)

    assert caught.value.code == 2
    assert "usage: lossgrad" in capsys.readouterr().err
    assert uvicorn_calls == []
