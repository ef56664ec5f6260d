"""/healthz and /readyz, with a real Celery worker process publishing heartbeats."""

import time

import pytest

from apps.core.heartbeat import HEARTBEATS_KEY, redis_client


def test_healthz_answers_ok_without_touching_services(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_each_check_and_503_without_a_worker(client):
    redis_client().delete(HEARTBEATS_KEY)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": True}
    assert body["checks"]["worker"] == {
        "ok": False,
        "error": "no worker heartbeat in the last 60 s",
    }


@pytest.mark.django_db
def test_readyz_ignores_a_stale_heartbeat(client):
    redis_client().delete(HEARTBEATS_KEY)
    redis_client().hset(
        HEARTBEATS_KEY, "stale@host", f'{{"at": {time.time() - 61}, "pid": 1, "queues": ["gpu"]}}'
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["worker"]["ok"] is False


@pytest.mark.django_db
def test_readyz_is_ok_with_a_real_worker(client, celery_worker_process):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": True}
    assert body["checks"]["worker"]["ok"] is True
    assert celery_worker_process["hostname"] in body["checks"]["worker"]["workers"]
