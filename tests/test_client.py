"""The command-line client (`python -m imagerepo.client`) against the real server under gunicorn,
run as a user would: a subprocess with its own config file and working directory."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from imagerepo.client.files import safe_filename
from live_server import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent

PASSWORD = "correct horse battery"


class Cli:
    """Runs the client as one user: each user has a config file of its own."""

    def __init__(self, server_url: str, home: Path):
        self.server_url = server_url
        self.home = home
        self.workdir = home / "work"
        self.workdir.mkdir(parents=True, exist_ok=True)

    def config_path(self, user: str) -> Path:
        return self.home / "config" / f"{user}.json"

    def run(
        self,
        *args: str,
        user: str = "alice",
        stdin: str | None = None,
        server: str | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "IMAGEREPO_URL": server or self.server_url,
            "IMAGEREPO_CLIENT_CONFIG": str(self.config_path(user)),
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        return subprocess.run(
            [sys.executable, "-m", "imagerepo.client", *args],
            cwd=cwd or self.workdir,
            env=env,
            input=stdin or "",
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def json(self, *args: str, **kwargs):
        return json.loads(self.ok(*args, "--json", **kwargs).stdout)

    def fails(self, *args: str, **kwargs) -> str:
        """The command exits 1 and says why in exactly one line on stderr; returns that line."""
        result = self.run(*args, **kwargs)
        assert result.returncode == 1, (args, result.returncode, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr
        return lines[0]

    def tokens(self, user: str) -> dict:
        data = json.loads(self.config_path(user).read_text())
        return data["servers"].get(self.server_url, {})

    def signup(self, user: str) -> None:
        self.ok("register", user, f"{user}@example.com", "--password", PASSWORD, user=user)
        self.ok("login", user, stdin=PASSWORD + "\n", user=user)


@pytest.fixture
def cli(server, tmp_path) -> Cli:
    return Cli(server.url, tmp_path / "home")


def make_image(path: Path, size: tuple[int, int], fmt: str) -> bytes:
    # Noise hardly compresses, so a large picture spans several 256 KiB chunks, and no two
    # pictures share content.
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    image.save(path, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return path.read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_round_trip_upload_list_download_private_delete(cli):
    work = cli.workdir
    png = make_image(work / "small.png", (64, 48), "PNG")
    jpg = make_image(work / "large.jpg", (900, 700), "JPEG")
    assert len(jpg) > 2 * 256 * 1024

    registered = cli.json("register", "alice", "alice@example.com", "--password", PASSWORD)
    assert registered["name"] == "alice"
    login = cli.ok("login", "alice", stdin=PASSWORD + "\n")  # password piped, as a script would
    assert "logged in" in login.stdout
    assert stat.S_IMODE(cli.config_path("alice").stat().st_mode) == 0o600
    assert cli.tokens("alice")["refresh_token"]
    assert cli.json("whoami")["name"] == "alice"

    upload = cli.ok("upload", "small.png", "large.jpg", "--description", "holiday")
    for name, _data in (("small.png", png), ("large.jpg", jpg)):
        assert f"{name}: " in upload.stderr and "(100%)" in upload.stderr
        assert f"uploaded {name} as image" in upload.stdout
    mine = cli.json("list", "--mine")["images"]
    by_name = {image["name"]: image for image in mine}
    assert set(by_name) == {"small.png", "large.jpg"}
    assert by_name["large.jpg"]["sha256"] == sha256(jpg) and by_name["large.jpg"]["size"] == len(jpg)
    assert by_name["small.png"]["description"] == "holiday"
    # One image per page, every page followed.
    assert {i["id"] for i in cli.json("list", "--limit", "1", "--all")["images"]} == {i["id"] for i in mine}
    assert cli.json("list", "--limit", "1")["nextCursor"]
    table = cli.ok("list").stdout
    assert "small.png" in table and "large.jpg" in table

    jpg_id, png_id = str(by_name["large.jpg"]["id"]), str(by_name["small.png"]["id"])
    info = cli.json("info", jpg_id)
    assert (info["width"], info["height"], info["contentType"]) == (900, 700, "image/jpeg")
    assert "sha256" in cli.ok("info", jpg_id).stdout

    saved = cli.json("download", jpg_id)
    assert Path(saved["path"]) == (work / "outputs" / "large.jpg").resolve()
    assert (work / "outputs" / "large.jpg").read_bytes() == jpg
    assert "sha256 verified" in cli.ok("download", png_id).stdout
    assert (work / "outputs" / "small.png").read_bytes() == png
    assert leftovers(work / "outputs") == []

    made_private = cli.json("private", jpg_id)
    assert made_private["isPrivate"] is True and made_private["accessKey"]
    key = made_private["accessKey"]

    cli.signup("bob")
    bob_dir = cli.home / "bob-downloads"
    without_key = cli.fails("download", jpg_id, "--out", str(bob_dir), user="bob")
    assert "HTTP 40" in without_key
    assert not (bob_dir / "large.jpg").exists()
    wrong_key = cli.fails("download", jpg_id, "--out", str(bob_dir), "--access-key", "wrong", user="bob")
    assert "no such image, or the access key is wrong (HTTP 404 not_found)" in wrong_key
    cli.ok("download", jpg_id, "--out", str(bob_dir), "--access-key", key, user="bob")
    assert (bob_dir / "large.jpg").read_bytes() == jpg
    assert "accessKey" not in cli.json("info", jpg_id, "--access-key", key, user="bob")
    # Others' private images are not listed to bob; the public one is.
    assert [i["name"] for i in cli.json("list", user="bob")["images"]] == ["small.png"]
    assert "HTTP 403" in cli.fails("delete", png_id, user="bob")

    assert cli.json("public", jpg_id)["isPrivate"] is False
    assert cli.json("info", jpg_id, user="bob")["name"] == "large.jpg"
    assert cli.json("private", jpg_id, "--access-key", "my own key")["accessKey"] == "my own key"

    assert "deleted image" in cli.ok("delete", jpg_id).stdout
    assert "HTTP 404" in cli.fails("info", jpg_id)
    assert [i["name"] for i in cli.json("list", "--mine")["images"]] == ["small.png"]


def test_private_upload_gets_a_key_and_the_key_opens_it(cli):
    cli.signup("alice")
    cli.signup("bob")
    data = make_image(cli.workdir / "secret.png", (32, 32), "PNG")
    uploaded = cli.json("upload", "secret.png", "--private")["images"][0]
    assert uploaded["isPrivate"] is True and len(uploaded["accessKey"]) >= 16
    image_id = str(uploaded["id"])
    assert cli.json("list", user="bob")["images"] == []
    out = cli.home / "bob"
    cli.ok("download", image_id, "--out", str(out), "--access-key", uploaded["accessKey"], user="bob")
    assert (out / "secret.png").read_bytes() == data


def test_download_of_a_hostile_name_stays_inside_outputs(cli, server):
    cli.signup("alice")
    data = make_image(cli.workdir / "plain.png", (16, 16), "PNG")
    token = cli.tokens("alice")["access_token"]
    ids = []
    for hostile in ("../../escape.png", "..\\..\\escape-win.png", "/etc/passwd", "..", ".hidden.png"):
        response = requests.post(
            server.url + "/images/raw",
            params={"name": hostile},
            data=data,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.text
        ids.append(str(response.json()["id"]))

    outputs = (cli.workdir / "outputs").resolve()
    for image_id in ids:
        saved = Path(cli.json("download", image_id)["path"])
        assert saved.parent == outputs and saved.read_bytes() == data
        assert not saved.name.startswith(".")
    written = {p.resolve() for p in cli.home.rglob("*") if p.is_file()}
    assert {p for p in written if p.parent != outputs and p.suffix != ".json"} == {
        (cli.workdir / "plain.png").resolve()
    }
    assert leftovers(outputs) == []


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..",
        ".",
        "",
        "/",
        "a/../../b.png",
        "..\\..\\windows.png",
        "C:\\Users\\x.png",
        ".bashrc",
        "x\x00y.png",
        "new\nline.png",
        "name" * 100 + ".png",
        "é" * 200 + ".jpg",
        "  ..  ",
    ],
)
def test_safe_filename_is_a_plain_name_inside_the_directory(name, tmp_path):
    result = safe_filename(name, "image-7")
    assert result and "/" not in result and "\\" not in result and not result.startswith(".")
    assert all(ch.isprintable() for ch in result)
    assert len(result.encode()) <= 200
    assert (tmp_path / result).resolve().parent == tmp_path.resolve()


def test_safe_filename_keeps_ordinary_names():
    assert safe_filename("holiday photo (1).jpg", "x") == "holiday photo (1).jpg"
    assert safe_filename("日本.png", "x") == "日本.png"
    assert safe_filename("..", "image-7") == "image-7"


def test_server_errors_are_one_line_and_exit_code_one(cli):
    assert "not logged in" in cli.fails("upload", __file__)
    assert "HTTP 401 invalid_credentials" in cli.fails("login", "nobody", "--password", "wrong password")

    cli.ok("register", "alice", "alice@example.com", "--password", PASSWORD)
    assert "HTTP 409" in cli.fails("register", "alice", "other@example.com", "--password", PASSWORD)
    assert "HTTP 422" in cli.fails("register", "carol", "not-an-email", "--password", PASSWORD)
    cli.ok("login", "alice@example.com", "--password", PASSWORD)
    assert "HTTP 404" in cli.fails("info", "999999")

    # In a batch, a file that is not an image fails on its own line; the others still upload.
    (cli.workdir / "notes.txt").write_text("not an image\n")
    make_image(cli.workdir / "ok.png", (8, 8), "PNG")
    result = cli.run("upload", "notes.txt", "ok.png")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "notes.txt" in errors[0] and "HTTP 415" in errors[0]
    assert [i["name"] for i in cli.json("list", "--mine")["images"]] == ["ok.png"]

    assert "not a file" in cli.fails("upload", "missing.png")
    refused = cli.fails("list", server=f"http://127.0.0.1:{free_port()}")
    assert "cannot reach the server" in refused


def _expired_looking_token() -> str:
    def part(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': '1', 'exp': int(time.time()) - 60})}.c2ln"


@pytest.mark.parametrize(
    "stale_token", ["not.a.token", _expired_looking_token()], ids=["rejected-by-server", "expired-locally"]
)
def test_stale_access_token_is_refreshed_with_the_refresh_token(cli, stale_token):
    cli.signup("alice")
    config = cli.config_path("alice")
    data = json.loads(config.read_text())
    data["servers"][cli.server_url]["access_token"] = stale_token
    config.write_text(json.dumps(data))

    assert cli.json("whoami")["name"] == "alice"
    refreshed = cli.tokens("alice")["access_token"]
    assert refreshed != stale_token
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    # An upload is sent again from the start after the refresh, not half-empty.
    data["servers"][cli.server_url]["access_token"] = stale_token
    config.write_text(json.dumps(data))
    jpg = make_image(cli.workdir / "after.jpg", (900, 700), "JPEG")
    uploaded = cli.json("upload", "after.jpg")["images"][0]
    assert uploaded["sha256"] == sha256(jpg) and uploaded["size"] == len(jpg)


def test_logout_revokes_the_tokens_on_the_server(cli, server):
    cli.signup("alice")
    tokens = cli.tokens("alice")
    assert "logged out" in cli.ok("logout").stdout
    assert cli.tokens("alice") == {}
    for token, route in ((tokens["refresh_token"], "/token/refresh"), (tokens["access_token"], "/me")):
        method = requests.post if route == "/token/refresh" else requests.get
        assert method(server.url + route, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "not logged in" in cli.fails("whoami")


@pytest.mark.parametrize("which", ["first", "last"])
def test_corrupt_content_never_lands_in_outputs(cli, config, which):
    """First chunk bad: the server refuses before sending. Last chunk bad: the stream breaks
    off after most of the bytes have arrived. Either way, no file and no temp file is left."""
    import psycopg

    cli.signup("alice")
    make_image(cli.workdir / "big.jpg", (900, 700), "JPEG")
    uploaded = cli.json("upload", "big.jpg")["images"][0]
    with psycopg.connect(config.database_url) as conn:
        digests = [
            bytes(row[0]).hex()
            for row in conn.execute(
                "SELECT chunk_digest FROM object_chunks WHERE object_digest = %s ORDER BY idx",
                (bytes.fromhex(uploaded["sha256"]),),
            )
        ]
    assert len(digests) >= 3
    victim = next(p for p in Path(config.blob_dir).rglob(digests[0 if which == "first" else -1]))
    victim.chmod(0o644)
    victim.write_bytes(bytes(victim.stat().st_size))

    line = cli.fails("download", str(uploaded["id"]))
    assert ("HTTP 500" in line) if which == "first" else ("broke off" in line)
    assert list((cli.workdir / "outputs").iterdir()) == []


def _peak_rss_kib(cli: Cli, *args: str) -> int:
    """Runs the client in a process that reports its own peak memory on its last stderr line."""
    # VmHWM, not ru_maxrss: the latter carries over the forking parent's (pytest's) peak.
    probe = (
        "import re, runpy, sys\n"
        "sys.argv = ['imagerepo.client'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('imagerepo.client', run_name='__main__')\n"
        "finally:\n    status = open('/proc/self/status').read()\n"
        "    print(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1), file=sys.stderr)\n"
    )
    env = {
        **os.environ,
        "IMAGEREPO_URL": cli.server_url,
        "PYTHONPATH": str(PROJECT_ROOT),
        "IMAGEREPO_CLIENT_CONFIG": str(cli.config_path("alice")),
    }
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=cli.workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return int(result.stderr.strip().splitlines()[-1])


def test_large_files_stream_through_the_client(cli):
    """A 40 MiB upload and download cost the client about as much memory as a tiny one."""
    cli.signup("alice")
    Image.new("RGB", (8, 8)).save(cli.workdir / "tiny.bmp")
    Image.new("RGB", (4000, 3500), (200, 30, 90)).save(cli.workdir / "huge.bmp")
    huge = (cli.workdir / "huge.bmp").read_bytes()
    assert len(huge) > 40 * 1024 * 1024

    baseline = _peak_rss_kib(cli, "upload", "tiny.bmp", "--quiet")
    upload_peak = _peak_rss_kib(cli, "upload", "huge.bmp", "--quiet")
    huge_id = next(i["id"] for i in cli.json("list", "--mine")["images"] if i["name"] == "huge.bmp")
    download_peak = _peak_rss_kib(cli, "download", str(huge_id), "--quiet")
    assert (cli.workdir / "outputs" / "huge.bmp").read_bytes() == huge
    assert upload_peak - baseline < 16 * 1024, (baseline, upload_peak)
    assert download_peak - baseline < 16 * 1024, (baseline, download_peak)
