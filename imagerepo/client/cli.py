"""`python -m imagerepo.client` / `imagerepo-client`: the arguments, and running one command."""

from __future__ import annotations

import argparse
import os
import sys

from . import share
from .commands import (
    cmd_delete,
    cmd_download,
    cmd_info,
    cmd_list,
    cmd_login,
    cmd_logout,
    cmd_private,
    cmd_public,
    cmd_register,
    cmd_upload,
    cmd_whoami,
)
from .files import DEFAULT_OUTPUT_DIR
from .session import Api, ClientError, TokenStore, config_path

DEFAULT_SERVER = "http://127.0.0.1:5666"


def _image_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an image id is a number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"an image id is a positive number, got {text!r}")
    return value


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--limit takes a number, got {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("--limit is between 1 and 100")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server", default=argparse.SUPPRESS, help=f"server URL (default: $IMAGEREPO_URL or {DEFAULT_SERVER})"
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print machine-readable JSON")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress output")

    parser = argparse.ArgumentParser(
        prog="python -m imagerepo.client", parents=[common], description="Command-line client for ImageRepo."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, help_text):
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = command("register", cmd_register, "create an account")
    p.add_argument("name")
    p.add_argument("email")
    p.add_argument("--password", help="(default: asked on the terminal, or read from stdin)")

    p = command("login", cmd_login, "log in and keep the tokens in the client config file")
    p.add_argument("username", metavar="NAME_OR_EMAIL")
    p.add_argument("--password", help="(default: asked on the terminal, or read from stdin)")

    command("logout", cmd_logout, "revoke the stored tokens and forget them")
    command("whoami", cmd_whoami, "show the account you are logged in as")

    p = command("upload", cmd_upload, "upload one or more image files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--description", "-d")
    p.add_argument("--private", action="store_true", help="only you (and holders of the access key) see it")
    p.add_argument("--access-key", help="access key for a private image (default: the server generates one)")

    p = command("list", cmd_list, "list your images and public ones, newest first")
    p.add_argument("--mine", action="store_true", help="only your own images")
    p.add_argument("--limit", type=_limit, help="images per page (1-100)")
    p.add_argument("--all", action="store_true", help="follow every page")

    p = command("info", cmd_info, "show an image's metadata")
    p.add_argument("id", type=_image_id, metavar="ID")
    p.add_argument("--access-key", help="key of someone else's private image")

    p = command("download", cmd_download, f"save an image's bytes (into ./{DEFAULT_OUTPUT_DIR}/ by default)")
    p.add_argument("id", type=_image_id, metavar="ID")
    p.add_argument("--out", metavar="DIR", help=f"directory to save into (default: {DEFAULT_OUTPUT_DIR})")
    p.add_argument("--access-key", help="key of someone else's private image")

    p = command("private", cmd_private, "make one of your images private")
    p.add_argument("id", type=_image_id, metavar="ID")
    p.add_argument("--access-key", help="set this access key (default: keep it, or the server generates one)")

    p = command("public", cmd_public, "make one of your images public")
    p.add_argument("id", type=_image_id, metavar="ID")

    p = command("delete", cmd_delete, "delete one of your images")
    p.add_argument("id", type=_image_id, metavar="ID")
    share.add_commands(command, _image_id)  # share, links, unshare
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    args.quiet = getattr(args, "quiet", False)
    server = getattr(args, "server", None) or os.environ.get("IMAGEREPO_URL") or DEFAULT_SERVER
    if not server.startswith(("http://", "https://")):
        print(f"error: the server URL must start with http:// or https://, got {server!r}", file=sys.stderr)
        return 1
    api = Api(server, TokenStore(config_path()))
    try:
        status = args.func(api, args)
    except ClientError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except OSError as err:
        print(f"error: {err.strerror or err}{f': {err.filename}' if err.filename else ''}", file=sys.stderr)
        return 1
    return status or 0
