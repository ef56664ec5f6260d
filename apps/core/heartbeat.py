"""Each Celery worker records a heartbeat in Redis; /readyz and the console read them.

The heartbeat is a field per worker in one Redis hash, refreshed on the worker's own timer, so a
worker that stops (killed, hung, lost its Redis) goes stale within WORKER_HEARTBEAT_MAX_AGE.
"""

import contextlib
import json
import logging
import os
import shutil
import subprocess
import time
from collections import Counter
from functools import cache

import redis
from celery import bootsteps
from django.conf import settings

log = logging.getLogger(__name__)
HEARTBEATS_KEY = "aula:workers:heartbeat"


def redis_client() -> redis.Redis:
    """The client for the Redis that settings name now (one per address, kept)."""
    return _redis_client_for(settings.REDIS_URL)


@cache
def _redis_client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
    )


@cache
def worker_device() -> str:
    """The devices this worker trains on, in words: "2 x NVIDIA H100 80GB HBM3", or "cpu".

    Read with nvidia-smi rather than torch: the worker's parent process forks the pool, and
    initialising CUDA before a fork leaves the children unable to use it."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "cpu"
    try:
        names = subprocess.run(  # noqa: S603 (a fixed command, found on PATH)
            [smi, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "cpu"
    counts = Counter(name.strip() for name in names if name.strip())
    if not counts:
        return "cpu"
    return ", ".join(f"{n} x {name}" if n > 1 else name for name, n in sorted(counts.items()))


def heartbeat_record(*, hostname: str, queues: list[str]) -> None:
    beat = {
        "at": time.time(),
        "pid": os.getpid(),
        "queues": sorted(queues),
        "device": worker_device(),
    }
    redis_client().hset(HEARTBEATS_KEY, hostname, json.dumps(beat))


def heartbeat_remove(*, hostname: str) -> None:
    redis_client().hdel(HEARTBEATS_KEY, hostname)


def heartbeats_read() -> dict[str, dict]:
    return {name: json.loads(raw) for name, raw in redis_client().hgetall(HEARTBEATS_KEY).items()}


class WorkerHeartbeat(bootsteps.StartStopStep):
    """A worker step: beat on start, every WORKER_HEARTBEAT_INTERVAL seconds, and clear on stop."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None

    def _beat(self, worker) -> None:
        try:
            queues = worker.app.amqp.queues.consume_from or worker.app.amqp.queues
            queues = [queue.name for queue in queues.values()]
            heartbeat_record(hostname=worker.hostname, queues=queues)
        except redis.RedisError as exc:  # Redis restarting: the next beat retries
            log.warning("worker heartbeat not recorded: %s", exc)

    def start(self, worker):
        self._beat(worker)
        self.tref = worker.timer.call_repeatedly(
            settings.WORKER_HEARTBEAT_INTERVAL, self._beat, (worker,), priority=10
        )

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        with contextlib.suppress(redis.RedisError):
            heartbeat_remove(hostname=worker.hostname)
