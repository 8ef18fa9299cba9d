"""From request bytes to a validated request model, and from results to bytes.

The path of a request body: bytes → ``orjson.loads`` → size limits counted on
the parsed lists (before any array is allocated) → Pydantic model whose array
fields become numpy arrays → core → numpy arrays → ``orjson.dumps`` → bytes.
orjson refuses ``NaN``/``Infinity`` literals and numbers beyond float64, so no
non-finite number can enter; results are checked before they leave.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn, TypeVar

import numpy as np
import orjson
import pydantic_core
from pydantic import BaseModel, ValidationError

from service.api.arrays import NUMBERS_ONLY, RELEASE_LISTS, Loc
from service.api.errors import (
    FieldError,
    InvalidRequestError,
    MalformedJsonError,
    PayloadTooLargeError,
)
from service.metrics import record_rejection
from service.settings import Settings

ModelT = TypeVar("ModelT", bound=BaseModel)

# Bytes that JSON numbers, arrays of them and whitespace are made of.
# The highest byte a JSON number or array of numbers is written with ("e").
_HIGHEST_NUMERIC_BYTE = ord("e")
_QUOTE = ord('"')
_UNCOUNTED_BYTES = bytes(b for b in range(_HIGHEST_NUMERIC_BYTE + 1) if b != _QUOTE)
# Below this size bytes.translate counts faster than numpy, whose fixed cost per
# call is a few microseconds (measured: 0.7 against 3.2 us at 1.5 KB).
_SMALL_BODY_BYTES = 8 * 1024
_JSON_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_NON_FINITE_LITERAL = re.compile(r"[-+]?(?:NaN|Infinity)")
# Note: orjson first builds a tree of the whole document (a padded copy of the
# body and 16 bytes per value) and then the Python objects; at a million
# numbers that transient outweighs the objects themselves.  pydantic-core's
# parser builds the objects directly and, measured here, overtakes orjson in
# speed too from about 4 MiB of body on.
LARGE_BODY_BYTES = 4 * 1024 * 1024
# Stands in for an out-of-range number while we look for where it was.
_MARKER = "\x00lossgrad-out-of-range\x00"
_MARKER_JSON = json.dumps(_MARKER)


def parse_json(body: bytes | bytearray) -> Any:
    """Parse ``body`` with orjson, or with pydantic-core's parser when large.

    Both refuse ``NaN``/``Infinity``; pydantic-core reads ``1e400`` as inf,
    which the models then refuse as a non-finite number.

    Raises
    ------
    InvalidRequestError
        (422) for ``NaN``/``Infinity`` literals and numbers beyond float64,
        located like any other bad number.
    MalformedJsonError
        (400) for anything else that is not JSON.
    """
    if len(body) >= LARGE_BODY_BYTES:
        try:
            return pydantic_core.from_json(body, allow_inf_nan=False)
        except ValueError:
            pass  # orjson below finds the same fault and locates it precisely
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson points at the literal itself, or just past its sign.
        literal = _NON_FINITE_LITERAL.match(exc.doc, max(exc.pos - 1, 0))
        literal = literal or _NON_FINITE_LITERAL.match(exc.doc, exc.pos)
        if literal is not None:
            loc = _locate(exc.doc, literal.start(), literal.end())
            message = "must be a finite number; NaN and Infinity are not JSON"
            raise InvalidRequestError(_summary(), [FieldError(loc, message)]) from None
        if exc.msg.startswith("number is infinity"):
            number = _JSON_NUMBER.match(exc.doc, exc.pos)
            end = number.end() if number else exc.pos + 1
            loc = _locate(exc.doc, exc.pos, end)
            message = "is outside the float64 range (about ±1.8e308)"
            raise InvalidRequestError(_summary(), [FieldError(loc, message)]) from None
        raise MalformedJsonError(
            f"The body is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})."
        ) from None


def _summary() -> str:
    return "The request body has 1 problem; see errors."


def _locate(doc: str, start: int, end: int) -> Loc:
    """The location of the token ``doc[start:end]``, found by parsing the
    document again with a marker string in its place."""
    try:
        document = orjson.loads(doc[:start] + _MARKER_JSON + doc[end:])
    except orjson.JSONDecodeError:
        return ("body",)  # a second problem further on; the body is enough
    return ("body", *_path_to(document, _MARKER))


def _path_to(document: Any, target: str) -> Loc:
    # Iterative, because orjson accepts nesting deeper than Python's recursion.
    stack: list[tuple[Loc, Any]] = [((), document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(child, str) and child == target:
                    return (*path, key)
            items: Any = node.items()
        elif isinstance(node, list):
            if target in node:
                return (*path, node.index(target))
            items = enumerate(node)
        else:
            continue
        stack.extend(
            ((*path, key), child)
            for key, child in items
            if isinstance(child, dict | list)
        )
    return ()


def count_elements(document: Mapping[str, Any], settings: Settings) -> None:
    """Refuse a request with too many numbers or classes, before any array exists.

    Raises
    ------
    PayloadTooLargeError
        When the arrays hold more than ``max_elements`` numbers in all, or a
        matrix has more than ``max_classes`` columns.
    """
    total = 0
    for key, value in document.items():
        if type(value) is not list:
            continue
        if value and type(value[0]) is list:
            classes = len(value[0])
            if classes > settings.max_classes:
                record_rejection("max_classes")
                raise PayloadTooLargeError(
                    f"The request has {classes} classes; this service accepts at "
                    f"most {settings.max_classes}.",
                    [FieldError(("body", key, 0), f"has {classes} classes")],
                )
            try:
                total += sum(map(len, value))
            except TypeError:  # a row that is a number; validation will say so
                total += sum(len(r) if type(r) is list else 1 for r in value)
        else:
            total += len(value)
    if total > settings.max_elements:
        record_rejection("max_elements")
        raise PayloadTooLargeError(
            f"The request holds {total} numbers; this service accepts at most "
            f"{settings.max_elements} per request."
        )


def holds_only_numbers(body: bytes | bytearray, document: Mapping[str, Any]) -> bool:
    """Whether the arrays of ``body`` hold only numbers and arrays, and no key
    appears twice.

    Note: a number or an array is written with digits, ``+-.eE[],`` and white
    space, all of them bytes up to ``e`` (0x65) other than the double quote.
    ``true``, ``false`` and ``null`` (which numpy would read as 1.0, 0.0 and
    NaN), strings and objects each add at least one byte above ``e`` or a
    quote.  Without backslashes on either side, keys and strings are
    re-encoded byte for byte; numbers outside the arrays may be written
    differently, but never with a counted byte.  So the body counts at least as
    many bytes above ``e`` and quotes as the document re-encoded with its
    arrays emptied, more by what its arrays hold other than numbers and by any
    key the parse dropped as a duplicate: the counts are equal only when there
    is neither.
    """
    skeleton = {k: [] if type(v) is list else v for k, v in document.items()}
    try:
        expected = orjson.dumps(skeleton)
    except orjson.JSONEncodeError:
        return False  # an integer beyond 64 bits, from the large-body parser
    if b"\\" in body or b"\\" in expected:
        return False
    return _counted_bytes(body) == _counted_bytes(expected)


def _counted_bytes(data: bytes | bytearray) -> int:
    """How many bytes of ``data`` lie above ``e`` or are quotes."""
    if len(data) < _SMALL_BODY_BYTES:
        return len(data.translate(None, _UNCOUNTED_BYTES))
    octets = np.frombuffer(data, dtype=np.uint8)
    return int(np.count_nonzero(octets > _HIGHEST_NUMERIC_BYTE)) + int(
        np.count_nonzero(octets == _QUOTE)
    )


def _reject_duplicate_keys(body: bytes | bytearray) -> None:
    def pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise InvalidRequestError(
                    "A key appears more than once in the body.",
                    [FieldError(("body", key), "appears more than once")],
                )
            result[key] = value
        return result

    json.loads(body, object_pairs_hook=pairs_to_dict)


def _not_an_object() -> NoReturn:
    raise InvalidRequestError(
        "The request body must be a JSON object.",
        [FieldError(("body",), "must be a JSON object")],
    )


class RequestBody:
    """The bytes of a request body, held so that decoding can drop them early.

    Once the body is parsed and its arrays are known to hold only numbers, the
    bytes are no longer needed; letting go of them before validation lowers a
    large request's peak memory by the size of the body.
    """

    __slots__ = ("_data",)

    def __init__(self, data: bytes | bytearray) -> None:
        self._data: bytes | bytearray = data

    def __len__(self) -> int:
        return len(self._data)

    def take(self) -> bytes | bytearray:
        """The bytes, which this holder no longer keeps alive."""
        data, self._data = self._data, b""
        return data


def decode_request(
    body: bytes | bytearray | RequestBody, model: type[ModelT], settings: Settings
) -> ModelT:
    """Parse, size-check and validate ``body`` as a ``model``.

    Given a :class:`RequestBody`, the bytes and the parsed lists are released
    as soon as they are no longer needed.
    """
    if isinstance(body, RequestBody):
        data, release = body.take(), True
    else:
        data, release = body, False
    del body
    document = parse_json(data)
    if type(document) is not dict:
        _not_an_object()
    count_elements(document, settings)

    numbers_only = holds_only_numbers(data, document)
    if numbers_only:
        del data
    context = {NUMBERS_ONLY: numbers_only, RELEASE_LISTS: release}
    try:
        request = model.model_validate(document, context=context)
    except ValidationError as exc:
        raise InvalidRequestError.from_validation_error(exc) from None
    if not numbers_only:
        # Valid, so the mismatch came from escapes in keys or from a duplicate
        # key; only the slow stdlib parser can tell which.
        _reject_duplicate_keys(data)
    return request


def _check_finite(name: str, value: object) -> None:
    if isinstance(value, np.ndarray):
        # One sum is cheaper than isfinite over the array; only if the sum is
        # not finite (a non-finite element, or an overflow of the sum) look closer.
        total = float(np.add.reduce(value, axis=None))
        if math.isfinite(total) or np.isfinite(value).all():
            return
    elif not isinstance(value, float) or math.isfinite(value):
        return
    raise InvalidRequestError(
        f"The result is not representable in float64: {name} overflows. "
        "Scale the inputs down."
    )


def encode_result(payload: Mapping[str, object]) -> bytes:
    """Encode a result of numpy arrays and scalars as JSON, refusing inf and NaN.

    orjson would write a non-finite float as ``null`` and so turn an overflow
    into a wrong answer; a 422 is the honest reply.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # a sum may overflow
        for name, value in payload.items():
            _check_finite(name, value)
    return orjson.dumps(
        {
            k: np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v
            for k, v in payload.items()
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
