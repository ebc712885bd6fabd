"""/docs: Swagger UI from assets shipped in the package, so the page works with no CDN.

The assets are swagger-ui-dist, vendored into static/swagger-ui/ (with its licences) by
scripts/vendor-swagger-ui.sh. Only the files the page loads are routed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse

ASSETS_DIR = Path(__file__).parent / "static" / "swagger-ui"
ASSETS_PATH = "/docs/assets"
# Stated, not guessed: `mimetypes` answers from the host's /etc/mime.types, which differ.
MEDIA_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def install(app: FastAPI) -> None:
    """GET /docs and its assets; the app must be made with docs_url=None, redoc_url=None."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        return

    async def page(request: Request) -> HTMLResponse:
        # Behind a proxy that mounts the gateway under a prefix, every URL carries it.
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
        )

    app.add_route("/docs", page, include_in_schema=False)
    for name, media_type in MEDIA_TYPES.items():
        app.add_route(f"{ASSETS_PATH}/{name}", _asset(name, media_type), include_in_schema=False)


def _asset(name: str, media_type: str) -> Callable[[Request], Awaitable[FileResponse]]:
    path = ASSETS_DIR / name

    async def serve(_request: Request) -> FileResponse:
        return FileResponse(path, media_type=media_type)

    return serve
