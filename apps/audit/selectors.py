"""Reading the audit log, newest first."""

from django.db.models import QuerySet

from apps.audit.models import AuditEntry
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
