"""Schemathesis hooks for tests/test_schemathesis.py (loaded by the CLI through SCHEMATHESIS_HOOKS):
real tokens from the live server's /login for every operation that needs one."""

from __future__ import annotations

import os

import requests
import schemathesis
from hypothesis.internal import lambda_sources

BASE_URL = os.environ.get("IMAGEREPO_ST_URL", "")
USERNAME = os.environ.get("IMAGEREPO_ST_USER", "")
PASSWORD = os.environ.get("IMAGEREPO_ST_PASSWORD", "")


_describe_lambda = lambda_sources._lambda_description


def _lambda_description(f, *args, **kwargs):
    """Hypothesis parses a lambda's source file only to name the lambda in a strategy's repr;
    CPython 3.11's ast.parse, called that deep in a stack, can fail with SystemError ("AST
    constructor recursion depth mismatch"), which schemathesis reports as an error of the
    operation. A repr without the lambda's body is enough."""
    try:
        return _describe_lambda(f, *args, **kwargs)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources._lambda_description = _lambda_description


def _login() -> dict:
    response = requests.post(f"{BASE_URL}/login", json={"username": USERNAME, "password": PASSWORD}, timeout=30)
    response.raise_for_status()
    return response.json()


@schemathesis.auth()
class LiveLogin:
    """One login for the run; /logout revokes what it is sent, so it gets tokens of its own each time,
    and /token/refresh is sent the refresh token (the only kind it takes)."""

    def get(self, case, ctx):
        return _login()

    def set(self, case, data, ctx):
        path = case.operation.path
        if path == "/logout":
            token = _login()["access_token"]
        elif path == "/token/refresh":
            token = data["refresh_token"]
        else:
            token = data["access_token"]
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
