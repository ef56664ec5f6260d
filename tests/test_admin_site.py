"""The Django admin works for platform administrators on every registered model, tenant-scoped
ones included (scopes are lifted under /admin/ for staff only)."""

import pytest
from django.contrib import admin
from django.urls import reverse
from django_scopes import scopes_disabled

from tests.conftest import page_client_for


def _registered():
    return sorted(admin.site._registry, key=lambda m: m._meta.label)


@pytest.mark.django_db
@pytest.mark.parametrize("model", _registered(), ids=lambda m: m._meta.label)
def test_a_platform_admin_can_use_every_model_page(model, platform_admin, tenant_a, rf):
    client = page_client_for(platform_admin)
    opts = model._meta
    prefix = f"admin:{opts.app_label}_{opts.model_name}"
    assert client.get(reverse(f"{prefix}_changelist")).status_code == 200
    request = rf.get("/admin/")
    request.user = platform_admin
    can_add = admin.site._registry[model].has_add_permission(request)
    assert client.get(reverse(f"{prefix}_add")).status_code == (200 if can_add else 403)
    with scopes_disabled():
        instance = model._default_manager.first()
    if instance is not None:
        assert client.get(reverse(f"{prefix}_change", args=[instance.pk])).status_code == 200


def test_tenant_scoped_models_are_registered():
    labels = {m._meta.label for m in _registered()}
    assert {"tenants.Tenant", "tenants.Membership", "tenants.Invitation", "accounts.User"} <= labels
