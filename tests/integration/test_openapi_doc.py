"""The served OpenAPI document says how to authenticate and how each route fails, and
what it says about errors is what the server answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from corral.api.route_rights import RIGHTS
from tests.live import LiveServer, run_server

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("openapi") / "data") as live:
        yield live


@pytest.fixture(scope="module")
def doc(server: LiveServer) -> dict[str, Any]:
    answer = httpx.get(server.url + "/api/openapi.json", timeout=10)
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def error_ref(op: dict[str, Any], code: str) -> str:
    ref: str = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def test_item2_openapi_declares_bearer_and_every_guarded_route_uses_it(
    doc: dict[str, Any],
) -> None:
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for method, path, op in operations(doc):
        guarded = (method.upper(), path) in RIGHTS
        assert op["security"] == ([{"bearerAuth": []}] if guarded else []), (method, path)
        if guarded:
            assert {"401", "403"} <= op["responses"].keys(), (method, path)
        if "{" in path:
            assert "404" in op["responses"], (method, path)
    health = doc["paths"]["/api/v1/health"]["get"]
    assert health["security"] == [] and "401" not in health["responses"]


def test_item2_error_responses_name_the_dialects_own_body(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    assert error_ref(paths["/api/v1/jobs/{job_id}"]["get"], "404") == "NativeError"
    assert error_ref(paths["/api/v1/jobs"]["post"], "400") == "NativeError"
    assert error_ref(paths["/api/jobs/submit"]["post"], "400") == "CmdExecutorError"
    assert error_ref(paths["/api/v1/tasks"]["post"], "401") == "OctasklyError"
    assert error_ref(paths["/api/projects"]["post"], "422") == "TaskDriverError"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for _method, path, op in operations(doc):
        assert "422" not in op["responses"] or error_ref(op, "422") == "TaskDriverError", path


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/api/v1/jobs/nope", None, 401),
        ("post", "/api/jobs/submit", {}, 401),
        ("get", "/api/v1/tasks", None, 401),
        ("get", "/api/projects", None, 401),
        ("get", "/api/v1/jobs/no-such-job", None, 404),
        ("get", "/api/projects/no-such-project", None, 404),
        ("post", "/api/v1/jobs", {"command": 5}, 400),
        ("post", "/api/jobs/submit", {}, 400),
        ("post", "/api/projects", {"name": ""}, 422),
    ],
)
def test_item2_the_declared_error_body_is_the_one_answered(
    server: LiveServer,
    doc: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
) -> None:
    """Every required key of the declared body is in the real answer, for real calls."""
    if status == 401:  # no credentials at all
        answer = httpx.request(method.upper(), server.url + path, json=body, timeout=10)
    else:
        with server.client() as http:
            answer = http.request(method.upper(), path, json=body)
    assert answer.status_code == status, answer.text
    template = next(p for p in doc["paths"] if _matches(p, path))
    name = error_ref(doc["paths"][template][method], str(status))
    required = doc["components"]["schemas"][name]["required"]
    assert set(required) <= answer.json().keys(), (name, answer.json())


def _matches(template: str, path: str) -> bool:
    parts, actual = template.split("/"), path.split("/")
    return len(parts) == len(actual) and all(
        p == a or p.startswith("{") for p, a in zip(parts, actual, strict=True)
    )


def test_item2_docs_page_needs_no_cdn(server: LiveServer) -> None:
    page = httpx.get(server.url + "/api/docs", timeout=10)
    assert page.status_code == 200 and "cdn" not in page.text.lower()
    for asset in ("/api/docs/assets/swagger-ui-bundle.js", "/api/docs/assets/swagger-ui.css"):
        assert httpx.get(server.url + asset, timeout=10).status_code == 200, asset
