"""The client's side of the conversation: the server's address and tokens (kept per server in a
file only the user can read), requests with one refresh-and-retry on an expired token, and the
server's JSON errors turned into one line for the user."""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

# Connect fast or fail; after the body is sent the server may still be hashing a large upload.
TIMEOUT = (10, 600)
# Refresh an access token this close to expiry instead of sending it and failing mid-upload.
EXPIRY_MARGIN_SECONDS = 30


class ClientError(Exception):
    """A failure to report to the user as one line."""


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
            with suppress_oserror():
                os.unlink(tmp)
            raise


class suppress_oserror:
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


def error_line(response: requests.Response) -> str:
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
            raise ClientError(f"session expired, log in again ({error_line(response)})")
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
            raise ClientError(f"cannot reach the server at {self.server}: {reason(err)}") from None
        except requests.Timeout:
            raise ClientError(f"the server at {self.server} did not answer in time") from None
        except requests.RequestException as err:
            raise ClientError(f"request to {self.server} failed: {err}") from None

    @staticmethod
    def _check(response: requests.Response) -> requests.Response:
        if response.status_code >= 400:
            raise ClientError(error_line(response))
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


def reason(err: Exception) -> str:
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
