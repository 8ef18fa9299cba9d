"""Graceful shutdown: readiness falls the moment a stop signal arrives.

On SIGTERM (or SIGINT) uvicorn stops accepting connections at once, lets the
requests in flight finish for up to its graceful timeout, and only then runs the
app's lifespan shutdown.  Readiness must fall at the signal, not at the end of
that drain, so :func:`on_stop_signal` puts a handler in front of the server's:
it runs a callback, then hands the signal on to the server unchanged.

The lifespan installs it after the server has set its own handlers (uvicorn
sets them before it starts the app), and removes it when the app stops.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# What the process needs after the drain: cancelling what is left, the lifespan
# shutdown and the interpreter's exit take about 0.25 s on a 2-core machine.
EXIT_MARGIN_SECONDS = 0.5

Handler = Callable[[int, FrameType | None], object]


def _chain(callback: Callable[[], None], previous: Handler) -> Handler:
    def handler(signum: int, frame: FrameType | None) -> object:
        callback()
        return previous(signum, frame)

    return handler


def on_stop_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` on SIGTERM or SIGINT, before the handler already set.

    Only signals that already have a Python handler (the server's) are watched:
    with the default action the process ends anyway.  Signal handlers can only
    be set from the main thread; elsewhere this does nothing.

    Returns
    -------
    Callable[[], None]
        Puts back the handlers that were there before.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    installed: dict[int, tuple[Handler, Handler]] = {}
    for stop_signal in STOP_SIGNALS:
        previous = signal.getsignal(stop_signal)
        if not callable(previous):
            continue
        handler = _chain(callback, previous)
        signal.signal(stop_signal, handler)
        installed[stop_signal] = (handler, previous)

    def restore() -> None:
        for stop_signal, (handler, previous) in installed.items():
            # Leave alone a handler that someone set after ours.
            if signal.getsignal(stop_signal) is handler:
                signal.signal(stop_signal, previous)

    return restore


def drain_seconds(graceful_timeout: float) -> int:
    """How long uvicorn may wait for requests in flight, for the process to exit
    within ``graceful_timeout`` seconds of the stop signal.

    uvicorn takes whole seconds; at least one is given, so a grace period under
    1.5 s is exceeded by up to the exit margin.
    """
    return max(1, math.floor(graceful_timeout - EXIT_MARGIN_SECONDS))
