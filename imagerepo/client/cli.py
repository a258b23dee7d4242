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
    p.add_argument("--width", type=int, help="a variant this many pixels wide (the server's size grid)")
    p.add_argument("--height", type=int, help="a variant this many pixels high")
    p.add_argument("--fit", choices=("inside", "cover"), help="inside (default) or cover (crop; needs both sides)")
    p.add_argument("--format", choices=("jpeg", "png", "webp", "avif"), help="the variant's format")
    p.add_argument("--quality", type=int, help="50, 70, 80 or 90 (jpeg, webp, avif)")

    p = command("private", cmd_private, "make one of your images private")
    p.add_argument("id", type=_image_id, metavar="ID")
    p.add_argument("--access-key", help="set this access key (default: keep it, or the server generates one)")

    p = command("public", cmd_public, "make one of your images public")
    p.add_argument("id", type=_image_id, metavar="ID")

    p = command("delete", cmd_delete, "delete one of your images")
    p.add_argument("id", type=_image_id, metavar="ID")
    share.add_commands(command, _image_id)  # share, links, unshare
    return parser


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string, in any command, that takes exactly one value."""
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                found |= _value_options(subparser)
        elif action.option_strings and action.nargs is None:
            found.update(action.option_strings)
    return found


def attach_values(argv: list[str], value_options: set[str]) -> list[str]:
    """`--access-key -Xy3` as `--access-key=-Xy3`: argparse takes a value that starts with '-'
    for an unknown option and fails, yet generated access keys (URL-safe base64) start with
    '-' one time in 64, and a description or password may too. Nothing after `--` changes."""
    out: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg == "--":
            out.append(arg)
            out.extend(rest)
            break
        value = next(rest, None) if arg in value_options else None
        out.append(arg if value is None else f"{arg}={value}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(attach_values(sys.argv[1:] if argv is None else argv, _value_options(parser)))
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
