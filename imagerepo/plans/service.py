"""Administering plans: list, create, change, assign; an account's plan and usage. Changing or
assigning a plan ends the share links it no longer gives, in the same transaction."""

from __future__ import annotations

from ..accounts import UserNotFound
from ..config import ConfigError
from . import link_queries, queries
from .errors import PlanNameTaken, PlanNotFound
from .schemas import AccountPlanOut, PlanIn, PlanOut, PlanPatch, QuotaUse, UsageOut

# API field -> column
_FIELDS = {
    "thumbnailHeights": "thumbnail_heights",
    "originalViaLinks": "original_via_links",
    "expiringLinks": "expiring_links",
    "maxStoredBytes": "max_stored_bytes",
    "maxImages": "max_images",
    "maxUploadBytes": "max_upload_bytes",
}


def install(db, default_plan: str) -> None:
    """At start: the shipped plans exist, and new accounts get `default_plan`."""
    with db.transaction() as conn:
        if not queries.install(conn, default_plan):
            raise ConfigError(f"IMAGEREPO_DEFAULT_PLAN names no plan: {default_plan!r}")


def plan_out(row) -> PlanOut:
    return PlanOut(
        id=row["id"],
        name=row["name"],
        createdAt=row["created_at"],
        updatedAt=row["updated_at"],
        **{api: row[column] for api, column in _FIELDS.items()},
    )


def list_plans(db) -> list[PlanOut]:
    with db.read() as conn:
        return [plan_out(r) for r in queries.all_plans(conn)]


def create_plan(db, body: PlanIn) -> PlanOut:
    fields = {column: getattr(body, api) for api, column in _FIELDS.items()}
    with db.transaction() as conn:
        if queries.insert_plan(conn, body.name, fields) is None:
            raise PlanNameTaken(body.name)
        return plan_out(queries.plan_by_name(conn, body.name))


def change_plan(db, name: str, changes: PlanPatch) -> PlanOut:
    """Change the fields sent; the links the plan no longer gives end at once."""
    with db.transaction() as conn:
        row = queries.plan_by_name(conn, name, lock=True)
        if row is None:
            raise PlanNotFound(name)
        fields = {column: row[column] for column in _FIELDS.values()}
        for api in changes.model_fields_set:
            value = getattr(changes, api)
            fields[_FIELDS[api]] = sorted(set(value)) if api == "thumbnailHeights" else value
        queries.update_plan(conn, row["id"], fields)
        link_queries.end_links_not_allowed(conn, plan_id=row["id"])
        return plan_out(queries.plan_by_name(conn, name))


def assign_plan(db, user_id: int, name: str) -> AccountPlanOut:
    with db.transaction() as conn:
        plan = queries.plan_by_name(conn, name)
        if plan is None:
            raise PlanNotFound(name)
        if not queries.assign_plan(conn, user_id, plan["id"]):
            raise UserNotFound()
        link_queries.end_links_not_allowed(conn, user_id=user_id)
        return account_plan_out(user_id, queries.user_plan(conn, user_id))


def account_plan_out(user_id: int, row) -> AccountPlanOut:
    return AccountPlanOut(userId=user_id, plan=plan_out(row), usage=usage_out(row))


def usage_out(row) -> UsageOut:
    return UsageOut(
        storedBytes=QuotaUse(used=row["used_bytes"], limit=row["max_stored_bytes"]),
        images=QuotaUse(used=row["used_images"], limit=row["max_images"]),
        uploadBytes=QuotaUse(used=0, limit=row["max_upload_bytes"]),
    )


def account_plan(db, user_id: int):
    """The account's plan row with its usage, or None."""
    with db.read() as conn:
        return queries.user_plan(conn, user_id)
