"""The command-line client takes option values that start with '-': a generated access key
(URL-safe base64) does one time in 64, and tests/test_client.py used to fail then. Against the
real server, the client run as a subprocess."""

from __future__ import annotations

import pytest

from imagerepo.client.cli import attach_values
from test_client import Cli, make_image

KEY = "-Xy3_dashed-key-0123456789"


@pytest.fixture
def cli(server, tmp_path) -> Cli:
    return Cli(server.url, tmp_path / "home")


def test_access_keys_and_descriptions_starting_with_a_dash(cli):
    cli.signup("alice")
    cli.signup("bob")
    data = make_image(cli.workdir / "secret.png", (16, 16), "PNG")
    uploaded = cli.json("upload", "secret.png", "--private", "--access-key", KEY, "-d", "-- not a flag")["images"][0]
    assert uploaded["accessKey"] == KEY and uploaded["description"] == "-- not a flag"
    image_id = str(uploaded["id"])
    for spelling in (["--access-key", KEY], [f"--access-key={KEY}"]):
        out = cli.home / f"bob-{len(spelling)}"
        cli.ok("download", image_id, "--out", str(out), *spelling, user="bob")
        assert (out / "secret.png").read_bytes() == data
        assert cli.json("info", image_id, *spelling, user="bob")["id"] == uploaded["id"]
    assert cli.json("private", image_id, "--access-key", "-" + KEY)["accessKey"] == "-" + KEY
    assert "HTTP 404" in cli.fails("info", image_id, "--access-key", KEY, user="bob"), "the old key is refused"


def test_a_missing_value_is_still_a_usage_error(cli):
    result = cli.run("info", "1", "--access-key")
    assert result.returncode == 2 and "expected one argument" in result.stderr


def test_nothing_after_double_dash_is_rewritten():
    assert attach_values(["upload", "--", "--access-key", "-k"], {"--access-key"}) == [
        "upload",
        "--",
        "--access-key",
        "-k",
    ]
    assert attach_values(["info", "1", "--access-key", "-k"], {"--access-key"}) == ["info", "1", "--access-key=-k"]
