"""Where the time of submit → first training step goes, in one process: the profile behind the
numbers of dispatch_latency.py.

On the benchmark's database (`aula_bench`) and Redis database (11), with the benchmark's seed:

1. the submit request, 2N times (N timed, and in between N under cProfile), through Django's
   full stack in-process (middleware, token authentication, the API view, `submission_create`,
   the commit and its on-commit publish), every SQL statement of the timed ones timed
   (`connection.execute_wrapper`);
2. the worker's side, for each of those jobs: the claim (`job_claim`) and the run up to the
   start of its first optimizer step (the runner's `FirstStep`), under cProfile too; the rest
   of the run (training) is outside the profile.

Prints per-phase medians, the statements of one submit with their medians, and the functions
with the most cumulative time. No worker or web server is started: the broker only receives
the published tasks (the Redis database is flushed at start and end).

Run: `.venv/bin/python benchmarks/submit_profile.py [--jobs 40]`.
"""

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from dispatch_latency import _database_ensure, _environment, _seed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _median_ms(values) -> str:
    return f"{statistics.median(values) * 1000:7.2f} ms" if values else "      -"


class Statements:
    """Every statement's time, by its shape (literals replaced), for one phase at a time."""

    def __init__(self):
        self.phase = None
        self.times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.order: dict[str, list[str]] = defaultdict(list)

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if self.phase is not None:
                shape = re.sub(r"\s+", " ", sql)[:110]
                if shape not in self.times[self.phase]:
                    self.order[self.phase].append(shape)
                self.times[self.phase][shape].append(time.perf_counter() - started)


def _top(profile: cProfile.Profile, count: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(r"/(apps|runtime|config)/", count)
    lines = [line for line in out.getvalue().splitlines() if re.match(r"\s*\d", line)]
    return "\n".join(lines[:count])


def _callees(profile: cProfile.Profile, function: str) -> str:
    """What `function` spends its time in, largest first (the direct callees, cumulative)."""
    stats = pstats.Stats(profile)
    rows = []
    for (path, line, name), (_, _, _, _, callers) in stats.stats.items():
        for (caller_path, _, caller_name), (_, _, _, cumulative) in callers.items():
            if caller_name == function and "/apps/" in caller_path:
                rows.append((cumulative, f"{Path(path).name}:{line}({name})"))
    total = sum(cumulative for cumulative, _ in rows)
    lines = [f"  {cumulative * 1000:8.1f} ms  {where}" for cumulative, where in sorted(rows)[::-1]]
    return "\n".join(lines[:20]) + f"\n  {total * 1000:8.1f} ms  in all"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/aula_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()

    os.environ.update(_environment(args.database_url, args.redis_url))
    _database_ensure(args.database_url)
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django_scopes import scope
    from knox.models import AuthToken

    from apps.jobs import runner
    from apps.jobs.lease import job_claim
    from apps.jobs.models import Job
    from runtime.templates import TEMPLATES

    call_command("migrate", verbosity=0)
    broker = redis.Redis.from_url(args.redis_url)
    broker.flushdb()
    settings.POOL_SLOTS = {pool: 10**6 for pool in settings.WORKER_POOLS}  # always a free slot
    tenant, learner, assignment = _seed(jobs=2 * args.jobs + 3)
    _, token = AuthToken.objects.create(user=learner)
    template = TEMPLATES["xor"].spec
    spec = {**template, "training": {**template["training"], "epochs": args.epochs}}
    path = f"/api/v1/t/{tenant.slug}/assignments/{assignment.id}/submissions/"
    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")
    body = {"kind": "spec", "spec": spec}

    statements = Statements()
    submit_profile, run_profile = cProfile.Profile(), cProfile.Profile()
    phases = defaultdict(list)
    first_step = {}

    class ProfiledFirstStep(runner.FirstStep):
        def __call__(self):
            if self.at is None:
                run_profile.disable()
                statements.phase = None
                first_step["at"] = time.time()
            return super().__call__()

    runner.FirstStep = ProfiledFirstStep
    with connection.execute_wrapper(statements):
        for n in range(2 * args.jobs + 2):
            warm = n < 2  # the first two fill the process's caches; not counted
            # Alternately timed (phases, statements) and profiled: cProfile slows what it sees.
            profiled = not warm and n % 2 == 1
            timed = not warm and not profiled
            statements.phase = "submit" if timed else None
            if profiled:
                submit_profile.enable()
            sent = time.time()
            response = client.post(path, body, content_type="application/json")
            answered = time.time()
            submit_profile.disable()
            assert response.status_code == 201, response.content
            job_id = response.json()["job"]["id"]
            with scope(tenant=tenant.id):
                statements.phase = "claim" if timed else None
                if profiled:
                    run_profile.enable()
                claim_started = time.time()
                claim = job_claim(job_id=job_id, owner="profile:1", device="cpu")
                claimed = time.time()
                statements.phase = "setup" if timed else None
                runner.job_run(claim)
                run_profile.disable()
                statements.phase = None
                job = Job.objects.get(id=job_id)
            assert job.state == "succeeded", job.message
            if not timed:
                continue
            queued_at = job.created_at.timestamp()
            stamped = datetime.fromisoformat(job.outcome["first_step_at"]).timestamp()
            phases["request sent → job row written"].append(queued_at - sent)
            phases["job row written → response"].append(answered - queued_at)
            phases["submit request (whole)"].append(answered - sent)
            phases["claim (job_claim)"].append(claimed - claim_started)
            phases["claimed → first step (setup)"].append(stamped - claimed)
    broker.flushdb()

    print(f"{2 * args.jobs} submits and runs in one process, after 2 warm-up: {args.jobs} timed")
    print(f"(phases, statements), and in between {args.jobs} under cProfile (the profiles)")
    for name, values in phases.items():
        print(f"  {name:34s} p50 {_median_ms(values)}")
    for phase in ("submit", "claim", "setup"):
        shapes = statements.order[phase]
        total = [
            sum(t[i] for t in statements.times[phase].values() if i < len(t))
            for i in range(args.jobs)
        ]
        print(f"\nstatements in {phase}: {len(shapes)} distinct, {_median_ms(total)} a job")
        for shape in shapes:
            times = statements.times[phase][shape]
            print(f"  {len(times) / args.jobs:4.1f}x {_median_ms(times)}  {shape}")
    print("\nsubmit request, cumulative (apps/, runtime/, config/ functions):")
    print(_top(submit_profile, 25))
    print(f"\nsubmission_create's callees over the {args.jobs} submits (under the profiler):")
    print(_callees(submit_profile, "submission_create"))
    print("\nclaim and setup to the first step, cumulative:")
    print(_top(run_profile, 25))


if __name__ == "__main__":
    main()
