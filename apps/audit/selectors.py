"""Reading the audit log, newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from apps.audit.models import AuditEntry

if TYPE_CHECKING:  # the tenants app is above the audit log
    from apps.tenants.models import Tenant


def audit_list(*, tenant: Tenant | None = None, action: str | None = None) -> QuerySet:
    """A tenant's entries (call within its scope), or with tenant=None every entry, platform
    rows included (call with scopes disabled)."""
    rows = AuditEntry.objects.select_related("tenant").order_by("-id")
    if tenant is not None:
        rows = rows.filter(tenant=tenant)
    if action:
        rows = rows.filter(action=action)
    return rows
