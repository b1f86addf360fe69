"""The FastAPI application: pages, their JSON twins, the OTLP receiver and the local static files.

>>> from pathlib import Path
>>> app = create_app(WebConfig(db=Path(":memory:")))
>>> app.title
'flopledger'
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import as_file, files
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from flopledger.errors import ConfigError, FlopledgerError, InputError
from flopledger.web import api, pages
from flopledger.web.state import ServerState, WebConfig

__all__ = ["create_app", "plotly_js_path"]

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def plotly_js_path() -> Path:
    """plotly.js as bundled in the installed ``plotly`` package: the dashboard needs no network."""
    resource = files("plotly") / "package_data" / "plotly.min.js"
    with as_file(resource) as path:
        if not path.is_file():
            raise ConfigError(
                "the installed plotly package has no package_data/plotly.min.js; reinstall plotly"
            )
        return path


def create_app(config: WebConfig, *, state: ServerState | None = None) -> FastAPI:
    """The dashboard over the ledger in ``config.db`` (opened when the app starts, closed at shutdown)."""
    plotly_js = plotly_js_path()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = state is None
        app.state.flopledger = state or ServerState.open(config)
        try:
            yield
        finally:
            if opened:
                app.state.flopledger.close()

    app = FastAPI(
        title="flopledger",
        summary="Spend, token mix, integrity findings and fleet plans of a flopledger ledger.",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    if state is not None:
        app.state.flopledger = state

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for k, v in _SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(FlopledgerError)
    async def server_setup_error(request: Request, exc: FlopledgerError) -> JSONResponse:
        return JSONResponse({"detail": f"server configuration: {exc}"}, status_code=500)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(
            plotly_js, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    app.mount("/static", StaticFiles(directory=str(files("flopledger.web") / "static")), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    return app
