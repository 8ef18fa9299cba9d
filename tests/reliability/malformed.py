"""The catalogue of malformed requests: what each sends and the answer it must
get.  Used by the catalogue test and, in part, by the load test."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SPEC = json.loads((ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8"))
# The committed schema of a problem document, with its references resolvable.
PROBLEM_SCHEMA = {
    "$ref": "#/components/schemas/Problem",
    "components": SPEC["components"],
}

# The limits the catalogue's server runs with: small, so that the oversized
# requests are cheap to send.
MAX_BODY_BYTES = 1 << 20
MAX_ELEMENTS = 100_000
MAX_CLASSES = 1_000

SIGMOID = "/v1/sigmoid"
SOFTMAX = "/v1/softmax"
BCE = "/v1/losses/binary-cross-entropy"
CE = "/v1/losses/cross-entropy"

JSON = "application/json"
Z = [[1.0, 2.0, 3.0], [0.0, 0.5, -0.5]]
P = [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]


@dataclass(frozen=True)
class Bad:
    """One malformed request and the answer it must get."""

    name: str
    path: str
    body: bytes | Any
    status: int
    loc: list[Any] | None = None
    content_type: str | None = JSON
    method: str = "POST"
    chunked: bool = False

    def raw_body(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


CATALOGUE = [
    # Wrong types where numbers belong.
    Bad("x is a string", SIGMOID, {"x": "1, 2"}, 422, ["body", "x"]),
    Bad("x is an object", SIGMOID, {"x": {"a": 1}}, 422, ["body", "x"]),
    Bad("a string among numbers", SIGMOID, {"x": [1, "2"]}, 422, ["body", "x", 1]),
    Bad("a boolean among numbers", SIGMOID, {"x": [1, True]}, 422, ["body", "x", 1]),
    Bad("a null among numbers", SIGMOID, {"x": [1, 2, None]}, 422, ["body", "x", 2]),
    Bad("an object among numbers", SIGMOID, {"x": [{"a": 1}]}, 422, ["body", "x", 0]),
    Bad("order is a string", SIGMOID, {"x": [1], "order": "1"}, 422, ["body", "order"]),
    Bad(
        "order is a fraction", SIGMOID, {"x": [1], "order": 1.5}, 422, ["body", "order"]
    ),
    Bad(
        "order is out of range", SIGMOID, {"x": [1], "order": 3}, 422, ["body", "order"]
    ),
    Bad(
        "hessian is a string",
        BCE,
        {"logits": [1], "targets": [1], "hessian": "yes"},
        422,
        ["body", "hessian"],
    ),
    Bad(
        "reduction is unknown",
        BCE,
        {"logits": [1], "targets": [1], "reduction": "avg"},
        422,
        ["body", "reduction"],
    ),
    # Literals JSON does not have, and numbers beyond float64.
    Bad("NaN literal", SIGMOID, b'{"x": [1, NaN]}', 422, ["body", "x", 1]),
    Bad("Infinity literal", SIGMOID, b'{"x": [Infinity]}', 422, ["body", "x", 0]),
    Bad(
        "-Infinity literal", SIGMOID, b'{"x": [1, 2, -Infinity]}', 422, ["body", "x", 2]
    ),
    Bad("1e400", SIGMOID, b'{"x": [0, 1e400]}', 422, ["body", "x", 1]),
    Bad(
        "-1e400 in a matrix",
        SOFTMAX,
        b'{"logits": [[1, -1e400]]}',
        422,
        ["body", "logits", 0, 1],
    ),
    Bad(
        "an integer of 10 000 digits",
        SIGMOID,
        b'{"x": [' + b"7" * 10_000 + b"]}",
        422,
        ["body", "x", 0],
    ),
    Bad(
        "1e400 as a weight",
        BCE,
        b'{"logits": [1], "targets": [1], "weights": [1e400]}',
        422,
        ["body", "weights", 0],
    ),
    # Empty, ragged and mismatched arrays.
    Bad("empty x", SIGMOID, {"x": []}, 422, ["body", "x"]),
    Bad("missing x", SIGMOID, {"order": 1}, 422, ["body", "x"]),
    Bad("empty logits", SOFTMAX, {"logits": []}, 422, ["body", "logits"]),
    Bad("empty row", SOFTMAX, {"logits": [[]]}, 422, ["body", "logits", 0]),
    Bad(
        "ragged rows",
        SOFTMAX,
        {"logits": [[1, 2], [3, 4], [5]]},
        422,
        ["body", "logits", 2],
    ),
    Bad(
        "a row that is a number",
        SOFTMAX,
        {"logits": [[1, 2], 3]},
        422,
        ["body", "logits", 1],
    ),
    Bad(
        "a vector for a matrix", SOFTMAX, {"logits": [1, 2]}, 422, ["body", "logits", 0]
    ),
    Bad(
        "nested arrays 100 deep",
        SIGMOID,
        b'{"x": ' + b"[" * 100 + b"1" + b"]" * 100 + b"}",
        422,
        ["body", "x", 0],
    ),
    Bad(
        "targets shorter than logits",
        BCE,
        {"logits": [1, 2], "targets": [1]},
        422,
        ["body", "targets"],
    ),
    Bad(
        "labels longer than rows",
        CE,
        {"logits": Z, "labels": [0, 1, 2]},
        422,
        ["body", "labels"],
    ),
    Bad(
        "class weights of the wrong length",
        CE,
        {"logits": Z, "labels": [0, 1], "class_weights": [1, 1]},
        422,
        ["body", "class_weights"],
    ),
    Bad(
        "pos_weight of the wrong length",
        BCE,
        {"logits": [1, 2, 3], "targets": [1, 0, 1], "pos_weight": [1, 2]},
        422,
        ["body", "pos_weight"],
    ),
    # Values out of range.
    Bad(
        "a target above 1",
        BCE,
        {"logits": [1, 2], "targets": [0, 1.5]},
        422,
        ["body", "targets", 1],
    ),
    Bad(
        "a negative probability",
        BCE,
        {"probabilities": [-0.1, 0.5], "targets": [0, 1]},
        422,
        ["body", "probabilities", 0],
    ),
    Bad(
        "a negative weight",
        BCE,
        {"logits": [1, 2, 3], "targets": [1, 0, 1], "weights": [1, 1, -2]},
        422,
        ["body", "weights", 2],
    ),
    Bad(
        "a zero pos_weight",
        BCE,
        {"logits": [1], "targets": [1], "pos_weight": 0},
        422,
        ["body", "pos_weight"],
    ),
    Bad(
        "label smoothing of 1",
        BCE,
        {"logits": [1], "targets": [1], "label_smoothing": 1.0},
        422,
        ["body", "label_smoothing"],
    ),
    Bad(
        "a label equal to C",
        CE,
        {"logits": Z, "labels": [0, 3]},
        422,
        ["body", "labels", 1],
    ),
    Bad(
        "a negative label",
        CE,
        {"logits": Z, "labels": [-1, 0]},
        422,
        ["body", "labels", 0],
    ),
    Bad(
        "a fractional label",
        CE,
        {"logits": Z, "labels": [0, 1.5]},
        422,
        ["body", "labels", 1],
    ),
    Bad(
        "a label beyond int64",
        CE,
        b'{"logits": [[1, 2]], "labels": [1' + b"0" * 30 + b"]}",
        422,
        ["body", "labels", 0],
    ),
    Bad(
        "a negative class weight",
        CE,
        {"logits": Z, "labels": [0, 1], "class_weights": [1, -1, 1]},
        422,
        ["body", "class_weights", 1],
    ),
    Bad(
        "a probability row not summing to 1",
        CE,
        {"probabilities": [[0.2, 0.2, 0.2], P[1]], "labels": [0, 1]},
        422,
        ["body", "probabilities", 0],
    ),
    Bad(
        "a target row not summing to 1",
        CE,
        {"logits": Z, "target_probabilities": [P[0], [0.5, 0.5, 0.5]]},
        422,
        ["body", "target_probabilities", 1],
    ),
    # Rules between fields.
    Bad(
        "both logits and probabilities",
        BCE,
        {"logits": [1], "probabilities": [0.5], "targets": [1]},
        422,
        ["body"],
    ),
    Bad("neither logits nor probabilities", BCE, {"targets": [1]}, 422, ["body"]),
    Bad(
        "both labels and target distributions",
        CE,
        {"logits": Z, "labels": [0, 1], "target_probabilities": P},
        422,
        ["body"],
    ),
    Bad(
        "ignore_index with target distributions",
        CE,
        {"logits": Z, "target_probabilities": P, "ignore_index": 0},
        422,
        ["body", "ignore_index"],
    ),
    # Keys.
    Bad("an unknown field", SIGMOID, {"x": [1], "oder": 2}, 422, ["body", "oder"]),
    Bad("a NUL key", SIGMOID, b'{"x": [1], "\\u0000": 1}', 422, ["body", "\x00"]),
    Bad("a duplicate key", SIGMOID, b'{"x": [1], "x": [2]}', 422, ["body", "x"]),
    Bad("an array for a body", SIGMOID, b"[1, 2]", 422, ["body"]),
    # Not JSON at all.
    Bad("truncated JSON", SIGMOID, b'{"x": [1, 2', 400),
    Bad("an empty body", SIGMOID, b"", 400),
    Bad("single quotes", SIGMOID, b"{'x': [1]}", 400),
    Bad("a trailing comma", SIGMOID, b'{"x": [1],}', 400),
    Bad("text after the document", SIGMOID, b'{"x": [1]} and more', 400),
    Bad("invalid UTF-8", SIGMOID, b'{"x": [1], "\xff": 1}', 400),
    Bad("a byte order mark", SIGMOID, b'\xef\xbb\xbf{"x": [1]}', 400),
    Bad(
        "nesting 5000 deep", SIGMOID, b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400
    ),
    Bad("binary garbage", SOFTMAX, bytes(range(256)), 400),
    # Content types.
    Bad("text/plain", SIGMOID, {"x": [1]}, 415, content_type="text/plain"),
    Bad("no content type", SIGMOID, {"x": [1]}, 415, content_type=None),
    Bad(
        "a form", SIGMOID, b"x=1", 415, content_type="application/x-www-form-urlencoded"
    ),
    Bad(
        "JSON in Latin-1",
        SIGMOID,
        {"x": [1]},
        415,
        content_type="application/json; charset=latin-1",
    ),
    # Too much.
    Bad(
        "a declared oversized body",
        SIGMOID,
        b'{"x": [' + b"1," * (MAX_BODY_BYTES // 2) + b"1]}",
        413,
    ),
    Bad(
        "a chunked oversized body",
        SIGMOID,
        b'{"x": [' + b"1," * (MAX_BODY_BYTES // 2) + b"1]}",
        413,
        chunked=True,
    ),
    Bad("too many numbers", SIGMOID, b'{"x": [' + b"1," * MAX_ELEMENTS + b"1]}", 413),
    Bad(
        "too many classes",
        SOFTMAX,
        b'{"logits": [[' + b"1," * MAX_CLASSES + b"1]]}",
        413,
        ["body", "logits", 0],
    ),
    # Wrong method or path.
    Bad("GET on a compute route", SIGMOID, b"", 405, method="GET", content_type=None),
    Bad("an unknown path", "/v1/tanh", {"x": [1]}, 404),
]
