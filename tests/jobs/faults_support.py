"""What the fault tests start and break: a private Redis server, Celery workers and beat on it,
and this test process's broker, cache and Channels layer pointed at that Redis.

Every fault test runs on its own Redis server (a free port, no persistence), so no other worker
(the session worker of the other job tests shares the test Redis database) can take its jobs,
and stopping or restarting that Redis breaks nothing else.
"""

import contextlib
import copy
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import kombu.pools
from django.conf import settings
from django.test import override_settings

from config.celery import app as celery_app
from config.launcher import free_local_port, redis_answers, redis_executable
from tests.conftest import ROOT, database_url_of_test_db, wait_for

LOG_TAIL_CHARS = 3000
STOP_GRACE_S = 15


class Service:
    """A child process in its own process group, its output captured to a log file."""

    def __init__(self, name: str, argv: list[str], *, env: dict, log_path: Path, hostname=""):
        self.name = name
        self.hostname = hostname  # a worker's node name
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self) -> str:
        return f"--- {self.name} (pid {self.pid}) log tail ---\n{self.log()[-LOG_TAIL_CHARS:]}"

    def terminate(self) -> None:
        if self.running():
            self.process.terminate()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the whole group if it does not exit in time."""
        self.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_GRACE_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # anything the child left in its group
        self.process.wait()


class RedisServer:
    """The redis-server binary that `make run` embeds, on a fixed free port, without persistence
    (what a broker restart loses is lost)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_local_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.service: Service | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        argv = [
            redis_executable(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        log_path = self.workdir / f"redis-{self.starts}.log"
        self.service = Service(
            f"redis #{self.starts}", argv, env=dict(os.environ), log_path=log_path
        )
        wait_for(
            lambda: redis_answers(self.port) or not self.service.running(),
            timeout=30,
            message=f"redis-server answering on port {self.port}",
        )
        assert self.service.running(), self.service.tail()

    def stop(self) -> None:
        """SIGTERM, then wait until the port refuses connections."""
        if self.service is not None:
            self.service.stop()
            self.service = None
        wait_for(
            lambda: not redis_answers(self.port),
            timeout=30,
            message=f"redis on port {self.port} to stop answering",
        )


class CeleryStack:
    """Celery workers and beat of the real project, on the test database and a given Redis."""

    def __init__(self, workdir: Path, redis_url: str):
        self.workdir = workdir
        self.redis_url = redis_url
        self.services: list[Service] = []

    def _env(self, extra: dict) -> dict:
        return {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "CELERY_RESULT_BACKEND": self.redis_url,
            "WORKER_HEARTBEAT_INTERVAL": "1",
            "DATABASE_POOL": "true",  # as production runs (the test process itself does not)
            **{name: str(value) for name, value in extra.items()},
        }

    def worker(self, name: str, *, ready: bool = True, **env) -> Service:
        """A solo-pool worker (one process: the job trains in it) on the default and gpu
        queues; waits for its "ready" line unless told not to."""
        hostname = f"{name}-{os.getpid()}@faults"
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "default,gpu",
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "-n",
            hostname,
            "--loglevel",
            "INFO",
            # No peers to sync with or gossip to: the workers start faster.
            "--without-mingle",
            "--without-gossip",
        ]
        service = Service(
            name, argv, env=self._env(env), log_path=self.workdir / f"{name}.log", hostname=hostname
        )
        self.services.append(service)
        if ready:
            self.wait_ready(service)
        return service

    def wait_ready(self, service: Service) -> None:
        wait_for(
            lambda: f"{service.hostname} ready." in service.log() or not service.running(),
            timeout=120,
            interval=0.2,
            message=lambda: f"worker {service.name} ready\n{self.tails()}",
        )
        assert service.running(), self.tails()

    def beat(self, **env) -> Service:
        """The real beat (the reaper's schedule comes from settings, read from `env`)."""
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(self.workdir / "beat-schedule"),
            "--pidfile",
            str(self.workdir / "beat.pid"),
        ]
        service = Service("beat", argv, env=self._env(env), log_path=self.workdir / "beat.log")
        self.services.append(service)
        return service

    def tails(self) -> str:
        return "\n".join(service.tail() for service in self.services)

    def stop(self) -> None:
        for service in self.services:  # all warm shutdowns at once, then wait for each
            service.terminate()
        for service in self.services:
            service.stop()


def task_results(service: Service, task: str = "jobs.run_job") -> dict[str, str]:
    """What each run of `task` returned, by task id, read from the worker's log."""
    pattern = re.compile(re.escape(task) + r"\[([0-9a-f-]+)\] succeeded in [0-9.e-]+s: '(\w+)'")
    return dict(pattern.findall(service.log()))


@contextlib.contextmanager
def this_process_on_redis(url: str):
    """Point this process's Celery producer, cache and Channels layer at `url` (all three share
    REDIS_URL in production), as a web process configured with it would be."""
    old_broker = celery_app.conf.broker_url

    def reset_producer(broker_url: str) -> None:
        # Close and forget kombu's pools (a registry shared by URL, so closing only the app's
        # would leave a closed pool for the next user of that URL); the app makes new ones.
        kombu.pools.reset()
        celery_app.conf.broker_url = broker_url
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    # The project's own settings, with only the Redis address changed.
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["address"] = url
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = url
    with override_settings(
        REDIS_URL=url, CELERY_BROKER_URL=url, CACHES=caches, CHANNEL_LAYERS=layers
    ):
        reset_producer(url)
        try:
            yield
        finally:
            reset_producer(old_broker)


def deadline_from(start: float, seconds: float) -> float:
    return max(0.0, start + seconds - time.monotonic())
