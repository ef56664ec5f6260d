"""Where the time of one prediction request goes in the web process: the profile behind the
numbers of serving.py.

On serving.py's database (`aula_bench_serving`) and its seed (the two models trained and stored
again), with the inference pool started as serving.py starts it: the predict request N times
(default 300) per model and batch size through Django's full stack in-process (the test client:
middleware, knox token authentication, the view), each phase timed by wrapping the function
that does it, and every SQL statement counted and timed (`connection.execute_wrapper`). What no
wrapper covers is Django's and DRF's own work (middleware, request and response objects, content
negotiation, rendering) and the test client.

Run: `.venv/bin/python benchmarks/serving_profile.py [--requests 300]`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from dispatch_latency import _database_ensure, _environment, _free_port
from machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Phases:
    """Time spent inside each wrapped function, per request."""

    def __init__(self):
        self.current: dict[str, float] = defaultdict(float)
        self.requests: list[dict[str, float]] = []

    def wrap(self, owner, name: str, phase: str) -> None:
        function = getattr(owner, name)

        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.current[phase] += time.perf_counter() - began

        setattr(owner, name, timed)

    def sql(self, execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.current["SQL statements (count)"] += 1
            self.current["SQL time (inside the phases)"] += time.perf_counter() - began

    def end(self, total: float) -> None:
        self.current["whole request"] = total
        self.requests.append(dict(self.current))
        self.current = defaultdict(float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/aula_bench_serving"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    env = _environment(args.database_url, args.redis_url)
    pool_port = _free_port()
    env["INFERENCE_URL"] = f"http://127.0.0.1:{pool_port}"
    os.environ.update(env)
    _database_ensure(args.database_url)
    import django

    django.setup()
    import httpx
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from knox.auth import TokenAuthentication
    from serving import _seed

    from apps.serving import apis, services

    call_command("migrate", verbosity=0)
    print(f"machine: {cpu_model()}, load average {os.getloadavg()[0]:.2f} at start")
    tenant, token, served = _seed()
    pool = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "apps.serving.inference", "--port", str(pool_port)],
        cwd=ROOT,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{env['INFERENCE_URL']}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or pool.poll() is not None:
                raise SystemExit("the inference pool did not start")
            time.sleep(0.3)
        phases = Phases()
        phases.wrap(TokenAuthentication, "authenticate", "authentication (knox token)")
        phases.wrap(apis, "_model_seen", "the model and who may use it")
        phases.wrap(apis.PredictApi, "validated_input", "body: JSON parse and serializer")
        phases.wrap(apis, "samples_decode", "samples: checked and made an array")
        phases.wrap(services, "predictions_today", "quota: today's allowance left?")
        phases.wrap(services, "inference_run", "the pool: request and answer")
        phases.wrap(services, "predictions_admit", "quota: the samples added")
        phases.wrap(apis.PredictApi, "finalize_response", "DRF: finalize (negotiation)")
        client = Client(HTTP_HOST="127.0.0.1")
        headers = {"HTTP_AUTHORIZATION": f"Token {token}"}
        for model in served:
            path = f"/api/v1/t/{tenant.slug}/models/{model.trained_model.id}/predict"
            for batch in (1, 32):
                body = json.dumps({"inputs": model.inputs[:batch].reshape(batch, -1).tolist()})
                for _ in range(20):  # warm-up
                    assert client.post(path, body, "application/json", **headers).status_code == 200
                phases.requests.clear()
                phases.current.clear()
                with connection.execute_wrapper(phases.sql):
                    for _ in range(args.requests):
                        began = time.perf_counter()
                        response = client.post(path, body, "application/json", **headers)
                        phases.end(time.perf_counter() - began)
                        assert response.status_code == 200, response.content[:300]
                _report(f"{model.name}, batch {batch}", phases.requests)
    finally:
        pool.terminate()
        pool.wait(timeout=30)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


def _report(title: str, requests: list[dict[str, float]]) -> None:
    print(f"\n{title}: {len(requests)} requests, medians")
    names = list(dict.fromkeys(name for request in requests for name in request))
    for name in names:
        values = [request.get(name, 0.0) for request in requests]
        median = statistics.median(values)
        shown = f"{median:8.0f}" if "count" in name else f"{median * 1000:8.2f} ms"
        print(f"  {name:45} {shown}")
    rest = [
        request["whole request"]
        - sum(v for k, v in request.items() if k != "whole request" and not k.startswith("SQL"))
        for request in requests
    ]
    print(
        f"  {'the rest (Django, DRF, middleware, the client)':45} "
        f"{statistics.median(rest) * 1000:8.2f} ms"
    )


if __name__ == "__main__":
    main()
