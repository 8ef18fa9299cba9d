"""JSON arrays to numpy arrays, as Pydantic field types of the request models.

Conventions: a *vector* field is a JSON array of ``N >= 1`` numbers and becomes
a C-contiguous ``(N,)`` float64 array; a *matrix* field is a JSON array of
``N >= 1`` rows of the same ``C >= 1`` numbers and becomes an ``(N, C)`` float64
array; *labels* are ``N >= 1`` JSON integers and become an ``(N,)`` int64 array.
Booleans, strings, nulls and non-finite values are refused where numbers belong,
and every error names the first offending element, e.g. ``("targets", 17)``.

Note: converting a list of a million Python floats is the expensive part of a
request, so nothing here loops over elements in Python on the happy path.  When
the decoder has established that the arrays of a body hold nothing but numbers
and nested arrays (context key :data:`NUMBERS_ONLY`), the list goes straight to
:func:`_pack`; otherwise one C-level pass over the element types comes first,
because a bare conversion would read ``true`` as 1.0.  Only when a check or the
conversion fails does a Python loop look for the culprit.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Annotated, Any, NoReturn, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import PlainValidator, ValidationError, ValidationInfo, WithJsonSchema
from pydantic_core import InitErrorDetails, PydanticCustomError

Float64Array = NDArray[np.float64]
ArrayT = TypeVar("ArrayT", bound=NDArray[Any])
Int64Array = NDArray[np.int64]

NUMBERS_ONLY = "numbers_only"
# Context key: the caller owns the parsed lists and lets them be emptied once
# converted, so that a large body's Python floats (32 bytes per number, four
# times the array they become) are freed field by field instead of together.
RELEASE_LISTS = "release_lists"

_NUMBER_TYPES = frozenset({float, int})
_INT_TYPES = frozenset({int})
_LIST_TYPES = frozenset({list})
_INT64_MIN, _INT64_END = -(2**63), 2**63
INT64_SCHEMA = {
    "type": "integer",
    "format": "int64",
    "minimum": _INT64_MIN,
    "maximum": _INT64_END - 1,
}

Loc = tuple[str | int, ...]


def fail(*errors: tuple[Loc, str]) -> NoReturn:
    """Raise a Pydantic ``ValidationError`` with our own locations and messages.

    Raised inside a validator, the locations are relative to the field (or the
    model) being validated; Pydantic prefixes the field name.
    """
    raise ValidationError.from_exception_data(
        "request",
        [
            InitErrorDetails(
                type=PydanticCustomError("invalid_value", "{reason}", {"reason": msg}),
                loc=loc,
                input=None,
            )
            for loc, msg in errors
        ],
    )


def _converted(array: ArrayT, value: list[Any], info: ValidationInfo) -> ArrayT:
    """Return ``array``, emptying ``value`` first if the caller allowed it."""
    context = info.context
    if isinstance(context, dict) and context.get(RELEASE_LISTS) is True:
        value.clear()
    return array


def _numbers_only(info: ValidationInfo) -> bool:
    context = info.context
    return isinstance(context, dict) and context.get(NUMBERS_ONLY) is True


def _describe(value: object) -> str:
    """What a non-number is, in JSON's words, without echoing it."""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _number_problem(value: object) -> str | None:
    """Why ``value`` is not a finite float64 number, or None if it is one."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return f"must be a number, not {_describe(value)}"
    if isinstance(value, np.complexfloating):
        return "must be a real number"
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    return None if finite else "must be a finite number within the float64 range"


# Elements packed per struct call: the call's argument tuple (8 bytes per
# element) stays at most 2 MiB, a fraction of the list it is copied from.
_PACK_ELEMENTS = 1 << 18


def _pack(
    rows: list[Any], width: int, code: str, dtype: type[np.generic]
) -> NDArray[Any] | None:
    """``rows`` as a flat array, or ``None`` if an element does not convert.

    ``rows`` is a list of numbers (``width`` 0) or of lists of ``width``
    numbers.  ``code`` is the struct format of one element: ``"d"`` takes any
    float or int that fits a float64, ``"q"`` only ints that fit an int64.

    Note: ``struct.pack_into`` reads each Python number straight into the
    array's memory, about twice as fast as ``np.fromiter``, which goes through
    the iterator protocol one element at a time.
    """
    per_row = max(width, 1)
    out = np.empty(len(rows) * per_row, dtype=dtype)
    buffer = out.data  # a memoryview of the array's memory
    step = max(1, _PACK_ELEMENTS // per_row)
    try:
        for start in range(0, len(rows), step):
            part = rows[start : start + step] if len(rows) > step else rows
            values: Iterable[Any] = chain.from_iterable(part) if width else part
            offset = start * per_row * out.itemsize
            struct.pack_into(f"{len(part) * per_row}{code}", buffer, offset, *values)
    except (struct.error, TypeError, OverflowError):
        return None  # a non-number, a nested array or a number out of range
    return out


def _first_non_number(values: list[Any]) -> tuple[Loc, str] | None:
    for index, value in enumerate(values):
        problem = _number_problem(value)
        if problem is not None:
            return (index,), problem
    return None


def _first_non_finite(array: Float64Array) -> Loc:
    flat_index = int(np.argmin(np.isfinite(array)))
    return tuple(int(i) for i in np.unravel_index(flat_index, array.shape))


def _from_ndarray(value: NDArray[Any], ndim: int) -> Float64Array:
    """Accept a numpy array from a Python caller with the same rules as JSON."""
    if value.dtype.kind not in "iuf":
        fail(((), f"must hold numbers; got dtype {value.dtype}"))
    if value.ndim != ndim or value.size == 0:
        fail(((), f"must be a non-empty array with {ndim} dimension(s)"))
    array = np.ascontiguousarray(value, dtype=np.float64)
    if not np.isfinite(array).all():
        fail((_first_non_finite(array), "must be a finite number"))
    return array


def _vector(value: object, info: ValidationInfo) -> Float64Array:
    if isinstance(value, np.ndarray):
        return _from_ndarray(value, 1)
    if type(value) is not list:
        fail(((), f"must be an array of numbers, not {_describe(value)}"))
    if not value:
        fail(((), "must hold at least 1 number"))

    if _numbers_only(info) or _NUMBER_TYPES.issuperset(map(type, value)):
        # None for a nested array or an oversized integer, located below.
        array = _pack(value, 0, "d", np.float64)
        if array is not None:
            if np.isfinite(array).all():
                return _converted(array, value, info)
            fail((_first_non_finite(array), "must be a finite number"))

    found = _first_non_number(value)
    if found is not None:
        fail(found)
    # Only numpy scalars and int/float subclasses from Python callers get here.
    return np.array([float(v) for v in value], dtype=np.float64)


def _fail_non_list_row(rows: list[Any]) -> NoReturn:
    row = next(i for i, r in enumerate(rows) if type(r) is not list)
    fail(((row,), f"must be an array of numbers, not {_describe(rows[row])}"))


def _matrix(value: object, info: ValidationInfo) -> Float64Array:
    if isinstance(value, np.ndarray):
        return _from_ndarray(value, 2)
    if type(value) is not list:
        fail(((), f"must be an array of arrays of numbers, not {_describe(value)}"))
    if not value:
        fail(((), "must hold at least 1 row"))
    numbers_only = _numbers_only(info)
    # With numbers only in the body, a row is an array or a number, and len()
    # of a number raises: the type check comes for free.
    if not numbers_only and not _LIST_TYPES.issuperset(map(type, value)):
        _fail_non_list_row(value)
    try:
        widths = set(map(len, value))
    except TypeError:
        _fail_non_list_row(value)
    width = len(value[0])
    if width == 0:
        fail(((0,), "must hold at least 1 number"))
    if len(widths) != 1:
        row = next(i for i, r in enumerate(value) if len(r) != width)
        fail(((row,), f"has {len(value[row])} numbers, but row 0 has {width}"))

    rows = len(value)
    if numbers_only or _NUMBER_TYPES.issuperset(map(type, chain.from_iterable(value))):
        # None for a nested array or an oversized integer, located below.
        flat = _pack(value, width, "d", np.float64)
        if flat is not None:
            array = flat.reshape(rows, width)
            if np.isfinite(array).all():
                return _converted(array, value, info)
            fail((_first_non_finite(array), "must be a finite number"))

    for row_index, row in enumerate(value):
        found = _first_non_number(row)
        if found is not None:
            loc, msg = found
            fail(((row_index, *loc), msg))
    return np.array([[float(v) for v in row] for row in value], dtype=np.float64)


def _labels(value: object, info: ValidationInfo) -> Int64Array:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iu" or value.ndim != 1 or value.size == 0:
            fail(((), "must be a non-empty array of integers"))
        if value.dtype.kind == "u" and value.size and int(value.max()) >= _INT64_END:
            fail(((int(np.argmax(value)),), "is outside the 64-bit integer range"))
        return np.ascontiguousarray(value, dtype=np.int64)
    if type(value) is not list:
        fail(((), f"must be an array of integers, not {_describe(value)}"))
    if not value:
        fail(((), "must hold at least 1 integer"))

    if _numbers_only(info) or _INT_TYPES.issuperset(map(type, value)):
        # None for a float (2.0 included), a nested array or an integer beyond
        # int64; all are sorted out below.
        array = _pack(value, 0, "q", np.int64)
        if array is not None:
            return _converted(array, value, info)

    for index, label in enumerate(value):
        # JSON Schema's "integer" includes 2.0; the schema is the contract.
        integral = isinstance(label, float) and label.is_integer()
        if isinstance(label, bool) or not (
            integral or isinstance(label, int | np.integer)
        ):
            fail(((index,), f"must be an integer, not {_describe(label)}"))
        if not _INT64_MIN <= int(label) < _INT64_END:
            fail(((index,), "is outside the 64-bit integer range"))
    return np.array([int(v) for v in value], dtype=np.int64)


def _out_of_range(
    array: Float64Array,
    low: float | None,
    high: float | None,
    low_open: bool,
    high_open: bool,
) -> tuple[Loc, str] | None:
    """The first element outside the bounds, if any, with the rule it breaks."""
    # min/max are two fast reductions; the mask below is built only on failure.
    low_ok = low is None or bool(array.min() > low if low_open else array.min() >= low)
    high_ok = high is None or bool(
        array.max() < high if high_open else array.max() <= high
    )
    if low_ok and high_ok:
        return None
    bad = np.zeros(array.shape, dtype=bool)
    if low is not None:
        bad |= array <= low if low_open else array < low
    if high is not None:
        bad |= array >= high if high_open else array > high
    index = np.unravel_index(int(np.argmax(bad)), array.shape)
    loc = tuple(int(i) for i in index)
    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        rule = f"must be in {left}{low:g}, {high:g}{right}"
    elif low is not None:
        rule = f"must be {'>' if low_open else '>='} {low:g}"
    else:
        rule = f"must be {'<' if high_open else '<='} {high:g}"
    return loc, f"{rule}; got {float(array[index])!r}"


def _bounded(
    convert: Callable[[object, ValidationInfo], Float64Array],
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[object, ValidationInfo], Float64Array]:
    def validate(value: object, info: ValidationInfo) -> Float64Array:
        array = convert(value, info)
        problem = _out_of_range(array, low, high, low_open, high_open)
        if problem is not None:
            fail(problem)
        return array

    return validate


def _number_schema(
    low: float | None = None, high: float | None = None, *, low_open: bool = False
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number"}
    if low is not None:
        schema["exclusiveMinimum" if low_open else "minimum"] = low
    if high is not None:
        schema["maximum"] = high
    return schema


def _vector_schema(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items, "minItems": 1}


def _matrix_schema(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": _vector_schema(items), "minItems": 1}


def _positive_weight(value: object, info: ValidationInfo) -> float | Float64Array:
    if isinstance(value, int | float) and not isinstance(value, bool):
        problem = _number_problem(value)
        if problem is not None:
            fail(((), problem))
        if not value > 0:
            fail(((), f"must be > 0; got {float(value)!r}"))
        return float(value)
    return _positive_vector(value, info)


_positive_vector = _bounded(_vector, 0.0, low_open=True)

Numbers = Annotated[
    Float64Array,
    PlainValidator(_vector),
    WithJsonSchema(_vector_schema(_number_schema())),
]
"""A vector of finite numbers."""

UnitNumbers = Annotated[
    Float64Array,
    PlainValidator(_bounded(_vector, 0.0, 1.0)),
    WithJsonSchema(_vector_schema(_number_schema(0.0, 1.0))),
]
"""A vector of numbers in [0, 1]."""

NonNegativeNumbers = Annotated[
    Float64Array,
    PlainValidator(_bounded(_vector, 0.0)),
    WithJsonSchema(_vector_schema(_number_schema(0.0))),
]
"""A vector of numbers >= 0."""

PositiveWeight = Annotated[
    float | Float64Array,
    PlainValidator(_positive_weight),
    WithJsonSchema(
        {
            "anyOf": [
                _number_schema(0.0, low_open=True),
                _vector_schema(_number_schema(0.0, low_open=True)),
            ]
        }
    ),
]
"""One number > 0, or a vector of them."""

NumberMatrix = Annotated[
    Float64Array,
    PlainValidator(_matrix),
    WithJsonSchema(_matrix_schema(_number_schema())),
]
"""An N x C matrix of finite numbers."""

UnitMatrix = Annotated[
    Float64Array,
    PlainValidator(_bounded(_matrix, 0.0, 1.0)),
    WithJsonSchema(_matrix_schema(_number_schema(0.0, 1.0))),
]
"""An N x C matrix of numbers in [0, 1]."""

Labels = Annotated[
    Int64Array,
    PlainValidator(_labels),
    WithJsonSchema(_vector_schema(INT64_SCHEMA)),
]
"""A vector of integers (class indices)."""
