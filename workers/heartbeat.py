"""Each Celery worker records a heartbeat in Redis; /readyz and the console read them.

The heartbeat is a field per worker in one Redis hash, refreshed on the worker's own timer, so a
worker that stops (killed, hung, lost its Redis) goes stale within WORKER_HEARTBEAT_MAX_AGE.
"""

import contextlib
import json
import logging
import os
import time
from functools import cache

import redis
from celery import bootsteps
from django.conf import settings

log = logging.getLogger(__name__)
HEARTBEATS_KEY = "aula:workers:heartbeat"


@cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
    )


def heartbeat_record(*, hostname: str, queues: list[str]) -> None:
    beat = {"at": time.time(), "pid": os.getpid(), "queues": sorted(queues)}
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
