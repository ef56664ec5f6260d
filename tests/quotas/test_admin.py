"""The Django admin: platform administrators edit a tenant's quota through the same checks as
the API; the ledger is read-only there."""

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from apps.quotas.models import LedgerEntry, TenantQuota
from tests.conftest import page_client_for
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db


def _form(**overrides) -> dict:
    values = {
        "period": "month",
        "gpu_seconds": "7200",
        "max_running_jobs": "4",
        "max_queued_jobs": "100",
        "max_seconds_per_job": "600",
        "learner_gpu_seconds_per_day": "",
        "pools": '["gpu"]',
        "storage_bytes": str(2**30),
        "predictions_per_day": "1000",
    }
    return {**values, **overrides}


def _change_url(world) -> str:
    return reverse("admin:quotas_tenantquota_change", args=[world.tenant.pk])


def test_a_platform_admin_edits_a_quota_in_the_admin(tenant_a, platform_admin):
    response = page_client_for(platform_admin).post(_change_url(tenant_a), _form())
    assert response.status_code == 302
    with scopes_disabled():
        quota = TenantQuota.objects.get(tenant=tenant_a.tenant)
    assert (quota.gpu_seconds, quota.max_running_jobs, quota.pools) == (7200, 4, ["gpu"])


def test_an_unknown_pool_or_a_zero_is_refused_in_the_admin_and_changes_nothing(
    tenant_a, platform_admin
):
    client = page_client_for(platform_admin)
    before = db_snapshot()
    response = client.post(_change_url(tenant_a), _form(pools='["tpu"]', gpu_seconds="0"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["pools"] == ["Unknown pool(s): tpu. Known pools: gpu."]
    assert errors["gpu_seconds"] == ["Must be a whole number of at least 1."]
    assert db_snapshot() == before


def test_the_ledger_is_read_only_in_the_admin(tenant_a, platform_admin):
    client = page_client_for(platform_admin)
    with scopes_disabled():
        entry = LedgerEntry.objects.first()
    before = db_snapshot()
    assert client.get(reverse("admin:quotas_ledgerentry_add")).status_code == 403
    change = reverse("admin:quotas_ledgerentry_change", args=[entry.pk])
    assert client.post(change, {"used": "0", "reserved": "0"}).status_code == 403
    delete = reverse("admin:quotas_ledgerentry_delete", args=[entry.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert db_snapshot() == before
