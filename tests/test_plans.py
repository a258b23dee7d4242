"""Plans and quotas against the real server: the shipped plans, administration (API and CLI),
/me, and quotas refusing the upload that would pass them, also under 8 concurrent uploads."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys

import psycopg
import pytest
import requests
from http_helpers import signup
from live_server import live_server
from plan_helpers import assign, error_code, make_admin, png, upload, user_id

SHIPPED = {
    "Basic": ([200], False, False),
    "Premium": ([200, 400], True, False),
    "Enterprise": ([200, 400], True, True),
    "Unlimited": ([], True, True),
}


def test_shipped_plans_and_default(server, config):
    admin = make_admin(config.database_url, server.url)
    plans = requests.get(server.url + "/admin/plans", headers=admin, timeout=30).json()["plans"]
    by_name = {p["name"]: p for p in plans}
    for name, (heights, original, expiring) in SHIPPED.items():
        plan = by_name[name]
        assert (plan["thumbnailHeights"], plan["originalViaLinks"], plan["expiringLinks"]) == (
            heights,
            original,
            expiring,
        )
    assert by_name["Unlimited"]["maxStoredBytes"] is None and by_name["Unlimited"]["maxImages"] is None
    assert by_name["Basic"]["maxUploadBytes"] == 10 * 1024 * 1024

    alice = signup(server.url, "alice")
    me = requests.get(server.url + "/me", headers=alice, timeout=30).json()
    assert me["name"] == "alice" and me["plan"]["name"] == "Unlimited"
    assert me["usage"] == {
        "storedBytes": {"used": 0, "limit": None},
        "images": {"used": 0, "limit": None},
        "uploadBytes": {"used": 0, "limit": None},
    }


def test_usage_counts_logical_bytes_and_is_freed_on_delete(server):
    alice, bob = signup(server.url, "alice"), signup(server.url, "bob")
    data = png(1)
    first = upload(server.url, alice, data)
    assert first.status_code == 201
    # Bob stores the same bytes: deduplicated underneath, but counted in full for him too.
    assert upload(server.url, bob, data).status_code == 201
    for headers in (alice, bob):
        usage = requests.get(server.url + "/me", headers=headers, timeout=30).json()["usage"]
        assert usage["storedBytes"]["used"] == len(data) and usage["images"]["used"] == 1
    assert requests.delete(f"{server.url}/images/{first.json()['id']}", headers=alice, timeout=30).status_code == 202
    usage = requests.get(server.url + "/me", headers=alice, timeout=30).json()["usage"]
    assert usage["storedBytes"]["used"] == 0 and usage["images"]["used"] == 0


def test_admin_creates_changes_and_assigns_plans(server, config):
    admin = make_admin(config.database_url, server.url)
    alice = signup(server.url, "alice")
    url = server.url + "/admin/plans"
    body = {"name": "Odd sizes", "thumbnailHeights": [333, 137, 137], "expiringLinks": True, "maxImages": 5}
    assert requests.post(url, json=body, headers=alice, timeout=30).status_code == 403
    created = requests.post(url, json=body, headers=admin, timeout=30)
    assert created.status_code == 201, created.text
    plan = created.json()
    assert plan["thumbnailHeights"] == [137, 333] and plan["originalViaLinks"] is False and plan["maxImages"] == 5
    again = requests.post(url, json={**body, "name": "odd SIZES"}, headers=admin, timeout=30)
    assert again.status_code == 409 and error_code(again) == "conflict"
    for bad in ({"name": ""}, {"name": "x/y"}, {"name": "a", "thumbnailHeights": [0]}, {"name": "a", "maxImages": -1}):
        response = requests.post(url, json=bad, headers=admin, timeout=30)
        assert response.status_code == 422, (bad, response.text)

    changed = requests.patch(
        url + "/Odd sizes", json={"maxImages": None, "originalViaLinks": True}, headers=admin, timeout=30
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["maxImages"] is None and changed.json()["originalViaLinks"] is True
    assert requests.patch(url + "/nope", json={"maxImages": 1}, headers=admin, timeout=30).status_code == 404
    assert requests.patch(url + "/Basic", json={}, headers=admin, timeout=30).status_code == 422

    uid = user_id(server.url, alice)
    assigned = assign(server.url, admin, uid, "odd sizes")
    assert assigned["plan"]["name"] == "Odd sizes" and assigned["userId"] == uid
    assert requests.get(server.url + "/me", headers=alice, timeout=30).json()["plan"]["thumbnailHeights"] == [137, 333]
    shown = requests.get(f"{server.url}/admin/users/{uid}/plan", headers=admin, timeout=30).json()
    assert shown["plan"]["name"] == "Odd sizes"
    missing = requests.put(f"{server.url}/admin/users/{uid}/plan", json={"plan": "Gold"}, headers=admin, timeout=30)
    assert missing.status_code == 404
    assert (
        requests.put(
            f"{server.url}/admin/users/999999/plan", json={"plan": "Basic"}, headers=admin, timeout=30
        ).status_code
        == 404
    )


def _quota_plan(server, admin, headers, name: str, **quotas) -> None:
    response = requests.post(server.url + "/admin/plans", json={"name": name, **quotas}, headers=admin, timeout=30)
    assert response.status_code == 201, response.text
    assign(server.url, admin, user_id(server.url, headers), name)


def test_quotas_refuse_the_upload_that_would_pass_them(server, config):
    admin = make_admin(config.database_url, server.url)
    alice = signup(server.url, "alice")
    small = png(10)
    _quota_plan(server, admin, alice, "Two", maxImages=2, maxUploadBytes=len(small) + 10)
    assert upload(server.url, alice, png(11)).status_code == 201
    assert upload(server.url, alice, png(12)).status_code == 201
    third = upload(server.url, alice, png(13))
    assert third.status_code == 403 and error_code(third) == "quota_images", third.text
    big = png(14, size=(300, 300))
    too_big = upload(server.url, alice, big)
    assert too_big.status_code == 413 and error_code(too_big) == "quota_upload_bytes", too_big.text
    usage = requests.get(server.url + "/me", headers=alice, timeout=30).json()["usage"]
    assert usage["images"] == {"used": 2, "limit": 2}

    bob = signup(server.url, "bob")
    first, second, third = png(20), png(21), png(30)
    _quota_plan(server, admin, bob, "Bytes", maxStoredBytes=len(first) + len(second) + len(third) // 2)
    ids = [upload(server.url, bob, data).json()["id"] for data in (first, second)]
    refused = upload(server.url, bob, third)
    assert refused.status_code == 403 and error_code(refused) == "quota_bytes", refused.text
    # The refused upload left nothing: its bytes are not listed, and deleting one frees room.
    listed = requests.get(server.url + "/images?mine=1", headers=bob, timeout=30).json()["images"]
    assert sorted(i["id"] for i in listed) == sorted(ids)
    requests.delete(f"{server.url}/images/{ids[0]}", headers=bob, timeout=30)
    assert upload(server.url, bob, third).status_code == 201


@pytest.mark.parametrize("quota", ["maxImages", "maxStoredBytes"])
def test_eight_concurrent_uploads_cannot_overshoot(tmp_path, config, quota):
    with live_server(config.database_url, tmp_path / "blobs-c", workers=2, threads=4) as server:
        admin = make_admin(config.database_url, server.url)
        alice = signup(server.url, "alice")
        images = [png(100 + n) for n in range(8)]
        limit = 3 if quota == "maxImages" else sum(len(i) for i in images[:3]) + min(len(i) for i in images) // 2
        _quota_plan(server, admin, alice, "Three", **{quota: limit})
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda data: upload(server.url, alice, data), images))
        statuses = sorted(a.status_code for a in answers)
        stored = [a for a in answers if a.status_code == 201]
        code = "quota_images" if quota == "maxImages" else "quota_bytes"
        assert all(error_code(a) == code for a in answers if a.status_code != 201), statuses
        usage = requests.get(server.url + "/me", headers=alice, timeout=30).json()["usage"]
        stored_bytes = sum(a.json()["size"] for a in stored)
        assert usage["images"]["used"] == len(stored) and usage["storedBytes"]["used"] == stored_bytes
        if quota == "maxImages":
            assert statuses == [201] * 3 + [403] * 5
        else:
            assert stored_bytes <= limit and 2 <= len(stored) <= 3 and statuses.count(403) == 8 - len(stored)
        with psycopg.connect(config.database_url) as conn:
            count = conn.execute("SELECT count(*) FROM images").fetchone()[0]
        assert count == len(stored)


def test_default_plan_for_new_accounts_is_configurable(tmp_path, config):
    signup_before = None
    with live_server(config.database_url, tmp_path / "b1") as server:
        signup_before = signup(server.url, "early")
    with live_server(config.database_url, tmp_path / "b2", extra_env={"IMAGEREPO_DEFAULT_PLAN": "basic"}) as server:
        late = signup(server.url, "late")
        assert requests.get(server.url + "/me", headers=late, timeout=30).json()["plan"]["name"] == "Basic"
        # Accounts made before keep theirs.
        early = requests.get(server.url + "/me", headers=signup_before, timeout=30).json()
        assert early["plan"]["name"] == "Unlimited"


def test_unknown_default_plan_stops_the_start(config):
    from imagerepo import create_app
    from imagerepo.config import ConfigError
    from conftest import with_changes

    with pytest.raises(ConfigError, match="IMAGEREPO_DEFAULT_PLAN"):
        create_app(with_changes(config, default_plan="Gold"))


def test_cli_plan_commands(server, config):
    alice = signup(server.url, "alice")
    env = {**os.environ, "DATABASE_URL": config.database_url, "IMAGEREPO_ENV": "test"}

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "imagerepo", "plan", *args], env=env, capture_output=True, text=True, timeout=60
        )

    made = cli("create", "Tiny", "--heights", "90,45", "--expiring-links", "--max-images", "1")
    assert made.returncode == 0, made.stderr
    assert cli("create", "tiny").returncode != 0
    assert cli("change", "Tiny", "--original-links", "--max-bytes", "1000000").returncode == 0
    listed = cli("list")
    assert listed.returncode == 0 and "Tiny" in listed.stdout and "45,90" in listed.stdout
    assert cli("assign", "alice", "Tiny").returncode == 0
    me = requests.get(server.url + "/me", headers=alice, timeout=30).json()
    assert me["plan"]["name"] == "Tiny" and me["plan"]["originalViaLinks"] is True
    assert me["usage"]["images"]["limit"] == 1 and me["usage"]["storedBytes"]["limit"] == 1000000
    assert cli("assign", "nobody", "Tiny").returncode != 0
    assert cli("recount").returncode == 0


def test_a_batch_stores_what_fits_and_lists_the_quota_refusals(server, config):
    admin = make_admin(config.database_url, server.url)
    alice = signup(server.url, "alice")
    _quota_plan(server, admin, alice, "Pair", maxImages=2)
    files = [("file", (f"{n}.png", png(200 + n), "image/png")) for n in range(3)]
    answer = requests.post(server.url + "/images/batch", files=files, headers=alice, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["created"]) == 2 and [f["error"]["code"] for f in body["failed"]] == ["quota_images"]
    raw = requests.post(server.url + "/images/raw?name=x.png", data=png(300), headers=alice, timeout=60)
    assert raw.status_code == 403 and error_code(raw) == "quota_images"


def test_hostile_plan_and_link_requests_get_clear_errors(server, config):
    admin = make_admin(config.database_url, server.url)
    big = 2**70
    for method, path, body in (
        ("GET", f"/admin/users/{big}/plan", None),
        ("PUT", f"/admin/users/{big}/plan", {"plan": "Basic"}),
        ("PATCH", "/admin/plans/" + "x" * 300, {"maxImages": 1}),
        ("PATCH", "/admin/plans/Basic", {"maxImages": big}),
        ("PATCH", "/admin/plans/Basic", {"thumbnailHeights": None}),
        ("PATCH", "/admin/plans/Basic", {"thumbnailHeights": list(range(1, 30))}),
        ("POST", "/admin/plans", {"name": "é"}),
        ("POST", "/admin/plans", {"name": "ok", "unknown": 1}),
        ("POST", f"/images/{big}/links", {"expiresIn": 300}),
        ("POST", "/images/1/links", {"expiresIn": big}),
        ("DELETE", f"/images/1/links/{big}", None),
        ("GET", "/s/" + "é" * 10, None),
    ):
        response = requests.request(method, server.url + path, json=body, headers=admin, timeout=30)
        assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text)
        assert set(response.json()) == {"error"}
