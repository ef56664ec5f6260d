"""The storage quota: reserved under a row lock, refused past the limit; a tenant whose model
storage is full cannot submit (409, the message, nothing created). Predictions are counted per
day and refused past predictions_per_day. Both are shown on the usage page and quota API."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.quotas import services
from apps.quotas.models import PredictionUsage, StorageUsage
from apps.quotas.services import (
    predictions_admit,
    storage_release,
    storage_reserve,
    storage_usage,
)
from tests.conftest import api_client_for, page_client_for
from tests.quotas.ledger_support import XOR_SPEC, enrolled_learner, quota_update
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db


def _used(world) -> int:
    with scopes_disabled():
        row = StorageUsage.objects.filter(tenant=world.tenant).first()
    return row.bytes_used if row else 0


def test_storage_is_reserved_up_to_the_limit_and_released(tenant_a):
    quota_update(tenant_a, storage_bytes=100)
    tenant = tenant_a.tenant.id
    assert storage_reserve(tenant_id=tenant, size=60) is True
    assert storage_reserve(tenant_id=tenant, size=41) is False  # refused: nothing counted
    assert storage_usage(tenant) == (60, 100)
    assert storage_reserve(tenant_id=tenant, size=40) is True
    assert storage_usage(tenant) == (100, 100)
    storage_release(tenant_id=tenant, size=30)
    assert storage_usage(tenant) == (70, 100)
    storage_release(tenant_id=tenant, size=1000)  # never below zero
    assert storage_usage(tenant) == (0, 100)


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_never_pass_the_limit(tenant_a):
    quota_update(tenant_a, storage_bytes=1000)
    barrier = threading.Barrier(10)
    read_limit = services._storage_limit

    def limit_then_pause(tenant_id):
        # Widens the gap between reading the usage and writing it, so that a reservation
        # without the row lock would over-admit here every time (not a timing test).
        limit = read_limit(tenant_id)
        time.sleep(0.02)
        return limit

    def reserve(_):
        try:
            barrier.wait(timeout=60)
            return storage_reserve(tenant_id=tenant_a.tenant.id, size=300)
        finally:
            connection.close()

    with (
        mock.patch.object(services, "_storage_limit", limit_then_pause),
        ThreadPoolExecutor(max_workers=10) as pool,
    ):
        results = list(pool.map(reserve, range(10), timeout=120))
    assert sorted(results) == [False] * 7 + [True] * 3
    assert _used(tenant_a) == 900


def test_a_tenant_whose_model_storage_is_full_cannot_submit(tenant_a):
    quota_update(tenant_a, storage_bytes=2 * 2**20)
    with scopes_disabled():
        StorageUsage.objects.create(tenant=tenant_a.tenant, bytes_used=2 * 2**20)
    client = api_client_for(enrolled_learner(tenant_a))
    before = db_snapshot()
    response = client.post(
        f"/api/v1/t/alpha/assignments/{tenant_a.assignment.id}/submissions/",
        {"kind": "spec", "spec": XOR_SPEC},
        format="json",
    )
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "quota_exceeded",
            "message": "Your school's model storage is full: 2.0\xa0MB of 2.0\xa0MB used. Ask an "
            "administrator to raise the storage quota or delete old models.",
            "fields": {},
        }
    }
    assert db_snapshot() == before


def test_a_tenant_below_its_storage_limit_submits(tenant_a):
    quota_update(tenant_a, storage_bytes=100)
    with scopes_disabled():
        StorageUsage.objects.create(tenant=tenant_a.tenant, bytes_used=99)
    response = api_client_for(enrolled_learner(tenant_a)).post(
        f"/api/v1/t/alpha/assignments/{tenant_a.assignment.id}/submissions/",
        {"kind": "spec", "spec": XOR_SPEC},
        format="json",
    )
    assert response.status_code == 201


@pytest.mark.calendar
def test_predictions_are_counted_per_day_and_refused_past_the_limit(tenant_a):
    quota_update(tenant_a, predictions_per_day=10)
    tenant = tenant_a.tenant.id
    assert predictions_admit(tenant_id=tenant, samples=4) is True
    assert predictions_admit(tenant_id=tenant, samples=6) is True
    assert predictions_admit(tenant_id=tenant, samples=1) is False  # counts nothing
    with scopes_disabled():
        rows = list(PredictionUsage.objects.values_list("day", "requests", "samples"))
    assert rows == [(timezone.now().date(), 2, 10)]
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        assert predictions_admit(tenant_id=tenant, samples=10) is True  # a new day
    with pytest.raises(ValueError):
        predictions_admit(tenant_id=tenant, samples=0)


def test_the_usage_page_and_quota_api_show_storage_and_predictions(tenant_a):
    quota_update(tenant_a, storage_bytes=2**30, predictions_per_day=500)
    with scopes_disabled():
        StorageUsage.objects.create(tenant=tenant_a.tenant, bytes_used=3 * 2**20)
    predictions_admit(tenant_id=tenant_a.tenant.id, samples=32)
    page = page_client_for(tenant_a.admin.user).get("/t/alpha/usage/").content.decode()
    assert '<dd id="storage-used">3.0\xa0MB of 1.0\xa0GB</dd>' in page
    assert '<dd id="predictions-today">32 of 500 samples, in 1 requests</dd>' in page
    body = api_client_for(tenant_a.admin.user).get("/api/v1/t/alpha/quota/").json()
    assert (body["storage_bytes"], body["predictions_per_day"]) == (2**30, 500)
    assert body["artifacts"] == {
        "storage_used": 3 * 2**20,
        "storage_limit": 2**30,
        "predictions_requests": 1,
        "predictions_samples": 32,
        "predictions_limit": 500,
    }
