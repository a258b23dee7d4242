"""`python -m imagerepo plan …`: list, create, change and assign plans, recount usage, prune
expired share links. Registered by imagerepo.cli (which is at its size limit)."""

from __future__ import annotations

import argparse
import sys

import pydantic

from ..accounts import UserNotFound
from . import link_queries, queries, service
from .errors import PlanNameTaken, PlanNotFound
from .schemas import PlanIn, PlanPatch

_QUOTAS = {"max_bytes": "maxStoredBytes", "max_images": "maxImages", "max_upload": "maxUploadBytes"}


def _quota(text: str) -> int | None:
    """A whole number, or none/unlimited."""
    if text.lower() in ("none", "unlimited"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number or 'none', not {text!r}") from None


def _heights(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated pixel heights, not {text!r}") from None


def _changes(args) -> dict:
    """The API fields the options given set."""
    fields: dict = {}
    if args.heights is not None:
        fields["thumbnailHeights"] = args.heights
    if args.original_links is not None:
        fields["originalViaLinks"] = args.original_links
    if args.expiring_links is not None:
        fields["expiringLinks"] = args.expiring_links
    for option, api in _QUOTAS.items():
        if hasattr(args, option):  # set only when given (default SUPPRESS)
            fields[api] = getattr(args, option)
    return fields


def _show(plan) -> str:
    def quota(value):
        return "unlimited" if value is None else str(value)

    return (
        f"{plan.id}\t{plan.name}\theights={','.join(map(str, plan.thumbnailHeights)) or '-'}"
        f"\toriginal={'yes' if plan.originalViaLinks else 'no'}\texpiring-links={'yes' if plan.expiringLinks else 'no'}"
        f"\tmax-bytes={quota(plan.maxStoredBytes)}\tmax-images={quota(plan.maxImages)}"
        f"\tmax-upload={quota(plan.maxUploadBytes)}"
    )


def cmd_plan(args, config, database) -> int:
    db = database(config)
    try:
        if args.action == "list":
            for plan in service.list_plans(db):
                print(_show(plan))
        elif args.action == "create":
            print(_show(service.create_plan(db, PlanIn(name=args.name, **_changes(args)))))
        elif args.action == "change":
            print(_show(service.change_plan(db, args.name, PlanPatch(**_changes(args)))))
        elif args.action == "assign":
            with db.read() as conn:
                row = conn.execute(
                    "SELECT id FROM users WHERE name_key = user_name_key(%s) OR id::text = %s ORDER BY id LIMIT 1",
                    (args.user, args.user),
                ).fetchone()
            if row is None:
                raise UserNotFound()
            result = service.assign_plan(db, row["id"], args.plan)
            print(f"user {result.userId} is on {result.plan.name}")
        elif args.action == "recount":
            with db.transaction() as conn:
                print(f"usage corrected for {queries.recount(conn)} account(s)")
        elif args.action == "prune-links":
            with db.transaction() as conn:
                print(f"{link_queries.prune(conn)} expired or revoked link(s) deleted")
    except (PlanNameTaken, PlanNotFound, UserNotFound) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except pydantic.ValidationError as err:
        print(f"error: {err.errors()[0]['msg']} ({'.'.join(map(str, err.errors()[0]['loc']))})", file=sys.stderr)
        return 1
    finally:
        db.close()
    return 0


def add_commands(sub, database) -> None:
    """Register `plan` on the main parser's subcommands; `database(config)` opens the database."""
    parser = sub.add_parser("plan", help="plans and quotas: list, create, change, assign, recount, prune-links")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every plan")
    for name in ("create", "change"):
        p = actions.add_parser(
            name, help=f"{name} a plan (only the options given {'are set' if name == 'create' else 'change'})"
        )
        p.add_argument("name")
        p.add_argument("--heights", type=_heights, help="thumbnail heights, e.g. 200,400 ('' for none)")
        p.add_argument("--original-links", action=argparse.BooleanOptionalAction, default=None)
        p.add_argument("--expiring-links", action=argparse.BooleanOptionalAction, default=None)
        for option in _QUOTAS:
            p.add_argument("--" + option.replace("_", "-"), type=_quota, default=argparse.SUPPRESS, help="or 'none'")
    p = actions.add_parser("assign", help="put an account (name or id) on a plan")
    p.add_argument("user")
    p.add_argument("plan")
    actions.add_parser("recount", help="recompute every account's usage from its images")
    actions.add_parser("prune-links", help="delete expired and revoked share links now")
    parser.set_defaults(func=lambda args, config: cmd_plan(args, config, database))
