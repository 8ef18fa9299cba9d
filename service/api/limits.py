"""The bound on requests in flight in one worker.

A worker takes at most ``max_in_flight`` requests at once.  One more is answered
at once with 503, ``Retry-After`` and a problem document, rather than waiting in
a queue that would grow with the load and answer everyone late.  A request is in
flight from the arrival of its headers to the end of its response, so a slow
upload holds its place while it arrives; a refused request's body is not read.

The health routes are not counted: a saturated worker is still alive, and its
probes must say so rather than get it restarted.

At shutdown the server cancels whatever is still in flight when its graceful
timeout ends; a request cancelled before its response began is told so with a
503 problem document, rather than the server's bare text 500.

Of the requests in flight, at most ``compute_threads`` large ones are parsed,
computed and encoded at once (:class:`ComputeSlots`); the others wait with their
body read.  More threads than cores would not finish the work sooner, and each
thread would hold its own request's arrays, and its own allocator arena, at the
same time: measured under load, 32 large requests computing at once kept the
worker's memory growing run after run, while 2 at a time kept it flat.

The other limits (body bytes, numbers, classes) are enforced where the body is
read and parsed: :mod:`service.api.operation` and :mod:`service.api.decoding`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from functools import partial
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import NotReadyError, OverloadedError, error_response
from service.metrics import record_rejection

HEALTH_PATHS = frozenset({"/health/live", "/health/ready"})

P = ParamSpec("P")
T = TypeVar("T")

# Seconds a refused client should wait: requests here take milliseconds to a
# few seconds, so a second is long enough for places to free up.
RETRY_AFTER_SECONDS = 1


class InFlightLimitMiddleware:
    """Refuses a request with 503 while ``limit`` others are in flight."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        if limit < 1:
            raise ValueError("the in-flight limit must be at least 1")
        self.app = app
        self.limit = limit
        # Note: no lock. The count changes only on the worker's event loop thread,
        # between awaits, so a plain integer is exact.
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            record_rejection("max_in_flight")
            error = OverloadedError(
                f"This worker is at its limit of {self.limit} requests in flight; "
                f"retry in {RETRY_AFTER_SECONDS} s.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
            await error_response(error)(scope, receive, send)
            return
        self.in_flight += 1
        responded = False

        async def send_watched(message: Message) -> None:
            nonlocal responded
            responded = responded or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_watched)
        except asyncio.CancelledError:
            if not responded:
                cut = NotReadyError(
                    "The service shut down before this request was complete; "
                    "send it again.",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
                await error_response(cut)(scope, receive, send)
            raise
        finally:
            self.in_flight -= 1


class ComputeSlots:
    """Runs work in a thread, at most ``threads`` at a time; the rest wait."""

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError("at least one compute thread is needed")
        self.threads = threads
        # One limiter per event loop: anyio's limiters belong to the loop that
        # first waits on them, and tests drive one app from several loops.
        self._limiters: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, anyio.CapacityLimiter
        ] = weakref.WeakKeyDictionary()

    def _limiter(self) -> anyio.CapacityLimiter:
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self.threads)
        return limiter

    async def run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``func(*args, **kwargs)`` in a worker thread, once a slot is free."""
        return await anyio.to_thread.run_sync(
            partial(func, *args, **kwargs), limiter=self._limiter()
        )
