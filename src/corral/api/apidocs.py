"""``/api/docs``: Swagger UI served from the package, and an OpenAPI document that says
how to authenticate and how each route fails.

Swagger UI's files come from the ``swagger-ui-bundle-v2`` wheel, so the page works on
a machine with no internet (FastAPI's default page loads them from a CDN, and is blank
offline). The page carries the dashboard's CSP: no inline script, so the start-up code
is ``static/api-docs.js``.

The document FastAPI generates knows neither the Bearer scheme (routes read the header
themselves) nor the error bodies (each dialect renders its own, see ``routing.py``). Both
are added once, after generation: every route in ``route_rights.RIGHTS`` needs a token
and may answer 401/403; a route with a path parameter may answer 404; a route that
takes input may answer the dialect's validation status (400, or TaskDriver's 422). Each
refers to the error body of the dialect that owns the path (``app.path_owner``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from corral.api.dashboard.security import PAGE_HEADERS
from corral.api.route_rights import RIGHTS

DOCS = "/api/docs"
ASSETS = DOCS + "/assets"
BEARER = "bearerAuth"
METHODS = ("get", "put", "post", "delete", "patch")

PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Corral API</title>
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi="/api/openapi.json"></div>
  <script src="{ASSETS}/swagger-ui-bundle.js"></script>
  <script src="/static/api-docs.js"></script>
</body>
</html>
"""

_STRING = {"type": "string"}
_OBJECT = {"type": "object", "additionalProperties": True}
# One schema per dialect error body; ``status`` is the HTTP status repeated (Octaskly).
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "NativeError": {
        "type": "object",
        "required": ["error", "context"],
        "properties": {"error": _STRING, "context": _OBJECT},
    },
    "CmdExecutorError": {
        "type": "object",
        "required": ["error", "message", "code"],
        "properties": {
            "error": _STRING,
            "message": _STRING,
            "details": _OBJECT,
            "code": _STRING,
        },
    },
    "OctasklyError": {
        "type": "object",
        "required": ["error", "status", "timestamp"],
        "properties": {
            "error": _STRING,
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "timestamp": {"type": "string", "format": "date-time"},
        },
    },
    "TaskDriverError": {
        "type": "object",
        "required": ["success", "error", "timestamp", "correlationId"],
        "properties": {
            "success": {"type": "boolean", "enum": [False]},
            "error": _STRING,
            "timestamp": {"type": "string", "format": "date-time"},
            "correlationId": _STRING,
            "validationDetails": {"type": "array", "items": _OBJECT},
        },
    },
}
# The dialect route class's name -> (its error schema, its validation status).
DIALECTS: dict[str, tuple[str, str]] = {
    "NativeRoute": ("NativeError", "400"),
    "CmdRoute": ("CmdExecutorError", "400"),
    "OctasklyRoute": ("OctasklyError", "400"),
    "TaskDriverRoute": ("TaskDriverError", "422"),
}
WHY = {
    "400": "Invalid input (malformed JSON, a missing or out-of-range field)",
    "401": "No token, or an invalid, expired or revoked one",
    "403": "The token's role may not do this",
    "404": "No such resource",
    "422": "Validation failed (see validationDetails)",
}


def install_api_docs(app: FastAPI, owner_of: Callable[[str], type]) -> None:
    """Serve the docs page and its assets, and complete the OpenAPI document.
    ``owner_of(path)`` names the dialect route class that owns a path."""

    @app.get(DOCS, include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return HTMLResponse(PAGE, headers=PAGE_HEADERS)

    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="api-docs-assets")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = complete(schema, owner_of)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any], owner_of: Callable[[str], type]) -> dict[str, Any]:
    """Add the security scheme, and each operation's security and error responses."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`corral token create`) or a login JWT "
        "(`POST /api/auth/login`); the dashboard's `auth_token` cookie works too.",
    }
    schemas = components.setdefault("schemas", {})
    schemas.update(ERROR_SCHEMAS)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)  # FastAPI's 422 body: no Corral route answers it
    for path, item in schema.get("paths", {}).items():
        error_schema, invalid = DIALECTS.get(owner_of(path).__name__, DIALECTS["NativeRoute"])
        for method in METHODS:
            if method in item:
                _operation(item[method], method, path, error_schema, invalid)
    return schema


def _operation(op: dict[str, Any], method: str, path: str, error: str, invalid: str) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    responses.pop("422", None)
    guarded = (method.upper(), path) in RIGHTS
    op["security"] = [{BEARER: []}] if guarded else []
    codes: list[str] = []
    if op.get("parameters") or op.get("requestBody"):
        codes.append(invalid)
        if invalid == "422" and "requestBody" in op:
            codes.append("400")  # malformed JSON, before any validation
    if guarded:
        codes += ["401", "403"]
    if "{" in path:
        codes.append("404")
    ref = {"$ref": f"#/components/schemas/{error}"}
    for code in sorted(codes):
        responses.setdefault(
            code, {"description": WHY[code], "content": {"application/json": {"schema": ref}}}
        )
