"""100 KiB content GETs under load (wrk, c=16), anonymous and with a token, against the framework
ceiling: a minimal Flask app under the same gunicorn settings (bench/ceiling_app.py)."""

from __future__ import annotations

import contextlib

from bench import clients
from bench.servers import Gunicorn, log


def small_gets(bench, server: Gunicorn, ceiling: Gunicorn, token: str) -> None:
    owner = clients.Client(server.url, token)
    data = bench.payload(bench.plan.small_get_bytes)
    image = owner.upload_multipart(data, "small.png")
    owner.close()
    url = f"{server.url}/images/{image['id']}/content"
    # The smoke test (--quick) must not install packages as a side effect of a test run.
    wrk = clients.ensure_wrk(log, install=not bench.plan.quick)
    bench.load_generator = f"wrk ({wrk})" if wrk else "python (2 processes, threaded http.client)"

    def load(target: str, headers=None) -> dict:
        if wrk:
            return clients.run_wrk(
                wrk, target, bench.plan.concurrency, bench.plan.load_seconds, headers=headers, log=log
            )
        return clients.run_python_load(target, bench.plan.concurrency, bench.plan.load_seconds, headers)

    load(url)  # warm-up: pools open, chunk cached in every worker
    load(ceiling.url + "/content")
    for run in range(bench.plan.runs):
        with bench.profiler.phase("small_get", server) if run == 0 else contextlib.nullcontext():
            result = load(url)
        for key, unit in (("rps", "req/s"), ("p50_ms", "ms"), ("p99_ms", "ms")):
            source = "requests_per_second" if key == "rps" else key
            bench.figures.add(f"small_get_{key}", result[source], unit)
        result = load(ceiling.url + "/content")
        for key, unit in (("rps", "req/s"), ("p50_ms", "ms"), ("p99_ms", "ms")):
            source = "requests_per_second" if key == "rps" else key
            bench.figures.add(f"ceiling_{key}", result[source], unit)
        with_token = load(url, {"Authorization": f"Bearer {token}"})
        bench.figures.add("small_get_token_rps", with_token["requests_per_second"], "req/s")
        log(
            f"100 KiB GET c={bench.plan.concurrency} run {run + 1}: ImageRepo "
            f"{bench.figures.data['small_get_rps']['runs'][-1]:.0f} req/s, ceiling "
            f"{bench.figures.data['ceiling_rps']['runs'][-1]:.0f} req/s, with token "
            f"{with_token['requests_per_second']:.0f} req/s"
        )
