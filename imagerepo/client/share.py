"""Share-link commands: `share ID --expires SECONDS [--height H] [--format F]` prints the link's
full URL, `links ID` lists an image's live links, `unshare ID LINK` revokes one."""

from __future__ import annotations

import argparse

from .output import emit
from .session import Api

FORMATS = ("jpeg", "png", "webp", "avif")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a positive number, got {text!r}")
    return value


def _full(api: Api, link: dict) -> dict:
    """The link with its URL made absolute (the server answers a path)."""
    return {**link, "url": api.server.rstrip("/") + link["url"]} if link.get("url") else link


def _line(link: dict) -> str:
    variant = link.get("variant") or {}
    what = ", ".join(f"{k} {v}" for k, v in variant.items() if v is not None) or "original"
    return f"{link['id']}\t{link['url']}\t{what}\texpires {link['expiresAt']}"


def cmd_share(api: Api, args) -> None:
    body: dict = {"expiresIn": args.expires}
    if args.height is not None or args.format is not None:
        body["variant"] = {k: v for k, v in (("height", args.height), ("format", args.format)) if v is not None}
    link = _full(api, api.json("POST", f"/images/{int(args.id)}/links", json=body))
    emit(args, link, lambda x: x["url"])


def cmd_links(api: Api, args) -> None:
    links = [_full(api, x) for x in api.json("GET", f"/images/{int(args.id)}/links")["links"]]
    emit(args, {"links": links}, lambda d: "\n".join(_line(x) for x in d["links"]) or "no live links")


def cmd_unshare(api: Api, args) -> None:
    api.call("DELETE", f"/images/{int(args.id)}/links/{int(args.link)}")
    emit(args, {"id": args.link, "revoked": True}, lambda d: f"revoked link {d['id']}")


def add_commands(command, image_id) -> None:
    """Register the commands through the main parser's `command(name, func, help)` helper."""
    p = command("share", cmd_share, "make an expiring link anyone can open; prints its URL")
    p.add_argument("id", type=image_id, metavar="ID")
    p.add_argument("--expires", type=_positive, required=True, metavar="SECONDS", help="lifetime (server: 300-30000)")
    p.add_argument("--height", type=_positive, help="link to the thumbnail of this height (one your plan gives)")
    p.add_argument("--format", choices=FORMATS, help="link to the image converted to this format")
    p = command("links", cmd_links, "list an image's live share links")
    p.add_argument("id", type=image_id, metavar="ID")
    p = command("unshare", cmd_unshare, "revoke a share link")
    p.add_argument("id", type=image_id, metavar="ID")
    p.add_argument("link", type=_positive, metavar="LINK")
