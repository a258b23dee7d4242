"""The commands: one function per subcommand, each making its requests through `Api` and
printing through `emit`. Any failure is raised as ClientError (one line for the user)."""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

from .files import DEFAULT_OUTPUT_DIR, READ_SIZE, ProgressReader, etag_digest, target_path
from .output import Progress, describe_image, emit, human_bytes, image_table
from .session import Api, ClientError, error_line, reason, suppress_oserror


def image_path(image_id: int, suffix: str = "") -> str:
    return f"/images/{int(image_id)}{suffix}"


def key_headers(access_key: str | None) -> dict:
    # A header, not ?accesskey=, so the key stays out of access logs and shell history of proxies.
    return {"X-Access-Key": access_key} if access_key else {}


def _read_password(args, prompt: str, confirm: bool = False) -> str:
    if args.password is not None:
        return args.password
    if sys.stdin.isatty():
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat password: ") != password:
            raise ClientError("the passwords do not match")
        return password
    # Not a terminal: the first line of stdin, so scripts can pipe a password in
    # without it showing up in `ps`.
    line = sys.stdin.readline()
    if not line:
        raise ClientError("no password: give --password or pipe it on stdin")
    return line.rstrip("\r\n")


def cmd_register(api: Api, args) -> None:
    password = _read_password(args, "Password: ", confirm=True)
    user = api.json(
        "POST", "/register", auth=False, json={"name": args.name, "email": args.email, "password": password}
    )
    emit(args, user, lambda u: f"registered {u['name']} <{u['email']}> (id {u['id']}); now run `login {u['name']}`")


def cmd_login(api: Api, args) -> None:
    password = _read_password(args, "Password: ")
    tokens = api.json("POST", "/login", auth=False, json={"username": args.username, "password": password})
    api.store.put(
        api.server,
        {"username": args.username, "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]},
    )
    emit(
        args,
        {"server": api.server, "username": args.username, "config": str(api.store.path)},
        lambda d: f"logged in to {d['server']} as {d['username']}",
    )


def cmd_logout(api: Api, args) -> None:
    tokens = api.store.get(api.server)
    if not tokens:
        emit(args, {"loggedOut": False}, lambda _: f"not logged in to {api.server}")
        return
    problems = []
    # Revoke both tokens on the server, so a copy of the config file is worthless too.
    for kind in ("access_token", "refresh_token"):
        if not tokens.get(kind):
            continue
        try:
            response = api._send("POST", "/logout", headers={"Authorization": f"Bearer {tokens[kind]}"})
            if response.status_code >= 400 and response.status_code != 401:  # 401: already dead
                problems.append(error_line(response))
        except ClientError as err:
            problems.append(str(err))
    api.store.put(api.server, None)
    if problems:
        print(f"warning: tokens removed locally, but the server did not confirm: {problems[0]}", file=sys.stderr)
    emit(args, {"loggedOut": True}, lambda _: f"logged out of {api.server}")


def cmd_whoami(api: Api, args) -> None:
    user = api.json("GET", "/me")
    emit(args, user, lambda u: f"{u['name']} <{u['email']}> (id {u['id']}) on {api.server}")


def cmd_upload(api: Api, args) -> int:
    paths = [Path(p) for p in args.files]
    for path in paths:
        if not path.is_file():
            raise ClientError(f"{path}: not a file")
    uploaded, failed = [], 0
    for path in paths:
        params = {"name": path.name, "isPrivate": "1" if args.private else "0"}
        if args.description is not None:
            params["description"] = args.description
        if args.access_key:
            params["accessKey"] = args.access_key
        progress = Progress(path.name, path.stat().st_size, enabled=not args.quiet)
        try:
            image = api.json(
                "POST",
                "/images/raw",
                params=params,
                headers={"Content-Type": "application/octet-stream"},
                body=functools.partial(ProgressReader, path, progress),
            )
        except ClientError as err:
            # One bad file (not an image, too large) should not stop the rest of the batch.
            print(f"error: {path}: {err}", file=sys.stderr)
            failed += 1
            continue
        progress.finish()
        uploaded.append(image)
        if not args.json:
            extra = f", access key {image['accessKey']}" if image.get("isPrivate") and image.get("accessKey") else ""
            print(
                f"uploaded {path} as image {image['id']} ({human_bytes(image.get('size') or 0)}"
                f"{', private' if image.get('isPrivate') else ''}{extra})"
            )
    if args.json:
        print(json.dumps({"images": uploaded}, indent=2))
    return 1 if failed else 0


def cmd_list(api: Api, args) -> None:
    params: dict[str, Any] = {}
    if args.limit is not None:
        params["limit"] = args.limit
    if args.mine:
        params["mine"] = 1
    images: list[dict] = []
    cursor = None
    while True:
        page = api.json("GET", "/images", auth=None, params={**params, **({"cursor": cursor} if cursor else {})})
        images.extend(page.get("images") or [])
        cursor = page.get("nextCursor")
        if not args.all or not cursor:
            break
    result = {"images": images, "nextCursor": None if args.all else cursor}
    emit(
        args,
        result,
        lambda r: image_table(r["images"]) + ("\nmore: use --all, or --limit" if r["nextCursor"] else ""),
    )


def cmd_info(api: Api, args) -> None:
    image = api.json("GET", image_path(args.id), auth=None, headers=key_headers(args.access_key))
    emit(args, image, describe_image)


def cmd_download(api: Api, args) -> None:
    out_dir = Path(args.out or DEFAULT_OUTPUT_DIR)
    headers = key_headers(args.access_key)
    image = api.json("GET", image_path(args.id), auth=None, headers=headers)
    out_dir.mkdir(parents=True, exist_ok=True)
    variant = variant_params(args)
    response = api.call("GET", image_path(args.id, "/content"), auth=None, headers=headers, params=variant, stream=True)
    name = image.get("name")
    if variant:  # a variant: its own bytes (the ETag is their digest) and its own extension
        name = variant_name(name, variant, response.headers.get("Content-Type", ""))
    target = target_path(out_dir, name, args.id)
    expected = None if variant else (image.get("sha256") or "").lower() or None
    etag = etag_digest(response)
    if expected and etag and etag != expected:
        response.close()
        raise ClientError(f"image {args.id} changed while downloading (ETag {etag} != sha256 {expected})")
    total = int(response.headers.get("Content-Length") or 0) or image.get("size")
    progress = Progress(target.name, total, enabled=not args.quiet)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".download-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f, response:
            for block in response.iter_content(READ_SIZE):
                f.write(block)
                digest.update(block)
                progress.advance(len(block))
            f.flush()
            os.fsync(f.fileno())
        actual = digest.hexdigest()
        want = expected or etag
        if want and actual != want:
            raise ClientError(f"download of image {args.id} is corrupt: sha256 {actual}, expected {want}")
        # mkstemp makes 0600; a downloaded image gets the mode any new file of the user gets.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except requests.RequestException as err:
        with suppress_oserror():
            os.unlink(tmp)
        raise ClientError(f"download of image {args.id} broke off: {reason(err)}") from None
    except BaseException:
        with suppress_oserror():
            os.unlink(tmp)
        raise
    progress.finish()
    emit(
        args,
        {"id": args.id, "path": str(target), "size": progress.done, "sha256": actual},
        lambda d: f"saved image {d['id']} to {d['path']} ({human_bytes(d['size'])}, sha256 verified)",
    )


_VARIANT_FLAGS = ("width", "height", "fit", "format", "quality")
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/avif": "avif"}


def variant_params(args) -> dict:
    """The content route's transform parameters the flags ask for (the server checks them)."""
    return {flag: str(value) for flag in _VARIANT_FLAGS if (value := getattr(args, flag, None)) is not None}


def variant_name(name: str | None, variant: dict, content_type: str) -> str | None:
    """`holiday.jpg` asked as width 200 in webp saves as `holiday-w200.webp`: the variant's own
    extension, and a tag so it never overwrites the original or another variant."""
    extension = _EXTENSIONS.get(content_type.split(";")[0].strip().lower())
    if not name or not extension:
        return name
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    tags = [f"{flag[0]}{variant[flag]}" for flag in ("width", "height", "quality") if flag in variant]
    tags += [variant["fit"]] if "fit" in variant else []
    return f"{stem}{'-' + '-'.join(tags) if tags else ''}.{extension}"


def cmd_private(api: Api, args) -> None:
    body: dict[str, Any] = {"isPrivate": True}
    if args.access_key:
        body["accessKey"] = args.access_key
    image = api.json("PATCH", image_path(args.id), json=body)
    emit(args, image, lambda i: f"image {i['id']} is private; access key: {i.get('accessKey') or '(hidden)'}")


def cmd_public(api: Api, args) -> None:
    image = api.json("PATCH", image_path(args.id), json={"isPrivate": False})
    emit(args, image, lambda i: f"image {i['id']} is public")


def cmd_delete(api: Api, args) -> None:
    api.call("DELETE", image_path(args.id))
    emit(args, {"id": args.id, "deleted": True}, lambda d: f"deleted image {d['id']}")
