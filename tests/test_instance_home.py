"""Where state lives: the instance directory (IMAGEREPO_HOME), never the package's directory."""

import stat
from importlib import resources

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
