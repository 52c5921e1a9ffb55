"""Sign-in and sign-out, the dashboard, the hold queue and the customer page."""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi import Request, Response
from pydantic import Field

from app import clock
from app.assessment.service import list_assessments
from app.auth.verifier import KeyVerifier
from app.cache import Cache
from app.console import charts, queries
from app.console.auth import (
    COOKIE,
    LOGIN_COOKIE,
    MAY_SIGN_IN,
    close_session,
    open_session,
    secure_cookie,
)
from app.console.forms import Errors, read_form, validate, whole
from app.console.web import (
    SIGN_IN,
    action,
    current_session,
    db_of,
    need_session,
    redirect,
    render,
    router,
    same_origin,
    settings_of,
    signer_of,
)
from app.credit.policy import RISK_CLASSES, ReasonCode
from app.credit_file.service import history
from app.customers import service as customers
from app.errors import AppError
from app.fields import Days, Id, NonNegativeAmount, RequestModel
from app.monitoring import service as monitoring
from app.observe import count
from app.orders import service as orders
from app.orders.schemas import ReasonIn
from app.receivables.behaviour_service import behaviour_of
from app.securities import service as securities

ENTRY_ID = re.compile(r"^[0-9A-Z]{26}$")
HOLD_REASONS = [c.value for c in ReasonCode
                if c not in (ReasonCode.WITHIN_LIMIT, ReasonCode.MANUAL_RELEASE,
                             ReasonCode.AUTO_RELEASE, ReasonCode.UNKNOWN_CUSTOMER)]


# ---- sign-in and sign-out --------------------------------------------------------------------

def _cookie_args(request: Request) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "secure": secure_cookie(settings_of(request)),
            "path": "/console"}


def _sign_in_page(request: Request, nonce: str, *, status: int = 200,
                  errors: Errors | None = None, notice: str | None = None) -> Response:
    response = render(request, "sign_in.html", status=status, title="Sign in",
                      login_csrf=signer_of(request).mac("login", nonce),
                      errors=errors or Errors(), notice=notice)
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, **_cookie_args(request))
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request, signed_out: bool = False) -> Response:
    if await current_session(request) is not None:
        return redirect("/console/", request)
    return _sign_in_page(request, secrets.token_urlsafe(16),
                         notice="You are signed out." if signed_out else None)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Exchange a controller or admin key, once, for a session cookie."""
    signer = signer_of(request)
    form = await read_form(request)
    nonce = request.cookies.get(LOGIN_COOKIE)
    errors = Errors()
    if (nonce is None or not same_origin(request)
            or not signer.check("login", nonce, form.get("csrf_token") or None)):
        errors.add("", "This sign-in form is out of date. It has been reloaded: paste the "
                       "key again.")
        return _sign_in_page(request, secrets.token_urlsafe(16), status=403, errors=errors)
    key = form.get("api_key").strip()
    verifier: KeyVerifier = request.app.state.keys
    caller = await verifier.verify(key) if key else None
    if not key:
        errors.add("api_key", "Paste a controller or admin API key.")
    elif caller is None:
        errors.add("api_key", "This key is unknown or revoked.")
    elif caller.role not in MAY_SIGN_IN:
        errors.add("api_key", f"A {caller.role.value} key cannot sign in to the console: only "
                              "controller and admin keys can.")
    if errors or caller is None:
        status = 403 if caller is not None else 401
        return _sign_in_page(request, nonce, status=status, errors=errors)
    minutes = settings_of(request).console_session_minutes
    token, _expires = await open_session(db_of(request), caller, minutes)
    response = redirect("/console/", request)
    response.set_cookie(COOKIE, signer.sign(token), max_age=minutes * 60,
                        **_cookie_args(request))
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    session, _form = await action(request)
    await close_session(db_of(request), session.token)
    response = redirect(SIGN_IN + "?signed_out=true", request)
    response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict",
                           secure=secure_cookie(settings_of(request)))
    return response


# ---- the dashboard ---------------------------------------------------------------------------

@router.get("")
@router.get("/")
async def dashboard(request: Request) -> Response:
    await need_session(request)
    db = db_of(request)
    today = clock.today()
    async with db.autocommit() as conn:
        board = await queries.dashboard(conn, today)
        alerts_open = await monitoring.open_counts(conn)
    chart = charts.ratio_bars(
        [(r.name, r.utilisation) for r in board.top_utilisation if r.utilisation is not None],
        "Top 10 customers by utilisation of their effective limit")
    return render(request, "dashboard.html", title="Dashboard", board=board,
                  alerts_open=alerts_open, alerts_total=sum(alerts_open.values()),
                  utilisation_chart=chart)


# ---- the hold queue --------------------------------------------------------------------------

class HoldFilterIn(RequestModel):
    customer_id: Id | None = None
    reason: str | None = Field(default=None, pattern="^(" + "|".join(HOLD_REASONS) + ")$")
    risk_class: str | None = Field(default=None,
                                   pattern="^(" + "|".join(RISK_CLASSES) + ")$")
    min_age_days: Days | None = None
    min_amount: NonNegativeAmount | None = None
    max_amount: NonNegativeAmount | None = None


def _hold_filter(request: Request, errors: Errors) -> tuple[queries.HoldFilter, dict[str, str]]:
    given = {k: v.strip() for k, v in request.query_params.items()
             if k in HoldFilterIn.model_fields and v.strip()}
    data: dict[str, Any] = dict(given)
    if "min_age_days" in data:
        data["min_age_days"] = whole(data["min_age_days"])
    parsed = validate(HoldFilterIn, data, errors)
    if parsed is None:
        return queries.HoldFilter(), given
    return queries.HoldFilter(**parsed.model_dump()), given


async def _holds_page(request: Request, *, status: int = 200, errors: Errors | None = None,
                      notice: str | None = None, failures: list[str] | None = None,
                      reason: str = "") -> Response:
    await need_session(request)
    errors = errors or Errors()
    filter_errors = Errors()
    flt, given = _hold_filter(request, filter_errors)
    now = clock.now()
    async with db_of(request).autocommit() as conn:
        rows = await queries.holds(conn, flt, now)
    query = request.url.query
    return render(request, "holds.html", status=status if not filter_errors else 422,
                  title="Hold queue", rows=rows, now=now, given=given, reasons=HOLD_REASONS,
                  classes=RISK_CLASSES, errors=errors, filter_errors=filter_errors,
                  notice=notice, failures=failures or [], reason=reason,
                  shown_max=queries.HOLDS_SHOWN, action_url="/console/holds"
                  + (f"?{query}" if query else ""))


@router.get("/holds")
async def holds(request: Request) -> Response:
    return await _holds_page(request)


@router.post("/holds")
async def decide_holds(request: Request) -> Response:
    """Release or reject the chosen held orders, each through the order service (its own
    transaction, its credit-file entry), as POST /v1/orders/{id}/release|reject would."""
    session, form = await action(request)
    errors = Errors()
    verb = form.get("action")
    chosen = list(dict.fromkeys(form.all("order_id")))
    if verb not in ("release", "reject"):
        errors.add("", "Choose Release or Reject.")
    if not chosen:
        errors.add("order_id", "Choose at least one held order.")
    body = validate(ReasonIn, {"reason": form.get("reason").strip()}, errors)
    if errors or body is None:
        return await _holds_page(request, status=422, errors=errors, reason=form.get("reason"))
    db = db_of(request)
    done: list[str] = []
    failures: list[str] = []
    for order_id in chosen:
        try:
            if verb == "release":
                change = await orders.release(db, order_id, session.caller, body.reason)
                count(request, change.decided)
            else:
                await orders.reject(db, order_id, session.caller, body.reason)
            done.append(order_id)
        except AppError as exc:
            failures.append(f"{order_id}: {exc.detail}")
    past = "Released" if verb == "release" else "Rejected"
    notice = (f"{past} {len(done)} order{'s' if len(done) != 1 else ''}: {', '.join(done)}."
              if done else None)
    return await _holds_page(request, status=200 if done else 409, notice=notice,
                             failures=failures)


# ---- the customer page -----------------------------------------------------------------------

@router.get("/customers")
async def find_customer(request: Request, customer_id: str = "") -> Response:
    await need_session(request)
    wanted = customer_id.strip()
    if not wanted:
        return render(request, "error.html", status=422, title="Customer",
                      message="Enter a customer id to open its page.")
    return redirect(f"/console/customers/{wanted}", request)


@router.get("/customers/{customer_id}")
async def customer(request: Request, customer_id: str, cursor: str | None = None) -> Response:
    await need_session(request)
    db = db_of(request)
    cache: Cache | None = request.app.state.cache
    today = clock.today()
    account = await customers.get_account(db, customer_id)
    exposure = await customers.exposure(db, cache, customer_id)
    async with db.autocommit() as conn:
        buckets, not_due = await queries.aging(conn, customer_id, today)
        behaviour = await behaviour_of(conn, customer_id, today)
        group = None if account.group_id is None else await queries.group(conn, account.group_id)
    held_securities = await securities.list_securities(db, customer_id)
    alerts = [a for a in await monitoring.list_alerts(
        db, customer_id=customer_id, kind=None, status=None, after=None, limit=50)
        if a["status"] != "resolved"]
    file = await history(db, customer_id, cursor if cursor and ENTRY_ID.match(cursor) else None,
                         25)
    assessments = await list_assessments(db, customer_id, 5)
    bar = charts.exposure_bar(exposure.open_receivables, exposure.open_orders,
                              exposure.held_orders, exposure.effective_limit, exposure.currency)
    utilisation = (exposure.exposure / exposure.effective_limit
                   if exposure.effective_limit > 0 else None)
    return render(request, "customer.html", title=f"{account.name} ({customer_id})",
                  account=account, exposure=exposure, bar=bar, utilisation=utilisation,
                  aging=charts.aging_chart(buckets, account.currency), buckets=buckets,
                  not_due=not_due, behaviour=behaviour, alerts=alerts, file=file,
                  assessments=assessments, cursor=cursor, group=group,
                  securities=held_securities)
