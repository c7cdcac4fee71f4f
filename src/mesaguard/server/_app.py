"""The FastAPI application: API and UI routers, error mapping, lifecycle, and how to run it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..gate import GateError
from ..ledger import LedgerError
from ._api import api_router, gate_http_error
from ._errors import ServerError
from ._security import LoginRequired
from ._settings import ServerSettings
from ._state import ServerState
from ._ui import PAGE_HEADERS, templates, ui_router

__all__ = ["OPENAPI_PATH", "app_from_env", "create_app", "openapi_schema", "run_server"]

logger = logging.getLogger("mesaguard.server")

HERE = Path(__file__).resolve().parent
OPENAPI_PATH = HERE / "openapi.json"
"""The checked-in OpenAPI schema; `mesaguard serve openapi -o` regenerates it."""

PUBLIC_PATHS = frozenset({"/api/v1/health"})
"""API paths that need no token."""

DESCRIPTION = """\
Bounded autonomy for project-management agents. Agents submit decisions to the gate
(`POST /api/v1/decisions`), which applies them, queues them for human review or denies them
under the constitution in force; reviewers act on the queue; every step is recorded in the
Ethics Review Log. Authenticate with `Authorization: Bearer <token>`
(`mesaguard serve token add USER`).
"""


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_response(request: Request, code: int, detail: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": detail}, status_code=code)
    titles = {
        400: "Bad request",
        401: "Not logged in",
        403: "Forbidden",
        404: "Not found",
        409: "Conflict",
        503: "Unavailable",
    }
    response = templates.TemplateResponse(
        request,
        "error.html",
        {"principal": None, "status": code, "title": titles.get(code, "Error"), "detail": detail},
        status_code=code,
    )
    response.headers.update(PAGE_HEADERS)
    return response


def _allowed_methods(request: Request) -> str:
    """Every method some route serves on this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for router in (api_router, ui_router):
        for route in router.routes:
            if isinstance(route, APIRoute) and route.path_regex.match(request.url.path):
                methods |= route.methods or set()
    return ", ".join(sorted(methods))


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, error: LoginRequired) -> Response:
        return RedirectResponse(
            f"/login?next={quote(error.next_url, safe='/')}", status_code=status.HTTP_303_SEE_OTHER
        )

    # Starlette's own exception class: the router's 404 / 405 are not FastAPI's subclass.
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        response = _error_response(request, error.status_code, str(error.detail))
        if error.headers:
            response.headers.update(error.headers)
        if error.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            response.headers["Allow"] = _allowed_methods(request)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": jsonable_encoder(error.errors())}, status_code=422)
        return _error_response(request, 400, "the form or query is not valid")

    @app.exception_handler(GateError)
    async def _gate(request: Request, error: GateError) -> Response:
        mapped = gate_http_error(error)
        response = _error_response(request, mapped.status_code, str(mapped.detail))
        if mapped.headers:
            response.headers.update(mapped.headers)
        return response

    # A store that fails is reported, never a 500: the gate has already sent the decision to
    # review or not recorded it at all, and the caller may retry with the same key.
    @app.exception_handler(SQLAlchemyError)
    async def _db(request: Request, error: SQLAlchemyError) -> Response:
        logger.error("database error on %s: %s", request.url.path, error)
        return _error_response(request, 503, "a store is unavailable; nothing was applied")

    @app.exception_handler(LedgerError)
    async def _ledger(request: Request, error: LedgerError) -> Response:
        logger.error("log error on %s: %s", request.url.path, error)
        return _error_response(request, 503, f"the Ethics Review Log is unavailable: {error}")

    @app.exception_handler(ServerError)
    async def _server(request: Request, error: ServerError) -> Response:
        return _error_response(request, 503, str(error))


def create_app(settings: ServerSettings | None = None, *, open_stores: bool = True) -> FastAPI:
    """The review server as an ASGI app; stores open when it starts (``open_stores``)."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not open_stores:
            yield
            return
        state = ServerState(settings)
        app.state.server = state
        state.start()
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="mesaguard review server",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    _install_handlers(app)
    app.include_router(api_router)
    app.include_router(ui_router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def schema_with_security() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from `mesaguard serve token add USER`.",
                }
            }
            for path, operations in schema["paths"].items():
                if path in PUBLIC_PATHS:
                    continue
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = schema_with_security  # type: ignore[method-assign]
    return app


def openapi_schema() -> dict[str, Any]:
    """The OpenAPI document of the REST API, exactly as the server serves it."""
    return create_app(open_stores=False).openapi()


def app_from_env() -> FastAPI:
    """Factory for worker processes: settings from ``$MESAGUARD_SERVER_SETTINGS``."""
    return create_app(ServerSettings.from_env())


def run_server(
    settings: ServerSettings, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1
) -> None:
    """Serve until interrupted; with several workers each process opens its own stores."""
    import os

    import uvicorn

    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
        return
    os.environ.update(settings.to_env())
    uvicorn.run(
        "mesaguard.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )
