"""The plan routes: administrators list, create, change and assign plans (/admin/plans,
/admin/users/<id>/plan). /me shows the caller's own plan and usage (imagerepo.auth)."""

from __future__ import annotations

from flask import Blueprint

from ..admin import require_admin
from ..context import services
from ..validation import api
from . import service
from .schemas import AccountPlanOut, AssignIn, PlanIn, PlanOut, PlanPatch, PlansOut

bp = Blueprint("plans", __name__, url_prefix="/admin")


@bp.get("/plans")
@api(response=PlansOut, responses={403: "Not an administrator"}, summary="Every plan (admins only)")
def list_route():
    require_admin()
    return PlansOut(plans=service.list_plans(services().db))


@bp.post("/plans")
@api(
    body=PlanIn,
    response=PlanOut,
    status=201,
    responses={400: "Malformed JSON", 403: "Not an administrator", 409: "A plan of that name exists", 422: ""},
    summary="Create a plan (admins only)",
)
def create_route(body: PlanIn):
    require_admin()
    return service.create_plan(services().db, body)


@bp.patch("/plans/<name>")
@api(
    body=PlanPatch,
    response=PlanOut,
    responses={400: "Malformed JSON", 403: "Not an administrator", 404: "No such plan", 422: ""},
    summary="Change a plan (admins only); share links it no longer gives end at once",
)
def change_route(name: str, body: PlanPatch):
    require_admin()
    return service.change_plan(services().db, name, body)


@bp.get("/users/<int:user_id>/plan")
@api(
    response=AccountPlanOut,
    responses={403: "Not an administrator", 404: "No such user"},
    summary="An account's plan and usage (admins only)",
)
def user_plan_route(user_id: int):
    from ..accounts import UserNotFound

    require_admin()
    row = service.account_plan(services().db, user_id)
    if row is None:
        raise UserNotFound()
    return service.account_plan_out(user_id, row)


@bp.put("/users/<int:user_id>/plan")
@api(
    body=AssignIn,
    response=AccountPlanOut,
    responses={400: "Malformed JSON", 403: "Not an administrator", 404: "No such user or plan", 422: ""},
    summary="Put an account on a plan (admins only); share links the new plan does not give end at once",
)
def assign_route(user_id: int, body: AssignIn):
    require_admin()
    return service.assign_plan(services().db, user_id, body.plan)
