"""The ASGI application: `uvicorn app.main:app --host 0.0.0.0 --port 8000`.

Settings are read, and the model directory checked, at startup (not at import), so a bad
setting or a missing model stops the server at once with one clear line. The model itself
loads in the background: /health answers 503 until it is loaded and warmed up.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from . import __version__
from .backend import Embedder, ModelFiles, OnnxBackend
from .config import Settings
from .errors import ModelError, ServiceError
from .metrics import Metrics, MetricsMiddleware
from .routes import protected, public
from .state import ServiceState
from .store import DocumentStore, PostgresStore, SqliteStore, StoreHolder

log = logging.getLogger("app")
DOCS_ASSETS = "/docs-assets"

# settings -> the slow part of loading (run in a thread). Called at startup, so it may check
# cheap things first and fail fast.
BackendFactory = Callable[[Settings], Callable[[], Embedder]]


def onnx_backend(settings: Settings) -> Callable[[], Embedder]:
    files = ModelFiles.locate(settings.model_dir, settings.model_variant)

    def load() -> Embedder:
        backend = OnnxBackend(files, settings.model_variant, threads_per_run=settings.threads_per_worker,
                              provider=settings.execution_provider, chunk_tokens=settings.max_batch_tokens)
        backend.warm_up()
        return backend

    return load


def open_store(settings: Settings) -> DocumentStore:
    if settings.database_url:
        return PostgresStore(settings.database_url, settings.database_password())
    return SqliteStore(settings.data_dir)


def create_app(settings: Settings | None = None, backend: BackendFactory = onnx_backend) -> FastAPI:
    """The service. Tests pass their own settings and a fake backend; production passes nothing."""
    _setup_logging()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            current = settings or Settings()
            load = backend(current)
        except ValidationError as exc:
            raise RuntimeError(f"invalid settings: {_settings_errors(exc)}") from None
        except ModelError as exc:
            raise RuntimeError(exc.message) from None
        kind = "postgresql" if current.database_url else "sqlite"
        state = ServiceState(current, metrics, StoreHolder(lambda: open_store(current), kind))
        app.state.service = state
        state.start(load)
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(title="Text embeddings and semantic search", version=__version__, lifespan=lifespan,
                  description="all-MiniLM-L6-v2 on ONNX Runtime: embeddings (text-embeddings-inference "
                              "and OpenAI shapes), similarity, and document search.",
                  docs_url=None, redoc_url=None)  # FastAPI's pages load their scripts from a CDN
    _offline_docs(app)
    app.include_router(public)
    app.include_router(protected)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _offline_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's script and style served by the service itself: it works offline."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon-32x32.png")


def _settings_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]).upper()
        parts.append(f"{field}: {err['msg']}" if field else err["msg"].removeprefix("Value error, "))
    return "; ".join(parts)


def _error(status: int, message: str, error_type: str, headers: dict[str, str] | None = None,
           **extra: object) -> JSONResponse:
    return JSONResponse({"error": message, "error_type": error_type, **extra}, status, headers=headers)


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    return _error(exc.status_code, exc.message, exc.error_type, exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # Only type, location and message: echoing the input back could be megabytes.
    errors = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return _error(422, f"{where}: {first['msg']}" if where else first["msg"], "validation", detail=errors)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 400:  # FastAPI's answer to an undecodable body; the contract says 422
        return _error(422, f"malformed request body: {exc.detail}", "validation")
    return _error(exc.status_code, str(exc.detail), "http", exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _error(500, "internal server error", "internal")


class BodyLimitMiddleware:
    """413 for a body larger than any valid request could be, before it is read into memory."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = getattr(scope.get("app"), "state", None)
        service = getattr(service, "service", None) if service else None
        if scope["type"] != "http" or service is None:
            await self.app(scope, receive, send)
            return
        limit = service.settings.max_body_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            response = _error(413, f"request body over {limit} bytes", "validation")
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:  # bodies sent without Content-Length (chunked)
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"request body over {limit} bytes")
            return message

        await self.app(scope, counted, send)


def _setup_logging() -> None:
    logger = logging.getLogger("app")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


app = create_app()
