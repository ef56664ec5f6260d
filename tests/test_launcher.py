"""`python -m config.launcher` (what `make run` runs) on a fresh machine: SQLite, embedded Redis.

Starts the real launcher twice on one data directory: each start must become ready (web, Redis
and a worker), serve the login page and stop every process on Ctrl-C; the second must find the
demo data the first created instead of duplicating it. A taken port is refused up front.
"""

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from celery import Celery

from apps.core.heartbeat import HEARTBEATS_KEY
from tests.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
# Generous: on a 2-core machine the worker's first import of Celery and torch is slow.
READY_TIMEOUT_S = 240
# The launcher gives the services 10 s, then Redis 10 s, before it kills what is left.
STOP_TIMEOUT_S = 60
# What a fresh machine lacks; pytest-env sets some of these for the rest of the suite.
UNSET = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "DEBUG",
    "HTTPS",
    "SECRET_KEY",
    "EMAIL_URL",
    "ALLOWED_HOSTS",
    "VAR_DIR",
)
DEMO_EMAILS = {
    "admin@demo.aula.localhost",
    "teacher@demo.aula.localhost",
    "ada@demo.aula.localhost",
    "alan@demo.aula.localhost",
    "root@aula.localhost",
}

# The launcher's two workers and the queues each takes: training alone on one, light tasks on the
# other, so a long job never holds up the reaper.
WORKERS = {
    f"aula@{socket.gethostname()}": ["gpu"],
    f"aula-light@{socket.gethostname()}": ["default"],
}

# Two full starts and stops on a slow machine can pass the suite's 300 s default.
pytestmark = pytest.mark.timeout(900)


@dataclass
class LauncherRun:
    process: subprocess.Popen
    port: int
    log_path: Path
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        text = self.log_path.read_text(errors="replace")
        return f"\n--- launcher log (last 8000 characters) ---\n{text[-8000:]}"


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def live_members(pgid: int) -> list[int]:
    """Pids of the processes still running in a process group (zombies count as gone)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: the group exists while anything in it does
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it exited while we looked
            continue
        # The command sits in parentheses and may hold spaces: split after the last ")".
        state, _ppid, pgrp = text.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


class Launches:
    """Starts the launcher, as a fresh machine would, on one data directory under tmp_path."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.var_dir = tmp_path / "var"
        self.env = {key: value for key, value in os.environ.items() if key not in UNSET}
        self.env["VAR_DIR"] = str(self.var_dir)
        self.runs: list[LauncherRun] = []

    def start(self) -> LauncherRun:
        port = free_port()
        log_path = self.tmp_path / f"launcher-{len(self.runs) + 1}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "config.launcher", "--port", str(port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.runs.append(LauncherRun(process=process, port=port, log_path=log_path))
        return self.runs[-1]

    def kill_leftovers(self) -> None:
        for run in self.runs:
            if run.process.poll() is None:
                run.process.send_signal(signal.SIGINT)
                try:
                    run.process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    run.process.kill()
                    run.process.wait()
            # Children lead their own process groups: killing the launcher does not reach them.
            for pgid in run.pids.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def launches(tmp_path):
    launches = Launches(tmp_path)
    yield launches
    launches.kill_leftovers()


def wait_ready(run: LauncherRun, var_dir: Path) -> dict:
    def ready():
        assert run.process.poll() is None, f"launcher exited ({run.process.returncode}){run.log()}"
        try:
            status, body = http_get(f"{run.url}/readyz")
        except OSError:  # uvicorn not listening yet
            return None
        return json.loads(body) if status == 200 else None

    def both_workers():
        body = ready()
        return body if body and len(body["checks"]["worker"].get("workers", [])) == 2 else None

    body = wait_for(both_workers, timeout=READY_TIMEOUT_S, message=lambda: f"/readyz{run.log()}")
    assert body == {
        "status": "ok",
        "checks": {
            "database": {"ok": True},
            "redis": {"ok": True},
            "worker": {"ok": True, "workers": sorted(WORKERS)},
        },
    }, run.log()
    # The banner follows the launcher's own readiness probe, at most a second later.
    wait_for(
        lambda: "Ctrl-C stops everything." in run.log_path.read_text(),
        timeout=30,
        message=lambda: f"the banner{run.log()}",
    )
    pids_file = var_dir / "launcher.pids"
    run.pids = {name: int(pid) for name, pid in (line.split() for line in pids_file.open())}
    services = ["beat", "inference", "redis", "web", "worker-gpu", "worker-light"]
    assert sorted(run.pids) == services, run.log()
    return body


def embedded_redis(run: LauncherRun) -> redis.Redis:
    """The Redis the banner names; it must be the launcher's own, not one on 6379."""
    match = re.search(
        r"Redis: +(redis://127\.0\.0\.1:(\d+)/0) \(embedded", run.log_path.read_text()
    )
    assert match, f"no embedded Redis in the banner{run.log()}"
    assert int(match[2]) != 6379, run.log()
    return redis.Redis.from_url(match[1], decode_responses=True)


def assert_login_page(run: LauncherRun) -> None:
    status, body = http_get(f"{run.url}/accounts/login/")
    assert status == 200, run.log()
    assert '<form method="post"' in body, body
    assert 'name="csrfmiddlewaretoken"' in body, body
    assert 'name="password"' in body, body


def stop_and_assert_all_gone(run: LauncherRun, var_dir: Path) -> None:
    run.process.send_signal(signal.SIGINT)
    try:
        code = run.process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"launcher still running {STOP_TIMEOUT_S} s after SIGINT{run.log()}"
        ) from None
    assert code == 0, run.log()
    assert "launcher: all stopped." in run.log_path.read_text(), run.log()
    # SIGKILL is delivered asynchronously: give a killed process a moment to leave the table.
    wait_for(
        lambda: not any(live_members(pgid) for pgid in run.pids.values()),
        timeout=10,
        message=lambda: (
            f"still running: { {n: live_members(g) for n, g in run.pids.items()} }{run.log()}"
        ),
    )
    assert not (var_dir / "launcher.pids").exists(), run.log()


def assert_a_light_task_runs_while_the_gpu_worker_is_held(run: LauncherRun, store) -> None:
    """The GPU worker (and its pool child) stopped with SIGSTOP is one busy with a long job that
    takes nothing else: a task on the default queue is still done, by the light worker."""
    broker = store.connection_pool.connection_kwargs
    url = f"redis://127.0.0.1:{broker['port']}/0"
    client = Celery(broker=url, backend=url, set_as_current=False)
    os.killpg(run.pids["worker-gpu"], signal.SIGSTOP)
    try:
        result = client.send_task("apps.accounts.tasks.credentials_purge", queue="default")
        assert result.get(timeout=60) == {"sessions": 0, "tokens": 0, "login_attempts": 0}
    finally:
        os.killpg(run.pids["worker-gpu"], signal.SIGCONT)
        client.close()


def table_counts(database: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("accounts_user", "tenants_tenant", "tenants_membership")
        }


def test_launcher_runs_everything_embedded_stops_cleanly_and_restarts_without_duplicates(launches):
    var_dir = launches.var_dir

    first = launches.start()
    wait_ready(first, var_dir)
    assert_login_page(first)
    log = first.log_path.read_text()
    assert "Created demo tenant 'Aula Demo School' at /t/demo/. Logins:" in log, first.log()
    for email in DEMO_EMAILS:
        assert email in log, first.log()
    assert (var_dir / "aula.sqlite3").is_file(), first.log()
    store = embedded_redis(first)
    beats = {
        name: json.loads(beat)["queues"] for name, beat in store.hgetall(HEARTBEATS_KEY).items()
    }
    assert beats == WORKERS, first.log()
    assert_a_light_task_runs_while_the_gpu_worker_is_held(first, store)
    store.set("launcher-test:survives-restart", "yes")
    stop_and_assert_all_gone(first, var_dir)

    second = launches.start()
    wait_ready(second, var_dir)
    assert_login_page(second)
    log = second.log_path.read_text()
    assert "Found demo tenant 'Aula Demo School'" in log, second.log()
    assert "Created demo tenant" not in log, second.log()
    # The embedded Redis keeps its data in var/ (append-only file) across restarts.
    assert embedded_redis(second).get("launcher-test:survives-restart") == "yes", second.log()
    stop_and_assert_all_gone(second, var_dir)

    assert table_counts(var_dir / "aula.sqlite3") == {
        "accounts_user": 5,
        "tenants_tenant": 1,
        "tenants_membership": 4,
    }
    with contextlib.closing(sqlite3.connect(var_dir / "aula.sqlite3")) as db:
        assert {email for (email,) in db.execute("SELECT email FROM accounts_user")} == DEMO_EMAILS


def test_launcher_refuses_a_port_already_in_use(launches):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.run(
            [sys.executable, "-m", "config.launcher", "--port", str(port)],
            cwd=ROOT,
            env=launches.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert process.returncode == 1, process.stdout + process.stderr
    assert f"127.0.0.1:{port} is already in use" in process.stderr, process.stderr
    assert not (launches.var_dir / "launcher.pids").exists()
