"""Schemathesis against the app's own OpenAPI document: every operation, every
default check, positive and negative cases, at least 300 cases per operation.

Expected statuses are configured, not checks switched off: a schema-valid body
may still break a rule that JSON Schema cannot state (exactly one of two fields,
equal lengths, rows of equal width summing to 1, labels below C), so schema-valid
requests to the three routes that have such rules may get 422.  That allowance
is itself checked: :func:`positive_rejections_are_beyond_the_schema` fails any
422 to a schema-valid request whose errors are not of those kinds.  The sigmoid
and the GET routes have no such rules and must answer schema-valid requests 2xx.

The GET routes take no input, so Schemathesis exhausts them in a few cases; a
property test sends them 300 requests each with undeclared query parameters and
headers, which they must ignore, under the same checks.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import assert_no_leak

from service.app import create_app
from service.settings import Settings

MIN_CASES = 300
CROSS_FIELD_OPERATIONS = ["softmax", "binary_cross_entropy", "cross_entropy"]

# The messages of rules JSON Schema cannot express (see service.api.models).
BEYOND_SCHEMA = re.compile(
    r"give exactly one of|has \d+ elements|has \d+ rows, but|has \d+ numbers, but|"
    r"must sum to 1 within|must be in \[0, \d+\)|applies to labels only"
)
OVERFLOW = "The result is not representable in float64"

APP = create_app(Settings(api_keys=[], cors_origins=[]))
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": MIN_CASES},
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx"]}},
        "operations": [
            {
                "include-operation-id": CROSS_FIELD_OPERATIONS,
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": ["2xx", "422"]}
                },
            }
        ],
    }
)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)

CASES: Counter[str] = Counter()
STATUSES: Counter[tuple[str, int]] = Counter()


def positive_rejections_are_beyond_the_schema(
    ctx: Any, response: Any, case: schemathesis.Case
) -> None:
    """A 422 to a schema-valid request names only rules the schema cannot state."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    if response.status_code != 422:
        return
    document = response.json()
    errors = document.get("errors")
    if not errors:
        assert document["detail"].startswith(OVERFLOW), document
        return
    for error in errors:
        assert BEYOND_SCHEMA.search(error["msg"]), (
            f"a schema-valid request was refused for {error}: the schema and the "
            "validation disagree"
        )


def leaks_nothing(ctx: Any, response: Any, case: schemathesis.Case) -> None:
    """No trace, path or version in any body, and no Server header."""
    assert "server" not in {name.lower() for name in response.headers}
    assert_no_leak(response.content)


EXTRA_CHECKS = [positive_rejections_are_beyond_the_schema, leaks_nothing]


def record(case: schemathesis.Case, status: int) -> None:
    CASES[case.operation.label] += 1
    STATUSES[(case.operation.label, status)] += 1


@SCHEMA.parametrize()
def test_schemathesis_finds_no_failure(case):
    response = case.call_and_validate(additional_checks=EXTRA_CHECKS)
    record(case, response.status_code)


GET_OPERATIONS = [
    ("/health/live", "GET"),
    ("/health/ready", "GET"),
    ("/v1/info", "GET"),
]

_TOKEN = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12
)


@pytest.mark.parametrize(("path", "method"), GET_OPERATIONS)
def test_get_routes_ignore_undeclared_noise(path, method):
    operation = SCHEMA[path][method]

    @settings(
        max_examples=MIN_CASES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        query=st.dictionaries(_TOKEN, _TOKEN, max_size=4),
        headers=st.dictionaries(
            st.sampled_from(["Accept", "X-Trace", "Accept-Language", "Cookie"]),
            _TOKEN,
        ),
    )
    def probe(query: dict[str, str], headers: dict[str, str]) -> None:
        case = operation.Case(query=query, headers=headers)
        response = case.call_and_validate(additional_checks=EXTRA_CHECKS)
        assert response.status_code == 200
        record(case, response.status_code)

    probe()


def test_every_operation_got_at_least_300_cases():
    if not CASES:
        pytest.skip("the generated tests did not run in this session")
    operations = {operation.label for operation in _operations()}
    assert set(CASES) == operations
    for label in operations:
        assert CASES[label] >= MIN_CASES, (label, CASES[label])
    assert not any(status >= 500 for _, status in STATUSES)
    summary = ", ".join(f"{label}: {CASES[label]}" for label in sorted(CASES))
    print(f"\nschemathesis cases: {sum(CASES.values())} ({summary})")
    print("statuses:", dict(sorted(STATUSES.items())))


def _operations() -> list[Any]:
    return [result.ok() for result in SCHEMA.get_all_operations()]


def test_integers_written_with_a_zero_fraction_are_the_integers(make_client_for):
    # JSON Schema's "integer" includes 2.0, so the service must take it as 2.
    client = make_client_for(Settings())
    z = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]

    def post(path: str, body: dict[str, Any]) -> Any:
        response = client.post(path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    assert post("/v1/sigmoid", {"x": [1.0], "order": 2.0}) == post(
        "/v1/sigmoid", {"x": [1.0], "order": 2}
    )
    assert post(
        "/v1/losses/cross-entropy",
        {"logits": z, "labels": [0.0, 2.0], "ignore_index": 2.0},
    ) == post(
        "/v1/losses/cross-entropy", {"logits": z, "labels": [0, 2], "ignore_index": 2}
    )
    beyond = client.post(
        "/v1/losses/cross-entropy",
        json={"logits": z, "labels": [0, 1], "ignore_index": 1e30},
    )
    assert beyond.status_code == 422
    assert beyond.json()["errors"][0]["loc"] == ["body", "ignore_index"]
