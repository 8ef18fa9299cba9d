"""Logging: stdlib ``logging``, one JSON object per line by default.

Every record carries ``ts``, ``level``, ``logger``, ``msg`` and ``pid``, plus
whatever was passed in ``extra=`` (the access log adds ``method``, ``route``,
``path``, ``status``, ``duration_ms``, ``elements`` and ``request_id``), plus the
``request_id`` of the request being served when the record was made.  Records
go to stdout.  ``text`` format is for people reading a terminal.
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson

# The X-Request-ID of the request this task (or its worker thread) serves.
current_request_id: ContextVar[str | None] = ContextVar(
    "lossgrad_request_id", default=None
)

# Attributes every LogRecord has; anything else on a record came from extra=
# (except uvicorn's terminal-coloured copy of its message).
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON.

    Note: the access log writes a line per request, so this runs on every
    request; the timestamp's date and time of day are formatted once a second.
    """

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._prefix = ""

    def _timestamp(self, created: float) -> str:
        """``created`` in ISO 8601, UTC, to the millisecond."""
        second = int(created)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to records made while serving it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            current = current_request_id.get()
            if current is not None:
                record.request_id = current
        return True


def configure_logging(level: str = "info", log_format: str = "json") -> None:
    """Send every log record, uvicorn's included, to stdout in one format.

    Called once per process by the server's entry points; the app factory does
    not call it, so tests keep pytest's own log capture.
    """
    # Neither format shows thread or process names; not looking them up saves
    # a third of the cost of making each record (the access log makes one per
    # request).
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    # The app writes its own access line with the timing; uvicorn's would double it.
    logging.getLogger("uvicorn.access").disabled = True
