"""Optional API keys: ``Authorization: Bearer <key>`` on every route but health.

When ``LOSSGRAD_API_KEYS`` holds keys, a request to any other route without one
of them gets 401 with ``WWW-Authenticate: Bearer`` and a problem document.  The
health routes stay open, because the probes of an orchestrator carry no key.

Note: keys are compared as SHA-256 digests with :func:`hmac.compare_digest`,
against every key each time.  Equal-length digests keep the comparison from
ending early on a length mismatch, and checking all keys keeps the time from
depending on which key (if any) matched.  A key appears nowhere but here: not
in a response, not in a log line.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.errors import UnauthorizedError, error_response
from service.api.limits import HEALTH_PATHS

_REALM = 'Bearer realm="lossgrad"'


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def bearer_token(authorization: bytes | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header, if it is one.

    Kept as bytes: a key set as UTF-8 text matches the same key sent as UTF-8.
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        return None
    return token


class ApiKeyMiddleware:
    """Lets a request through only with one of ``keys`` as its bearer token."""

    def __init__(self, app: ASGIApp, keys: Iterable[str]) -> None:
        self.app = app
        self._digests = tuple(_digest(key.encode()) for key in keys)
        if not self._digests:
            raise ValueError("ApiKeyMiddleware needs at least one key")

    def knows(self, token: bytes) -> bool:
        """Whether ``token`` is one of the keys, in time independent of which."""
        presented = _digest(token)
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(presented, digest)
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return

        authorization = next(
            (value for name, value in scope["headers"] if name == b"authorization"),
            None,
        )
        token = bearer_token(authorization)
        if token is None:
            # RFC 6750, section 3.1: no error code when no credentials were sent.
            error = UnauthorizedError(
                "This service requires an API key: send Authorization: Bearer <key>.",
                headers={"WWW-Authenticate": _REALM},
            )
        elif not self.knows(token):
            error = UnauthorizedError(
                "The API key is not valid for this service.",
                headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
            )
        else:
            await self.app(scope, receive, send)
            return
        await error_response(error)(scope, receive, send)
