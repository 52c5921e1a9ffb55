"""Policies: every class's decision parameters; edit one, simulate the change over past
decisions first (POST /v1/policies/{class}/simulate's code), then save it (PUT's code)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import Request, Response

from app import clock
from app.console.forms import Errors, Form, app_error, validate, whole
from app.console.web import action, db_of, need_session, render, router, signer_of
from app.credit.policy import RISK_CLASSES
from app.errors import AppError
from app.policies import service as policies
from app.policies.schemas import PolicyIn, SimulateIn
from app.policies.simulate import Simulation, simulate

POLICY_FIELDS = ("prepay_required", "hold_band", "max_days_past_due", "prepay_days_past_due",
                 "overdue_tolerance", "min_payment_index", "review_grace_days",
                 "alert_utilisation", "alert_payment_index")
WHOLE = ("max_days_past_due", "prepay_days_past_due", "min_payment_index",
         "review_grace_days", "alert_payment_index")
# Where SimulateIn's refusals show: policy.<field> next to <field>; the window next to its own.
SIM_FIELDS = {**{f"policy.{f}": f for f in POLICY_FIELDS}, "from": "from", "to": "to"}
PUT_FIELDS = {**{f: f for f in POLICY_FIELDS}, "reason": "reason"}


@router.get("/policies")
async def policy_list(request: Request) -> Response:
    await need_session(request)
    db = db_of(request)
    rows = [await policies.get_policy(db, rc) for rc in RISK_CLASSES]
    return render(request, "policies.html", title="Policies", rows=rows)


def _values_of(form: Form) -> dict[str, Any]:
    """The form as a PUT body: blanks of optional fields are null (the rule is off)."""
    data: dict[str, Any] = {"prepay_required": form.get("prepay_required") == "true"}
    for name in POLICY_FIELDS[1:]:
        value = form.text(name)
        data[name] = whole(value) if name in WHOLE else value
    for required in ("hold_band", "max_days_past_due", "prepay_days_past_due",
                     "overdue_tolerance", "alert_utilisation", "alert_payment_index"):
        if data[required] is None:
            data[required] = ""  # refused by the model: "must be ..." next to the field
    return data


def _fingerprint(risk_class: str, body: PolicyIn) -> str:
    params = body.model_dump(mode="json", exclude={"reason"})
    return json.dumps({"class": risk_class, **params}, sort_keys=True, default=str)


def _shown(form: Form | None, current: Any) -> dict[str, str]:
    """What the inputs show: the submitted text, else the stored parameters."""
    if form is not None:
        return {name: form.get(name) for name in (*POLICY_FIELDS, "reason", "from", "to")}
    today = clock.today()
    shown = {name: "" if getattr(current, name) is None else str(getattr(current, name))
             for name in POLICY_FIELDS}
    shown["prepay_required"] = "true" if current.prepay_required else ""
    shown.update(reason="", **{"from": (today - dt.timedelta(days=30)).isoformat(),
                               "to": today.isoformat()})
    return shown


async def _edit_page(request: Request, risk_class: str, *, form: Form | None = None,
                     errors: Errors | None = None, status: int = 200,
                     simulation: Simulation | None = None, simulated: str = "",
                     notice: str | None = None) -> Response:
    current = await policies.get_policy(db_of(request), risk_class)
    history = await policies.policy_history(db_of(request), risk_class, 10)
    return render(request, "policy.html", status=status, title=f"Policy {risk_class}",
                  risk_class=risk_class, current=current, shown=_shown(form, current),
                  errors=errors or Errors(), simulation=simulation, simulated=simulated,
                  notice=notice, history=history)


@router.get("/policies/{risk_class}")
async def policy_edit(request: Request, risk_class: str) -> Response:
    await need_session(request)
    policies.known_class(risk_class)
    return await _edit_page(request, risk_class)


@router.post("/policies/{risk_class}")
async def policy_change(request: Request, risk_class: str) -> Response:
    """action=simulate re-decides the window under the form's parameters; action=save puts
    them in force, but only parameters that were simulated exactly as they are now."""
    session, form = await action(request)
    policies.known_class(risk_class)
    errors = Errors()
    data = _values_of(form)
    signer = signer_of(request)
    if form.get("action") == "simulate":
        body = validate(SimulateIn, {"policy": data, "from": form.text("from") or "",
                                     "to": form.text("to") or ""}, errors, SIM_FIELDS)
        if body is None:
            return await _edit_page(request, risk_class, form=form, errors=errors, status=422)
        async with db_of(request).autocommit() as conn:
            result = await simulate(conn, risk_class, policies.params_of(body.policy),
                                    body.from_, body.to)
        token = signer.mac("policy", _fingerprint(risk_class, body.policy))
        return await _edit_page(request, risk_class, form=form, simulation=result,
                                simulated=token)
    put = validate(PolicyIn, {**data, "reason": form.text("reason")}, errors, PUT_FIELDS)
    if put is None:
        return await _edit_page(request, risk_class, form=form, errors=errors, status=422)
    if not signer.check("policy", _fingerprint(risk_class, put), form.get("simulated") or None):
        errors.add("", "Simulate these parameters before saving them: they have not been "
                       "simulated, or they changed since the simulation.")
        return await _edit_page(request, risk_class, form=form, errors=errors, status=422)
    try:
        saved = await policies.put_policy(db_of(request), risk_class, put, session.caller)
    except AppError as exc:
        app_error(exc, errors, PUT_FIELDS)
        return await _edit_page(request, risk_class, form=form, errors=errors,
                                status=exc.status)
    return await _edit_page(request, risk_class,
                            notice=f"Saved the {risk_class} policy (by {saved.updated_by}).")
