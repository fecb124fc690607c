"""Issue 11, item 23: a property-based fuzzer over the app's own OpenAPI document finds no 5xx.

Schemathesis reads the document a real server publishes (``/api/openapi.json``),
generates requests for every operation of every dialect, both ones that fit the
schema and ones that break it (wrong types, out-of-range numbers, integers past
64 bits, odd Unicode), and sends them over loopback to that server, backed by a
real SQLite store, authenticated as admin so they reach the handlers rather than
stopping at a 401. Any answer of 500 or more fails the test, with the request
that caused it.

It is bounded by a fixed number of examples per operation, not by time, and is
derandomized so a failure reproduces on the next run; the targeted tests of each
reported 500 live in ``test_hostile_numbers.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, run_server

# schemathesis and Hypothesis are imported by the one test that fuzzes, not when the
# module is collected: importing them costs each pytest process (each xdist worker
# collects every module) seconds of CPU. For the same reason pyproject turns their
# pytest plugins off (-p no:schemathesis -p no:hypothesispytest); nothing here needs them.

EXAMPLES = 6  # per operation and mode: about 700 requests over the 83 operations, ~10 s
# Long-polls would park each request for up to a minute; the fuzzer learns nothing there.
PARKED = "wait"
CONSTRAINTS = {"enum", "pattern", "format", "minLength", "maxLength", "minimum", "maximum"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    off = {"rate_limit": "off", "login_rate_limit": "off", "auth_failure_rate_limit": "off"}
    with run_server(data, **off) as live:
        yield live


def _no_long_polls(case: Any) -> None:
    for part in (case.query, case.body):
        if isinstance(part, dict) and PARKED in part:
            part[PARKED] = 0


def _fuzz(operation: Any, mode: Any, live: LiveServer, found: list[str]) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    headers = {"Authorization": f"Bearer {live.admin_token}"}

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        _no_long_polls(case)
        answer = case.call(base_url=live.url, headers=headers, timeout=15)
        if answer.status_code >= 500:
            found.append(f"{answer.status_code} {case.as_curl_command(headers=headers)}")

    # Unsatisfiable: the mode could make no case at all for this operation.
    with contextlib.suppress(Unsatisfiable):
        run()


def _negatable(operation: dict[str, Any]) -> bool:
    """Whether a request can break this operation's schema at all: one that takes only
    free-text ids in its path cannot, and asking Hypothesis for one costs hundreds of
    rejected draws before it gives up."""
    if "requestBody" in operation:
        return True
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        constrained = CONSTRAINTS & schema.keys() or schema.get("type", "string") != "string"
        if constrained or (parameter.get("required") and parameter["in"] != "path"):
            return True
    return False


@pytest.mark.slow  # 10-30 s on a busy 2-core machine; run by `make test` all the same
def test_item23_no_operation_of_any_dialect_answers_5xx(server: LiveServer) -> None:
    import schemathesis
    from schemathesis.generation.modes import GenerationMode

    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    document = httpx.get(f"{server.url}/api/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    found: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50  # every dialect is in the document
    for operation in operations:
        raw = document["paths"][operation.path][operation.method.lower()]
        for mode in modes if _negatable(raw) else modes[:1]:
            _fuzz(operation, mode, server, found)
    assert not found, "server errors:\n" + "\n".join(found[:20])
    # Still admin at the end: nothing the fuzzer sent locked it out before the last call.
    with server.client() as http:
        assert http.get("/api/v1/admin/users").status_code == 200


def test_item23_every_number_in_the_document_has_a_range(server: LiveServer) -> None:
    """Every integer or number a request may carry, in a parameter or a request body,
    has a lower and an upper bound that clients can read."""
    document = httpx.get(f"{server.url}/api/openapi.json").json()
    unbounded = [
        where
        for where, schema in _request_numbers(document)
        if not ({"minimum", "exclusiveMinimum"} & schema.keys())
        or not ({"maximum", "exclusiveMaximum"} & schema.keys())
    ]
    assert not unbounded, unbounded


def _request_numbers(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    components = document.get("components", {}).get("schemas", {})
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                where = f"{label} ?{parameter['name']}"
                yield from _numbers(parameter.get("schema", {}), where, components, set())
            for media in operation.get("requestBody", {}).get("content", {}).values():
                yield from _numbers(media.get("schema", {}), f"{label} body", components, set())


def _numbers(
    schema: Any, where: str, components: dict[str, Any], seen: set[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            yield from _numbers(components.get(name, {}), where, components, seen | {name})
        return
    if schema.get("type") in ("integer", "number"):
        yield where, schema
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            yield from _numbers(sub, where, components, seen)
    yield from _numbers(schema.get("items"), f"{where}[]", components, seen)
    yield from _numbers(schema.get("additionalProperties"), f"{where}.*", components, seen)
    for name, sub in schema.get("properties", {}).items():
        yield from _numbers(sub, f"{where}.{name}", components, seen)


def test_item23_the_range_check_sees_a_missing_bound(tmp_path: Path) -> None:
    """The walker above finds numbers behind $refs, in arrays and in optional fields."""
    body = {"type": "array", "items": {"$ref": "#/components/schemas/B"}}
    document = {
        "components": {"schemas": {"B": {"properties": {"n": {"anyOf": [{"type": "integer"}]}}}}},
        "paths": {
            "/x": {
                "post": {
                    "parameters": [{"name": "q", "schema": {"type": "number", "minimum": 0}}],
                    "requestBody": {"content": {"application/json": {"schema": body}}},
                }
            }
        },
    }
    assert [where for where, _ in _request_numbers(document)] == ["POST /x ?q", "POST /x body[].n"]
