"""Wire the console into the application: its pages, its static files, its headers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.console import (  # noqa: F401 - each registers its routes on the router
    assessment_pages,
    monitoring_pages,
    pages,
    policy_pages,
    webhook_pages,
)
from app.console.security import ConsoleHeaders
from app.console.web import HERE, router


def install(app: FastAPI) -> None:
    """Serve the console under /console (pages, /console/static) with its own headers."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_middleware(ConsoleHeaders)
