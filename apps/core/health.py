"""Probes: /healthz says the process answers; /readyz checks database, Redis and a worker."""

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.heartbeat import heartbeats_read, redis_client


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True}


def _check_redis() -> dict:
    redis_client().ping()
    return {"ok": True}


def _check_worker() -> dict:
    now = time.time()
    fresh = {
        name: beat
        for name, beat in heartbeats_read().items()
        if now - beat["at"] <= settings.WORKER_HEARTBEAT_MAX_AGE
    }
    if not fresh:
        return {"ok": False, "error": "no worker heartbeat in the last 60 s"}
    return {"ok": True, "workers": sorted(fresh)}


@never_cache
@require_GET
def readyz(request):
    checks = {}
    for name, check in (
        ("database", _check_database),
        ("redis", _check_redis),
        ("worker", _check_worker),
    ):
        try:
            checks[name] = check()
        except Exception as exc:  # a probe reports every failure; it never raises
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )
