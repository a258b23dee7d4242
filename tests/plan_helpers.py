"""Helpers for the plan and share-link tests: accounts on a live server, administrators,
uploads of small real images, plan assignment."""

from __future__ import annotations

import io

import psycopg
import requests
from http_helpers import signup
from PIL import Image


def png(seed: int, size=(40, 30)) -> bytes:
    """A small PNG whose bytes differ for each seed."""
    image = Image.new("RGB", size, (seed % 256, (seed // 256) % 256, 77))
    image.putpixel((0, 0), (seed % 7, seed % 11, seed % 13))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def make_admin(database_url: str, base_url: str, name: str = "root") -> dict:
    headers = signup(base_url, name)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE users SET is_admin = true WHERE name = %s", (name,))
    return headers


def user_id(base_url: str, headers: dict) -> int:
    return requests.get(base_url + "/me", headers=headers, timeout=30).json()["id"]


def assign(base_url: str, admin: dict, uid: int, plan: str) -> dict:
    response = requests.put(f"{base_url}/admin/users/{uid}/plan", json={"plan": plan}, headers=admin, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def upload(base_url: str, headers: dict, data: bytes, name: str = "a.png", private: bool = False):
    return requests.post(
        base_url + "/images",
        files={"file": (name, data, "image/png")},
        data={"isPrivate": "1" if private else "0"},
        headers=headers,
        timeout=60,
    )


def error_code(response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]["code"]
