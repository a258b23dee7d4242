"""All configuration, read from the environment in one place.

Every setting has an environment variable; this module is the only reader of `os.environ` in
the package (tests build a `Config` directly with `dataclasses.replace`).

State (the chunk store, the embedded database, the dev JWT secret) lives under one instance
directory, `IMAGEREPO_HOME`: by default the checkout when running from one (`make run`), else
a per-user data directory. Never next to the installed code, which may be read-only or shared.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import secrets
from pathlib import Path


def _checkout_root() -> Path | None:
    """The source checkout this package runs from (editable install, `make run`), or None for
    an installed wheel, whose parent directory is site-packages."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "run_dev_server.py").is_file() else None


CHECKOUT_ROOT = _checkout_root()


def instance_dir(home: Path) -> Path:
    """Private files: the dev JWT secret, the embedded server's runtime directory."""
    return home / ".instance"


def pgdata_root(home: Path) -> Path:
    """Data directories of the embedded PostgreSQL servers (dev, test, bench)."""
    return home / ".pgdata"


def instance_home(environ: dict | None = None) -> Path:
    """IMAGEREPO_HOME, else the checkout, else the per-user data directory
    (~/.local/share/imagerepo on Linux, honouring XDG_DATA_HOME)."""
    env = os.environ if environ is None else environ
    if env.get("IMAGEREPO_HOME"):
        return Path(env["IMAGEREPO_HOME"]).expanduser().resolve()
    if CHECKOUT_ROOT is not None:
        return CHECKOUT_ROOT
    import platformdirs

    return platformdirs.user_data_path("imagerepo")


MiB = 1024 * 1024


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the service must not start."""


def _int(env: dict, name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(env: dict, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _networks(env: dict, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    entries = tuple(part.strip() for part in raw.split(",") if part.strip())
    for entry in entries:
        if entry != "*":
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(f"{name}: {entry!r} is not an address or network") from None
    return entries


def _dev_jwt_secret(instance_dir: Path) -> str:
    """In dev, a generated secret kept in the instance directory so tokens survive restarts."""
    path = instance_dir / "jwt_secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        instance_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret = secrets.token_urlsafe(48)
        # O_EXCL: when two processes race, one writes and both read the winner's secret.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secret)
        except FileExistsError:
            pass
        return path.read_text().strip()


@dataclasses.dataclass(frozen=True)
class Config:
    env: str = "dev"
    # None means: use the embedded PostgreSQL (see imagerepo.pgembed).
    database_url: str | None = None
    jwt_secret: str = ""
    # The instance directory: state that is not in PostgreSQL.
    home: Path = dataclasses.field(default_factory=instance_home)
    # None means home / "blobs".
    blob_dir: Path = None  # type: ignore[assignment]
    chunk_size: int = 256 * 1024
    cache_bytes: int = 256 * MiB
    # Objects larger than this are read past the chunk cache (None: 1/8 of cache_bytes), so one
    # big download neither grows a worker nor evicts the small images others keep reading.
    cache_max_object_bytes: int | None = None
    max_upload_bytes: int = 100 * MiB
    # fsync chunk files before they become visible; off only for throwaway stores.
    fsync: bool = True
    # A download of 8 chunks or more reads and verifies its next chunk on another thread while
    # this one is sent (README, "Performance").
    read_ahead: bool = True
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    # Zero-reference objects and chunks are kept this long before the collector frees them,
    # so a download that read its manifest just before a delete can still finish.
    gc_grace_seconds: int = 600
    # How often the in-server collector runs; 0 disables it (the CLI `gc` still works).
    gc_interval_seconds: int = 300
    db_pool_min: int = 1
    db_pool_max: int = 10
    # Failed access-key attempts allowed per image and client within the window.
    access_key_max_failures: int = 10
    access_key_window_seconds: int = 600
    # ... and per client across all images: one key may open many images (a private batch).
    access_key_max_failures_per_client: int = 50
    # Failed logins (imagerepo/login_limits.py): free per name and client, per name, per client
    # within the window; past a limit each attempt waits 1 s, doubling, up to the max delay.
    login_max_failures: int = 5
    login_max_failures_per_account: int = 30
    login_max_failures_per_client: int = 50
    login_window_seconds: int = 900
    login_max_delay_seconds: int = 60
    audit_retention_days: int = 90
    # Per-worker cache of access and token/account state, kept by LISTEN/NOTIFY (statecache.py).
    state_cache: bool = True
    # Where chunk bytes live: "local" (files under blob_dir) or "s3" (an S3-compatible bucket;
    # blob_dir then holds only this node's staging area). Credentials for S3 come from the
    # standard AWS variables or files (AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/...).
    chunk_store: str = "local"
    s3_endpoint: str | None = None  # None: AWS itself
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_region: str | None = None
    # Per connect and per read; each request is tried at most s3_max_attempts times.
    s3_timeout_seconds: int = 10
    s3_max_attempts: int = 3
    s3_max_connections: int = 32
    # Bearer token a Prometheus scraper sends for /metrics (admins' JWTs work too). The
    # counters reveal whether an upload was deduplicated, so they are not public.
    metrics_token: str = ""
    # gunicorn (imagerepo.serving): longest wait for the next byte of a request's headers or
    # body before the thread is freed (408 for a body), so stalled clients cannot hold them all.
    read_timeout_seconds: int = 30
    # Behind a reverse proxy: how many proxies append to X-Forwarded-For (0: the header is
    # ignored and the client is the connection's peer), and the peers believed when they send
    # it (addresses or networks, "*" for any; a Unix-socket peer is always local).
    trusted_proxy_hops: int = 0
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    # Variants (imagerepo/variants): how many one source may have made on request (the
    # background ones do not count), and how many off-grid (owner-only) sizes per hour.
    variant_max_per_image: int = 40
    variant_off_grid_per_hour: int = 10
    # Where `imagerepo serve` (nginx in front of gunicorn) listens.
    public_host: str = "127.0.0.1"
    public_port: int = 8080
    # Behind `imagerepo serve`'s nginx: a verified single-chunk object is sent by nginx from its
    # chunk file (X-Accel-Redirect, imagerepo/stack/accel.py). Off unless set: it measured no
    # faster than proxying (bench/stack.py). `imagerepo serve` passes it on to gunicorn.
    accel_redirect: bool | None = None
    # How long a chunk file this worker verified stays trusted for nginx to send as it is.
    accel_verified_seconds: int = 300
    # Plans and share links (imagerepo/plans): the plan new accounts get, and the lifetimes a
    # share link may be given (seconds).
    default_plan: str = "Unlimited"
    link_min_seconds: int = 300
    link_max_seconds: int = 30000

    def __post_init__(self):
        if self.blob_dir is None:
            object.__setattr__(self, "blob_dir", self.home / "blobs")

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Config":
        env = dict(os.environ if environ is None else environ)
        home = instance_home(env)
        mode = env.get("IMAGEREPO_ENV", "dev")
        if mode not in ("dev", "production", "test"):
            raise ConfigError(f"IMAGEREPO_ENV must be dev, production or test, got {mode!r}")
        secret = env.get("IMAGEREPO_JWT_SECRET", "")
        if not secret:
            if mode == "production":
                raise ConfigError("IMAGEREPO_JWT_SECRET must be set when IMAGEREPO_ENV=production")
            secret = _dev_jwt_secret(instance_dir(home))
        elif mode == "production" and len(secret) < 32:
            raise ConfigError("IMAGEREPO_JWT_SECRET must be at least 32 characters in production")
        chunk_store = env.get("IMAGEREPO_CHUNK_STORE") or cls.chunk_store
        if chunk_store not in ("local", "s3"):
            raise ConfigError(f"IMAGEREPO_CHUNK_STORE must be local or s3, got {chunk_store!r}")
        if chunk_store == "s3" and not env.get("IMAGEREPO_S3_BUCKET"):
            raise ConfigError("IMAGEREPO_S3_BUCKET must be set when IMAGEREPO_CHUNK_STORE=s3")
        return cls(
            env=mode,
            database_url=env.get("DATABASE_URL") or None,
            jwt_secret=secret,
            home=home,
            blob_dir=Path(env.get("IMAGEREPO_BLOB_DIR") or home / "blobs").expanduser().resolve(),
            chunk_size=_int(env, "IMAGEREPO_CHUNK_SIZE", cls.chunk_size, minimum=4096),
            cache_bytes=_int(env, "IMAGEREPO_CACHE_BYTES", cls.cache_bytes),
            # Unset: 1/8 of the cache (ChunkCache decides); 0 keeps every object out of the cache.
            cache_max_object_bytes=(
                _int(env, "IMAGEREPO_CACHE_MAX_OBJECT_BYTES", 0)
                if env.get("IMAGEREPO_CACHE_MAX_OBJECT_BYTES")
                else None
            ),
            max_upload_bytes=_int(env, "IMAGEREPO_MAX_UPLOAD_BYTES", cls.max_upload_bytes, minimum=1),
            fsync=_bool(env, "IMAGEREPO_FSYNC", cls.fsync),
            read_ahead=_bool(env, "IMAGEREPO_READ_AHEAD", cls.read_ahead),
            access_token_minutes=_int(env, "IMAGEREPO_ACCESS_TOKEN_MINUTES", cls.access_token_minutes, 1),
            refresh_token_days=_int(env, "IMAGEREPO_REFRESH_TOKEN_DAYS", cls.refresh_token_days, 1),
            gc_grace_seconds=_int(env, "IMAGEREPO_GC_GRACE_SECONDS", cls.gc_grace_seconds),
            gc_interval_seconds=_int(env, "IMAGEREPO_GC_INTERVAL_SECONDS", cls.gc_interval_seconds),
            db_pool_min=_int(env, "IMAGEREPO_DB_POOL_MIN", cls.db_pool_min, 1),
            db_pool_max=_int(env, "IMAGEREPO_DB_POOL_MAX", cls.db_pool_max, 1),
            access_key_max_failures=_int(env, "IMAGEREPO_ACCESS_KEY_MAX_FAILURES", cls.access_key_max_failures, 1),
            access_key_window_seconds=_int(
                env, "IMAGEREPO_ACCESS_KEY_WINDOW_SECONDS", cls.access_key_window_seconds, 1
            ),
            access_key_max_failures_per_client=_int(
                env, "IMAGEREPO_ACCESS_KEY_MAX_FAILURES_PER_CLIENT", cls.access_key_max_failures_per_client, 1
            ),
            login_max_failures=_int(env, "IMAGEREPO_LOGIN_MAX_FAILURES", cls.login_max_failures, 1),
            login_max_failures_per_account=_int(
                env, "IMAGEREPO_LOGIN_MAX_FAILURES_PER_ACCOUNT", cls.login_max_failures_per_account, 1
            ),
            login_max_failures_per_client=_int(
                env, "IMAGEREPO_LOGIN_MAX_FAILURES_PER_CLIENT", cls.login_max_failures_per_client, 1
            ),
            login_window_seconds=_int(env, "IMAGEREPO_LOGIN_WINDOW_SECONDS", cls.login_window_seconds, 1),
            login_max_delay_seconds=_int(env, "IMAGEREPO_LOGIN_MAX_DELAY_SECONDS", cls.login_max_delay_seconds, 1),
            audit_retention_days=_int(env, "IMAGEREPO_AUDIT_RETENTION_DAYS", cls.audit_retention_days, 1),
            state_cache=_bool(env, "IMAGEREPO_STATE_CACHE", cls.state_cache),
            metrics_token=env.get("IMAGEREPO_METRICS_TOKEN", ""),
            trusted_proxy_hops=_int(env, "IMAGEREPO_TRUSTED_PROXY_HOPS", cls.trusted_proxy_hops),
            trusted_proxies=_networks(env, "IMAGEREPO_TRUSTED_PROXIES", cls.trusted_proxies),
            public_host=env.get("IMAGEREPO_PUBLIC_HOST") or cls.public_host,
            public_port=_int(env, "IMAGEREPO_PUBLIC_PORT", cls.public_port, 1),
            chunk_store=chunk_store,
            s3_endpoint=env.get("IMAGEREPO_S3_ENDPOINT") or None,
            s3_bucket=env.get("IMAGEREPO_S3_BUCKET", ""),
            s3_prefix=env.get("IMAGEREPO_S3_PREFIX", ""),
            s3_region=env.get("IMAGEREPO_S3_REGION") or None,
            s3_timeout_seconds=_int(env, "IMAGEREPO_S3_TIMEOUT_SECONDS", cls.s3_timeout_seconds, 1),
            s3_max_attempts=_int(env, "IMAGEREPO_S3_MAX_ATTEMPTS", cls.s3_max_attempts, 1),
            s3_max_connections=_int(env, "IMAGEREPO_S3_MAX_CONNECTIONS", cls.s3_max_connections, 1),
            read_timeout_seconds=_int(env, "IMAGEREPO_READ_TIMEOUT_SECONDS", cls.read_timeout_seconds, 1),
            variant_max_per_image=_int(env, "IMAGEREPO_VARIANT_MAX_PER_IMAGE", cls.variant_max_per_image),
            variant_off_grid_per_hour=_int(env, "IMAGEREPO_VARIANT_OFF_GRID_PER_HOUR", cls.variant_off_grid_per_hour),
            accel_redirect=_bool(env, "IMAGEREPO_ACCEL_REDIRECT", False)
            if env.get("IMAGEREPO_ACCEL_REDIRECT")
            else None,
            accel_verified_seconds=_int(env, "IMAGEREPO_ACCEL_VERIFIED_SECONDS", cls.accel_verified_seconds),
            default_plan=env.get("IMAGEREPO_DEFAULT_PLAN") or cls.default_plan,
            link_min_seconds=_int(env, "IMAGEREPO_LINK_MIN_SECONDS", cls.link_min_seconds, 1),
            link_max_seconds=_int(env, "IMAGEREPO_LINK_MAX_SECONDS", cls.link_max_seconds, 1),
        )
