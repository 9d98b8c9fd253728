"""The service's API docs, offline: Swagger UI at ``/docs`` and ReDoc at ``/redoc``.

``fastapi_offline.FastAPIOffline`` serves Swagger UI and ReDoc from the copies its package
ships (under ``/static-offline-docs``) instead of a CDN. One request still left: ReDoc's
bundle always draws the "API docs by Redocly" logo from ``cdn.redoc.ly`` (no option turns it
off), so ``/redoc`` here serves that bundle with the logo URL replaced by an inline image.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, Response

REDOC_JS = "redoc.standalone.js"
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# a small grey dot in its place: an inline image, nothing to fetch
LOCAL_LOGO = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Ccircle cx='8' cy='8' r='6' fill='%23999'/%3E%3C/svg%3E"
)
ASSETS = "/static-offline-docs"  # where FastAPIOffline mounts its files (its default)


@cache
def redoc_bundle() -> bytes:
    """fastapi-offline's ReDoc bundle, with the remote logo replaced."""
    text = (files("fastapi_offline") / "static" / REDOC_JS).read_text(encoding="utf-8")
    return text.replace(REDOCLY_LOGO, LOCAL_LOGO).encode()


def add_redoc(app: FastAPI, url: str = "/redoc") -> None:
    """Serve ReDoc at ``url`` from the app itself (create the app with ``redoc_url=None``)."""
    script_url = f"{url}/{REDOC_JS}"

    @app.get(script_url, include_in_schema=False)
    def redoc_script() -> Response:
        return Response(
            redoc_bundle(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get(url, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{script_url}",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
