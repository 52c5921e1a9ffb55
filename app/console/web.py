"""The console's plumbing: its router, templates, sessions on requests, CSRF, and errors
rendered as pages (the API's problem+json is for programs; people get sentences)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute, APIRouter
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app import clock
from app.console import charts
from app.console.auth import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    Session,
    Signer,
    console_secret,
    find_session,
)
from app.console.charts import NONE
from app.console.forms import Errors, Form, read_form
from app.db.engine import Database
from app.errors import AppError, Forbidden
from app.settings import Settings

log = logging.getLogger("creditgate.console")
HERE = Path(__file__).resolve().parent
SIGN_IN = "/console/sign-in"

templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                        trim_blocks=True, lstrip_blocks=True)
templates.filters["money"] = charts.money
templates.filters["percent"] = charts.percent


def _when(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return NONE
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def _label(code: str) -> str:
    return code.replace("_", " ").capitalize()


templates.filters["when"] = _when
templates.filters["label"] = _label


class SignInRequired(Exception):
    """No live session: send the browser to the sign-in page."""


class Disabled(Exception):
    """The console is off (production without CREDITGATE_CONSOLE_SECRET)."""


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(request: Request, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    session: Session | None = getattr(request.state, "console_session", None)
    values = {"session": session, "path": request.url.path, "today": clock.today(),
              "errors": Errors(), "notice": None, **context}
    html = templates.get_template(name).render(values)
    return HTMLResponse(html, status_code=status)


def redirect(url: str, request: Request) -> Response:
    """See other: for htmx a full navigation (HX-Redirect), else 303."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


class ConsoleRoute(APIRoute):
    """Console routes answer failures with pages: sign-in for no session, sentences for a
    refused request, a plain 'not found' for a malformed path."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except SignInRequired:
                return redirect(SIGN_IN, request)
            except Disabled:
                return render(request, "error.html", status=503, title="Console switched off",
                              message="The console is switched off: in production it needs "
                                      "CREDITGATE_CONSOLE_SECRET to sign its sessions.")
            except RequestValidationError:
                return render(request, "error.html", status=404, title="Not found",
                              message="There is no such page in the console.")
            except AppError as exc:
                return render(request, "error.html", status=exc.status, title=exc.title,
                              message=exc.detail)

        return handler


router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


def settings_of(request: Request) -> Settings:
    db: Database = request.app.state.db
    return db.settings


def db_of(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def signer_of(request: Request) -> Signer:
    secret = console_secret(settings_of(request))
    if secret is None:
        raise Disabled
    return Signer(secret)


async def current_session(request: Request) -> Session | None:
    signer = signer_of(request)
    token = signer.unsign(request.cookies.get(COOKIE))
    session = None if token is None else await find_session(db_of(request), signer, token)
    request.state.console_session = session
    return session


async def need_session(request: Request, *, admin: bool = False) -> Session:
    """The signed-in controller or admin; an admin for admin-only screens."""
    session = await current_session(request)
    if session is None:
        raise SignInRequired
    if admin and not session.is_admin:
        raise Forbidden("This screen is for admin keys only; you are signed in as "
                        f"{session.role.value}.")
    return session


def same_origin(request: Request) -> bool:
    """A browser names the page's origin on every POST; it must be this host."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


class CsrfRefused(AppError):
    status, code, title = 403, "csrf", "Refused"


async def action(request: Request, *, admin: bool = False) -> tuple[Session, Form]:
    """A state-changing request: a live session, this origin, and the session's CSRF token
    (form field csrf_token, or header X-CSRF-Token from htmx)."""
    session = await need_session(request, admin=admin)
    form = await read_form(request)
    token = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD) or None
    if not same_origin(request) or not signer_of(request).check("csrf", session.token, token):
        raise CsrfRefused("This form is out of date or did not come from the console (its "
                          "security token is missing or wrong). Reload the page and try "
                          "again.")
    return session, form
