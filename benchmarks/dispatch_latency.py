"""Dispatch latency on the local stack: submit to first training step, progress to websocket.

Starts what production runs, on a dedicated database (`aula_bench`, created and migrated when
missing) and Redis database (11): uvicorn on `config.asgi:application` on a free port, and a
Celery worker as the GPU worker runs it (`-Q gpu --concurrency 1 --prefetch-multiplier 1`,
prefork pool unless `--pool solo`). A learner logs in through the login page (session cookie
for the websocket) and takes an API token; after a warm-up, it submits the XOR template N
times (default 200), one job at a time, each over HTTP, watching each job on a real websocket
client (the `websockets` package) from right after the submit answers until its final event.

1. submit to first training step: from just before the submit request is sent to the moment
   the worker's trainer begins its first step (the runner stamps that in the job's outcome as
   `first_step_at`, from the trainer's first per-step cancel check).
2. progress to client: from a progress event's row timestamp (`at`, stamped in the worker inside
   the callback's transaction) to the client's receipt, for every progress event written after
   the client's socket was accepted; and exactly, from the call of the runtime's progress
   callback (`ProgressReporter`) made in this process on a job it claimed, N times.
3. baselines in the same run: a raw Redis PUBLISH to a SUBSCRIBE client, and channels_redis's
   group_send to receive without Django.

Run: `.venv/bin/python benchmarks/dispatch_latency.py` (`--help` for options). PostgreSQL and
Redis must be running (DATABASE_URL's server, REDIS_URL's server; defaults on 127.0.0.1).
"""

import argparse
import asyncio
import http.client
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench passphrase 0123456789"
EMAIL = "bench-learner@example.org"
FINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def _environment(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-secret-key-" + "x" * 40),
        "DEBUG": "false",
        "HTTPS": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "EMAIL_URL": "memorymail://",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WORKER_HEARTBEAT_INTERVAL": "1",
    }


def _database_ensure(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    server = parts._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _seed(*, jobs: int):
    """A tenant, a learner enrolled in a published course, and a fresh XOR assignment."""
    from django.utils import timezone
    from django_scopes import scopes_disabled

    from apps.accounts.models import User
    from apps.courses.models import Assignment, Course, Enrollment, Exercise
    from apps.tenants.models import Membership, Role, Tenant
    from runtime.templates import TEMPLATES

    now = timezone.now()
    with scopes_disabled():
        tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
        learner = User.objects.filter(email=EMAIL).first()
        if learner is None:
            learner = User.objects.create_user(email=EMAIL, password=PASSWORD, full_name="Bench")
        Membership.objects.get_or_create(
            tenant=tenant, user=learner, defaults={"role": Role.LEARNER}
        )
        course, _ = Course.objects.get_or_create(
            tenant=tenant, slug="bench", defaults={"title": "Bench", "published_at": now}
        )
        Enrollment.objects.get_or_create(tenant=tenant, course=course, user=learner)
        exercise, _ = Exercise.objects.get_or_create(
            tenant=tenant,
            course=course,
            title="XOR",
            defaults={
                "dataset": "xor",
                "min_metric": 0.5,
                "target_metric": 0.95,
                "starter_spec": TEMPLATES["xor"].spec,
            },
        )
        assignment = Assignment.objects.create(
            tenant=tenant,
            course=course,
            exercise=exercise,
            opens_at=now - timedelta(hours=1),
            due_at=now + timedelta(days=1),
            max_attempts=jobs,
            published_at=now,
        )
    return tenant, learner, assignment


class Stack:
    """uvicorn and a Celery worker, as production starts them, stopped (by pid) on exit."""

    def __init__(self, env: dict[str, str], *, pool: str):
        self.env, self.pool = {**os.environ, **env}, pool
        self.port = _free_port()
        self.processes: list[subprocess.Popen] = []
        self.logs = Path(tempfile.mkdtemp(prefix="aula-bench-"))

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:  # the child keeps its own copy
            self.processes.append(
                subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
            )

    def start(self) -> None:
        python = sys.executable
        self._spawn(
            "web",
            [
                python,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
        )
        self._spawn(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "gpu",
                "--concurrency",
                "1",
                "--prefetch-multiplier",
                "1",
                "--pool",
                self.pool,
                "-n",
                f"bench-{os.getpid()}@%h",
                "--loglevel",
                "WARNING",
            ],
        )
        deadline = time.monotonic() + 180
        while True:  # /readyz answers 200 once the database, Redis and a worker's heartbeat are
            for process in self.processes:
                if process.poll() is not None:
                    raise SystemExit(f"a service exited; logs in {self.logs}")
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the stack did not become ready; logs in {self.logs}")
            time.sleep(0.5)

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def stop(self, *, keep_logs: bool) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if keep_logs:
            print(f"service logs: {self.logs}", file=sys.stderr)
        else:
            shutil.rmtree(self.logs, ignore_errors=True)


def _cookies(headers) -> dict[str, str]:
    jar = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            key, _, rest = value.partition("=")
            jar[key] = rest.split(";", 1)[0]
    return jar


def _log_in(stack: Stack) -> tuple[str, str]:
    """The learner's session cookie (through the login page) and an API token."""
    status, headers, page = stack.request("GET", "/accounts/login/")
    assert status == 200, status
    csrf_cookie = _cookies(headers)["csrftoken"]
    csrf_field = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urlencode(
        {"username": EMAIL, "password": PASSWORD, "csrfmiddlewaretoken": csrf_field.decode()}
    )
    status, headers, body = stack.request(
        "POST",
        "/accounts/login/",
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf_cookie}",
        },
    )
    assert status == 302, (status, body[:500])
    session = _cookies(headers)["sessionid"]
    status, _, body = stack.request(
        "POST",
        "/api/v1/auth/token/",
        body=json.dumps({"email": EMAIL, "password": PASSWORD}),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, (status, body[:500])
    return f"sessionid={session}", json.loads(body)["token"]


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _watch(stack: Stack, cookie: str, job_id: str, after: int = 0):
    from websockets.sync.client import connect

    return connect(
        f"ws://127.0.0.1:{stack.port}/ws/jobs/{job_id}/?after={after}",
        additional_headers={"Cookie": cookie},
        origin=f"http://127.0.0.1:{stack.port}",
        open_timeout=30,
    )


def _submit_and_watch(stack: Stack, cookie: str, token: str, path: str, spec: dict) -> dict:
    """One job: submit, watch to the end; returns its timestamps (seconds since the epoch)."""
    body = json.dumps({"kind": "spec", "spec": spec})
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
    submitted = time.time()
    status, _, answer = stack.request("POST", path, body=body, headers=headers)
    answered = time.time()
    assert status == 201, (status, answer[:500])
    job_id = json.loads(answer)["job"]["id"]
    events = []
    with _watch(stack, cookie, job_id) as ws:
        accepted = time.time()
        while not events or events[-1][0]["type"] not in FINAL:
            message = ws.recv(timeout=120)
            events.append((json.loads(message), time.time()))
    final = events[-1][0]
    assert final["type"] == "succeeded", final
    assert [e["seq"] for e, _ in events] == list(range(1, len(events) + 1)), "gap or duplicate"
    by_type = {e["type"]: e for e, _ in reversed(events)}
    return {
        "submitted": submitted,
        "answered": answered,
        "queued": _at(by_type["queued"]["at"]),
        "claimed": _at(by_type["started"]["at"]),
        "first_step": _at(final["payload"]["outcome"]["first_step_at"]),
        # Progress written after the socket was accepted: each went out live or in the replay.
        "progress": [
            received - _at(e["at"])
            for e, received in events
            if e["type"] == "progress" and _at(e["at"]) > accepted
        ],
    }


def _callback_to_client(stack: Stack, cookie: str, assignment, learner, count: int) -> list:
    """The runtime's progress callback, called here on a job this process claimed (as the
    worker does), timed from its call to the websocket client's receipt."""
    from django_scopes import scope

    from apps.jobs.lease import claim_finish, job_claim
    from apps.jobs.models import Job, Submission
    from apps.jobs.runner import ProgressReporter
    from runtime.templates import TEMPLATES

    with scope(tenant=assignment.tenant_id):
        attempt = Submission.objects.filter(assignment=assignment, learner=learner).count() + 1
        submission = Submission.objects.create(
            tenant_id=assignment.tenant_id,
            assignment=assignment,
            learner=learner,
            kind="spec",
            spec=TEMPLATES["xor"].spec,
            attempt=attempt,
        )
        job = Job.objects.create(tenant_id=assignment.tenant_id, submission=submission)
        claim = job_claim(job_id=job.id, owner="benchmark")  # not dispatched: ours to run
        job.refresh_from_db()
        report = ProgressReporter(claim)
        latencies, returns = [], []
        with _watch(stack, cookie, str(job.id), after=job.last_seq) as ws:
            for step in range(count):
                called = time.time()
                point = {"epoch": 1, "epochs": 1, "step": step + 1, "steps": count + 1}
                report({**point, "epoch_end": False, "loss": 0.5})
                returned = time.time()
                message = json.loads(ws.recv(timeout=30))
                latencies.append(time.time() - called)
                returns.append(returned - called)
                assert message["payload"]["step"] == step + 1, message
            claim_finish(claim, state="cancelled", final_payload={"message": "Benchmark."})
    return latencies, returns


def _redis_publish_to_subscriber(redis_url: str, count: int) -> list:
    import redis

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("bench:latency")
    while pubsub.get_message(timeout=1) is not None:  # the subscribe confirmation
        pass
    latencies = []
    for step in range(count):
        sent = time.time()
        client.publish("bench:latency", json.dumps({"step": step}))
        message = pubsub.get_message(timeout=5)
        latencies.append(time.time() - sent)
        assert message is not None and json.loads(message["data"])["step"] == step
    pubsub.close()
    return latencies


def _channel_layer_send_to_receive(redis_url: str, count: int) -> list:
    from channels_redis.core import RedisChannelLayer

    async def measure():
        layer = RedisChannelLayer(hosts=[{"address": redis_url, "socket_timeout": 30}])
        channel = await layer.new_channel()
        await layer.group_add("bench.latency", channel)
        latencies = []
        for step in range(count):
            sent = time.time()
            await layer.group_send("bench.latency", {"type": "job.event", "step": step})
            message = await layer.receive(channel)
            latencies.append(time.time() - sent)
            assert message["step"] == step
        await layer.group_discard("bench.latency", channel)
        await layer.flush()
        return latencies

    return asyncio.run(measure())


def _leftovers_end() -> None:
    """A run stopped half-way (Ctrl-C, a crash) leaves jobs queued or running in the benchmark's
    own database; a running one holds the pool's one slot, and no reaper runs here. End them."""
    from django_scopes import scopes_disabled

    from apps.jobs.models import Job

    with scopes_disabled():  # the benchmark's database only
        Job.objects.filter(state__in=["queued", "running"]).update(
            state="failed", failure_kind="internal", message="Left over by an earlier benchmark."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5, help="jobs run first and not counted")
    parser.add_argument("--epochs", type=int, default=5, help="XOR epochs (template: 60)")
    parser.add_argument("--pool", default="prefork", help="the worker's pool: prefork or solo")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/aula_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()

    env = _environment(args.database_url, args.redis_url)
    os.environ.update(env)
    _database_ensure(args.database_url)
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    from runtime.templates import TEMPLATES

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(args.redis_url).flushdb()
    _leftovers_end()
    tenant, learner, assignment = _seed(jobs=args.warmup + args.jobs + 1)
    template = TEMPLATES["xor"].spec
    spec = {**template, "training": {**template["training"], "epochs": args.epochs}}
    path = f"/api/v1/t/{tenant.slug}/assignments/{assignment.id}/submissions/"

    cpu = cpu_model()
    load = os.getloadavg()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, load average {load[0]:.2f} at start")
    print(f"stack: uvicorn, Celery worker (pool {args.pool}), PostgreSQL, Redis on this machine")
    stack = Stack(env, pool=args.pool)
    finished = False
    try:
        stack.start()
        cookie, token = _log_in(stack)
        for _ in range(args.warmup):
            _submit_and_watch(stack, cookie, token, path, spec)
        started = time.monotonic()
        runs = [_submit_and_watch(stack, cookie, token, path, spec) for _ in range(args.jobs)]
        seconds = time.monotonic() - started
        exact, callback = _callback_to_client(stack, cookie, assignment, learner, args.jobs)
        finished = True
    finally:
        stack.stop(keep_logs=not finished)
    publish = _redis_publish_to_subscriber(args.redis_url, args.jobs)
    group = _channel_layer_send_to_receive(args.redis_url, args.jobs)

    first_step = [r["first_step"] - r["submitted"] for r in runs]
    progress = [latency for r in runs for latency in r["progress"]]
    rows = [
        ("submit -> first training step", first_step, "p50 <= 100 ms"),
        ("  of which: submit -> queued row", [r["queued"] - r["submitted"] for r in runs], ""),
        ("  of which: submit -> API answer", [r["answered"] - r["submitted"] for r in runs], ""),
        ("  of which: submit -> worker claim", [r["claimed"] - r["submitted"] for r in runs], ""),
        ("  of which: claim -> first step", [r["first_step"] - r["claimed"] for r in runs], ""),
        ("progress row -> websocket client", progress, "p99 <= 50 ms"),
        ("progress callback -> websocket client", exact, "p99 <= 50 ms"),
        ("  of which: the callback (write, commit, publish)", callback, ""),
        ("baseline: Redis PUBLISH -> SUBSCRIBE", publish, ""),
        ("baseline: channel layer send -> receive", group, ""),
    ]
    print(
        f"{args.jobs} jobs (XOR, {args.epochs} epochs) in {seconds:.1f} s after "
        f"{args.warmup} warm-up jobs; load average {os.getloadavg()[0]:.2f} at the end"
    )
    print(f"{'measure':50} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  target")
    for name, values, target in rows:
        print(
            f"{name:50} {len(values):6d} {_ms(statistics.median(values))} "
            f"{_ms(_nearest_rank(values, 99))} {_ms(max(values))}  {target}"
        )


if __name__ == "__main__":
    main()
