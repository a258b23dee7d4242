"""Command-line client for ImageRepo, for people who don't use curl.

    python -m imagerepo.client register alice alice@example.com
    python -m imagerepo.client login alice
    python -m imagerepo.client upload cat.jpg dog.png --description "pets"
    python -m imagerepo.client list --mine
    python -m imagerepo.client download 7            # into ./outputs/

The server is `--server`, else $IMAGEREPO_URL, else http://127.0.0.1:5666. Tokens are kept per
server in $IMAGEREPO_CLIENT_CONFIG (default ~/.config/imagerepo/client.json, mode 0600).
Any failure prints one line on stderr and exits with status 1.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import json
import os
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

try:
    import requests
except ModuleNotFoundError:  # the server alone does not need it
    sys.exit("imagerepo-client needs the 'client' extra: pip install 'imagerepo[client]'")

DEFAULT_SERVER = "http://127.0.0.1:5666"
DEFAULT_OUTPUT_DIR = "outputs"
READ_SIZE = 256 * 1024
# Connect fast or fail; after the body is sent the server may still be hashing a large upload.
TIMEOUT = (10, 600)
# Refresh an access token this close to expiry instead of sending it and failing mid-upload.
EXPIRY_MARGIN_SECONDS = 30


class ClientError(Exception):
    """A failure to report to the user as one line."""


# ---------------------------------------------------------------- token store


def config_path() -> Path:
    explicit = os.environ.get("IMAGEREPO_CLIENT_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "imagerepo" / "client.json"


class TokenStore:
    """Tokens per server URL, in a JSON file only the user can read."""

    def __init__(self, path: Path):
        self.path = path

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"servers": {}}
        except (OSError, ValueError) as err:
            raise ClientError(f"cannot read client config {self.path}: {err}") from None
        if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
            raise ClientError(f"client config {self.path} is not in the expected format")
        return data

    def get(self, server: str) -> dict:
        return dict(self._load()["servers"].get(server) or {})

    def put(self, server: str, entry: dict | None) -> None:
        data = self._load()
        if entry:
            data["servers"][server] = entry
        else:
            data["servers"].pop(server, None)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created 0600 before a byte is written, then renamed over: never readable by others,
        # never half-written.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".client-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with _suppress_oserror():
                os.unlink(tmp)
            raise


class _suppress_oserror:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return exc_type is not None and issubclass(exc_type, OSError)


def _token_expiry(token: str) -> float | None:
    """The `exp` claim, read without verifying (only the server can verify; this only
    decides whether to refresh first)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


# ---------------------------------------------------------------- HTTP


def _error_line(response: requests.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['message']} (HTTP {response.status_code} {error['code']})"
    except (ValueError, KeyError, TypeError):
        text = " ".join(response.text.split())[:200]
        return f"HTTP {response.status_code} {response.reason or ''}".strip() + (f": {text}" if text else "")


class Api:
    def __init__(self, server: str, store: TokenStore):
        self.server = server.rstrip("/")
        self.store = store
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "imagerepo-client/1"

    # --- tokens

    def _tokens(self) -> dict:
        return self.store.get(self.server)

    def _refresh(self) -> str:
        tokens = self._tokens()
        if not tokens.get("refresh_token"):
            raise ClientError("not logged in: run `login` first")
        response = self._send("POST", "/token/refresh", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
        if response.status_code == 401:
            self.store.put(self.server, None)
            raise ClientError(f"session expired, log in again ({_error_line(response)})")
        self._check(response)
        tokens["access_token"] = response.json()["access_token"]
        self.store.put(self.server, tokens)
        return tokens["access_token"]

    def _access_token(self) -> str:
        tokens = self._tokens()
        access = tokens.get("access_token")
        if not access:
            raise ClientError("not logged in: run `login` first")
        expiry = _token_expiry(access)
        if expiry is not None and expiry - time.time() < EXPIRY_MARGIN_SECONDS:
            return self._refresh()
        return access

    # --- requests

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self.http.request(method, self.server + path, timeout=TIMEOUT, **kwargs)
        except requests.ConnectionError as err:
            raise ClientError(f"cannot reach the server at {self.server}: {_reason(err)}") from None
        except requests.Timeout:
            raise ClientError(f"the server at {self.server} did not answer in time") from None
        except requests.RequestException as err:
            raise ClientError(f"request to {self.server} failed: {err}") from None

    @staticmethod
    def _check(response: requests.Response) -> requests.Response:
        if response.status_code >= 400:
            raise ClientError(_error_line(response))
        return response

    def call(
        self,
        method: str,
        path: str,
        *,
        auth: bool | None = True,
        headers: dict | None = None,
        body: Callable[[], Any] | None = None,
        **kwargs,
    ) -> requests.Response:
        """One request, answered 2xx/3xx or raised as ClientError.

        auth=True needs a login; auth=None sends the token if there is one (public reads work
        logged out). A 401 on an access token is refreshed and retried once; `body` is a
        factory so a streamed upload can be sent again from the start.
        """
        headers = dict(headers or {})
        have_login = bool(self._tokens().get("access_token"))
        use_token = auth is True or (auth is None and have_login)
        if use_token:
            headers["Authorization"] = f"Bearer {self._access_token()}"
        try:
            response = self._send(method, path, headers=headers, data=body() if body else None, **kwargs)
        except ClientError:
            if not (use_token and body):
                raise
            # The server refuses a dead token before reading an upload's body and may close the
            # connection while we are still sending it: ask whether the token was the problem,
            # on a fresh connection (the pooled one is gone).
            self.http.close()
            probe = self._send("GET", "/me", headers=headers)
            probe.close()
            if probe.status_code != 401:
                raise
            headers["Authorization"] = f"Bearer {self._refresh()}"
            return self._check(self._send(method, path, headers=headers, data=body(), **kwargs))
        if response.status_code == 401 and use_token:
            response.close()
            if body:
                self.http.close()  # the server drops a connection whose upload body it did not read
            headers["Authorization"] = f"Bearer {self._refresh()}"
            response = self._send(method, path, headers=headers, data=body() if body else None, **kwargs)
        return self._check(response)

    def json(self, method: str, path: str, **kwargs) -> Any:
        response = self.call(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"the server answered {method} {path} with something that is not JSON") from None


def _reason(err: Exception) -> str:
    # requests nests the interesting part (refused, DNS) a few exceptions deep.
    text = str(err)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "Temporary failure in name resolution",
        "Connection reset",
        "Broken pipe",
        "timed out",
    ):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200] if text else type(err).__name__


def _image_path(image_id: int, suffix: str = "") -> str:
    return f"/images/{int(image_id)}{suffix}"


def _key_headers(access_key: str | None) -> dict:
    # A header, not ?accesskey=, so the key stays out of access logs and shell history of proxies.
    return {"X-Access-Key": access_key} if access_key else {}


# ---------------------------------------------------------------- progress


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """Bytes and percent on stderr: redrawn in place on a terminal, one line at the end otherwise."""

    def __init__(self, label: str, total: int | None, enabled: bool):
        self.label = label
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.live = enabled and sys.stderr.isatty()
        self._last_draw = 0.0

    def _line(self) -> str:
        if self.total:
            pct = 100 * self.done / self.total
            return f"{self.label}: {_human_bytes(self.done)} / {_human_bytes(self.total)} ({pct:.0f}%)"
        return f"{self.label}: {_human_bytes(self.done)}"

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.live and now - self._last_draw > 0.1:
            self._last_draw = now
            sys.stderr.write("\r" + self._line() + "\x1b[K")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write(("\r" if self.live else "") + self._line() + ("\x1b[K" if self.live else "") + "\n")
            sys.stderr.flush()

    def reset(self) -> None:
        self.done = 0


class ProgressReader:
    """A file object for requests: a known length (so it sends Content-Length, not chunked),
    read a block at a time, each block counted on the progress line."""

    def __init__(self, path: Path, progress: Progress):
        self._file = open(path, "rb")
        self._size = os.fstat(self._file.fileno()).st_size
        self._progress = progress
        progress.reset()

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        block = self._file.read(READ_SIZE if size is None or size < 0 else size)
        self._progress.advance(len(block))
        if not block:
            self._file.close()
        return block

    def __iter__(self):
        while block := self.read(READ_SIZE):
            yield block

    def close(self) -> None:
        self._file.close()


# ---------------------------------------------------------------- output


def _emit(args, data: Any, human: Callable[[Any], str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=False))
    else:
        text = human(data)
        if text:
            print(text)


_INFO_FIELDS = (
    "id",
    "name",
    "creator",
    "description",
    "contentType",
    "size",
    "width",
    "height",
    "isPrivate",
    "locked",
    "accessKey",
    "sha256",
    "createdAt",
    "updatedAt",
    "url",
)


def _describe_image(image: dict) -> str:
    rows = []
    for key in _INFO_FIELDS + tuple(k for k in image if k not in _INFO_FIELDS):
        if key not in image or image[key] is None:
            continue
        value = image[key]
        if key == "size":
            value = f"{value} bytes ({_human_bytes(value)})"
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        rows.append((key, value))
    width = max(len(k) for k, _ in rows) if rows else 0
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _image_table(images: list[dict]) -> str:
    if not images:
        return "no images"
    header = ("ID", "NAME", "SIZE", "TYPE", "PRIVATE", "CREATOR", "CREATED")
    rows = [header] + [
        (
            str(i.get("id", "")),
            _clip(str(i.get("name", "")), 40),
            _human_bytes(i.get("size") or 0),
            str(i.get("contentType") or ""),
            "yes" if i.get("isPrivate") else "no",
            str(i.get("creator", "")),
            str(i.get("createdAt") or "")[:19].replace("T", " "),
        )
        for i in images
    ]
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------- file names


def safe_filename(name: str | None, fallback: str) -> str:
    """A plain file name for a server-supplied name: no directories, no parent references,
    no control characters, nothing hidden; `fallback` when nothing usable is left."""
    text = unicodedata.normalize("NFC", str(name or ""))
    # Both separators: a name made on Windows, or crafted, must not become a path here.
    text = text.replace("\\", "/").split("/")[-1]
    text = "".join(ch for ch in text if ch.isprintable() and ch not in '<>:"|?*')
    text = text.strip().lstrip(".").strip()
    if not text or text in (".", ".."):
        return fallback
    encoded = text.encode("utf-8")
    if len(encoded) > 200:  # most file systems stop at 255 bytes; leave room for the temp suffix
        stem, dot, ext = text.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        stem = (stem if dot else text).encode("utf-8")[: 200 - len(ext) - 1].decode("utf-8", "ignore")
        text = f"{stem}.{ext}" if ext else stem
    return text


def _target_path(out_dir: Path, name: str | None, image_id: int) -> Path:
    filename = safe_filename(name, f"image-{image_id}")
    target = (out_dir / filename).resolve()
    if target.parent != out_dir.resolve():  # belt and braces: the name above cannot escape
        raise ClientError(f"refusing to write outside {out_dir}: {name!r}")
    return target


def _etag_digest(response: requests.Response) -> str | None:
    etag = response.headers.get("ETag")
    if not etag:
        return None
    etag = etag.removeprefix("W/").strip('"')
    return etag.lower() if len(etag) == 64 else None


# ---------------------------------------------------------------- commands


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
    _emit(args, user, lambda u: f"registered {u['name']} <{u['email']}> (id {u['id']}); now run `login {u['name']}`")


def cmd_login(api: Api, args) -> None:
    password = _read_password(args, "Password: ")
    tokens = api.json("POST", "/login", auth=False, json={"username": args.username, "password": password})
    api.store.put(
        api.server,
        {"username": args.username, "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]},
    )
    _emit(
        args,
        {"server": api.server, "username": args.username, "config": str(api.store.path)},
        lambda d: f"logged in to {d['server']} as {d['username']}",
    )


def cmd_logout(api: Api, args) -> None:
    tokens = api.store.get(api.server)
    if not tokens:
        _emit(args, {"loggedOut": False}, lambda _: f"not logged in to {api.server}")
        return
    problems = []
    # Revoke both tokens on the server, so a copy of the config file is worthless too.
    for kind in ("access_token", "refresh_token"):
        if not tokens.get(kind):
            continue
        try:
            response = api._send("POST", "/logout", headers={"Authorization": f"Bearer {tokens[kind]}"})
            if response.status_code >= 400 and response.status_code != 401:  # 401: already dead
                problems.append(_error_line(response))
        except ClientError as err:
            problems.append(str(err))
    api.store.put(api.server, None)
    if problems:
        print(f"warning: tokens removed locally, but the server did not confirm: {problems[0]}", file=sys.stderr)
    _emit(args, {"loggedOut": True}, lambda _: f"logged out of {api.server}")


def cmd_whoami(api: Api, args) -> None:
    user = api.json("GET", "/me")
    _emit(args, user, lambda u: f"{u['name']} <{u['email']}> (id {u['id']}) on {api.server}")


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
                body=lambda: ProgressReader(path, progress),
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
                f"uploaded {path} as image {image['id']} ({_human_bytes(image.get('size') or 0)}"
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
    _emit(
        args,
        result,
        lambda r: _image_table(r["images"]) + (f"\nmore: use --all, or --limit" if r["nextCursor"] else ""),
    )


def cmd_info(api: Api, args) -> None:
    image = api.json("GET", _image_path(args.id), auth=None, headers=_key_headers(args.access_key))
    _emit(args, image, _describe_image)


def cmd_download(api: Api, args) -> None:
    out_dir = Path(args.out or DEFAULT_OUTPUT_DIR)
    headers = _key_headers(args.access_key)
    image = api.json("GET", _image_path(args.id), auth=None, headers=headers)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = _target_path(out_dir, image.get("name"), args.id)

    response = api.call("GET", _image_path(args.id, "/content"), auth=None, headers=headers, stream=True)
    expected = (image.get("sha256") or "").lower() or None
    etag = _etag_digest(response)
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
        with _suppress_oserror():
            os.unlink(tmp)
        raise ClientError(f"download of image {args.id} broke off: {_reason(err)}") from None
    except BaseException:
        with _suppress_oserror():
            os.unlink(tmp)
        raise
    progress.finish()
    _emit(
        args,
        {"id": args.id, "path": str(target), "size": progress.done, "sha256": actual},
        lambda d: f"saved image {d['id']} to {d['path']} ({_human_bytes(d['size'])}, sha256 verified)",
    )


def cmd_private(api: Api, args) -> None:
    body: dict[str, Any] = {"isPrivate": True}
    if args.access_key:
        body["accessKey"] = args.access_key
    image = api.json("PATCH", _image_path(args.id), json=body)
    _emit(args, image, lambda i: f"image {i['id']} is private; access key: {i.get('accessKey') or '(hidden)'}")


def cmd_public(api: Api, args) -> None:
    image = api.json("PATCH", _image_path(args.id), json={"isPrivate": False})
    _emit(args, image, lambda i: f"image {i['id']} is public")


def cmd_delete(api: Api, args) -> None:
    api.call("DELETE", _image_path(args.id))
    _emit(args, {"id": args.id, "deleted": True}, lambda d: f"deleted image {d['id']}")


# ---------------------------------------------------------------- arguments


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


if __name__ == "__main__":
    raise SystemExit(main())
