"""The ``lossgrad`` command: ``lossgrad serve [--host] [--port] [--workers]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from service.log import configure_logging
from service.multiprocess import metrics_directory
from service.settings import get_settings
from service.shutdown import drain_seconds


def build_parser() -> argparse.ArgumentParser:
    """The command line, with defaults from the ``LOSSGRAD_*`` settings."""
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="lossgrad", description="Classification losses and gradients over HTTP."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API with uvicorn")
    serve.add_argument(
        "--host",
        default=settings.host,
        help=f"address to bind (default {settings.host}, LOSSGRAD_HOST)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=settings.port,
        help=f"port to bind (default {settings.port}, LOSSGRAD_PORT)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=settings.workers,
        help=f"worker processes (default {settings.workers}, LOSSGRAD_WORKERS)",
    )
    return parser


def serve(host: str, port: int, workers: int) -> None:
    """Run ``service.main:app`` under uvicorn until it is stopped."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    # Set before the workers start, so that their metrics add up in /metrics.
    with metrics_directory(workers):
        uvicorn.run(
            "service.main:app",
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            log_level=settings.log_level,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=drain_seconds(settings.graceful_timeout),
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        build_parser().error("--workers must be at least 1")
    if args.command == "serve":
        serve(args.host, args.port, args.workers)
    return 0
