import json

import pytest

from apps.console import selectors
from apps.core import heartbeat

NOW = 1_800_000_000.0


@pytest.fixture
def beats(monkeypatch):
    """A Redis hash of our own (a real worker of the test session beats into the usual one),
    and a fixed clock for the ages."""
    key = "aula:test:console:heartbeats"
    client = heartbeat.redis_client()
    client.delete(key)
    monkeypatch.setattr(heartbeat, "HEARTBEATS_KEY", key)
    monkeypatch.setattr(selectors, "now", lambda: NOW)

    def beat(name: str, *, age: float, pid: int, queues: list[str], device: str = "cpu"):
        beat = {"at": NOW - age, "pid": pid, "queues": queues, "device": device}
        client.hset(key, name, json.dumps(beat))

    yield beat
    client.delete(key)
