"""The OpenAPI document says what the server does: schemathesis (an independent checker) runs
every check it has against the live server (gunicorn), over the document the server serves.

Bounded and repeatable: a fixed number of examples per operation and a fixed seed. Its
configuration (tests/schemathesis.toml) widens, with the reason for each, only the statuses two
checks take as an answer; tests/schemathesis_hooks.py logs in for the operations that need a
token. On a failure the test shows schemathesis' own report: each failure with a curl command
that reproduces it."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from live_server import live_server

HERE = Path(__file__).resolve().parent
MAX_EXAMPLES = 20
SEED = 1
USER = {"name": "schemathesis", "email": "schemathesis@example.com", "password": "correct horse battery"}
# Every check schemathesis 4 has (all are on by default; none is turned off for the whole run).
ALL_CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
}


def _checks_run(report: Path) -> tuple[set[str], set[str], list[int]]:
    """The checks that ran, the operations tested, and every 5xx status seen, from the NDJSON report."""
    checks: set[str] = set()
    operations: set[str] = set()
    server_errors: list[int] = []
    for line in report.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        operations.add(recorder["label"])
        for results in recorder.get("checks", {}).values():
            checks.update(result["name"] for result in results)
        for interaction in recorder.get("interactions", {}).values():
            status = (interaction.get("response") or {}).get("status_code")
            if status is not None and status >= 500:
                server_errors.append(status)
    return checks, operations, server_errors


@pytest.mark.timeout(420)
def test_live_server_does_what_its_openapi_document_says(config, tmp_path):
    # Schemathesis sends thousands of wrong passwords to /login: the per-client failure limit
    # would end in 429s for the hooks' own logins.
    env = {"IMAGEREPO_LOGIN_MAX_FAILURES_PER_CLIENT": "1000000"}
    with live_server(config.database_url, config.blob_dir, threads=8, extra_env=env) as server:
        assert requests.post(f"{server.url}/register", json=USER, timeout=30).status_code == 201
        document = requests.get(f"{server.url}/openapi.json", timeout=30).json()
        reports = tmp_path / "report"
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "--config-file",
                str(HERE / "schemathesis.toml"),
                "run",
                f"{server.url}/openapi.json",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                "--workers",
                "2",
                "--generation-database",
                "none",
                "--no-color",
                "--report",
                "ndjson",
                "--report-dir",
                str(reports),
                "--request-timeout",
                "30",
            ],
            cwd=tmp_path,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
                "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
                "IMAGEREPO_ST_URL": server.url,
                "IMAGEREPO_ST_USER": USER["name"],
                "IMAGEREPO_ST_PASSWORD": USER["password"],
            },
            capture_output=True,
            text=True,
            timeout=400,
        )
    output = run.stdout + run.stderr
    summary = output[output.find("= FAILURES =") - 40 :] if "= FAILURES =" in output else output[-6000:]
    assert run.returncode == 0, f"schemathesis found mismatches (exit {run.returncode}):\n{summary}"
    assert " passed" in output and "failure" not in output.split("= SUMMARY =")[-1], output[-3000:]

    checks, tested, server_errors = _checks_run(next(reports.glob("*.ndjson")))
    assert checks == ALL_CHECKS
    assert server_errors == []
    documented = collections.Counter(
        f"{method.upper()} {path}" for path, operations in document["paths"].items() for method in operations
    )
    assert set(documented) <= tested, set(documented) - tested
