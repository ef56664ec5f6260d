"""Writing the audit log. Administrative services call `audit_record` inside their own
transaction, so an action and its audit row commit (or roll back) together."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models, transaction

from apps.audit.models import AuditEntry

if TYPE_CHECKING:  # the tenants app is above the audit log
    from apps.tenants.models import Tenant


def audit_record(
    *,
    actor,
    action: str,
    target: models.Model,
    before: dict | None,
    after: dict | None,
    tenant: Tenant | None = None,
) -> AuditEntry:
    """Append one row. `tenant` is None for platform actions (visible to platform admins only);
    `actor` is None for the system (a seed command, a migration)."""
    if not transaction.get_connection().in_atomic_block:
        # Called outside a transaction, the row could commit without the action, or the reverse.
        raise RuntimeError("audit_record must run inside the action's transaction.")
    entry = AuditEntry(
        tenant=tenant,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_email=getattr(actor, "email", "") or "",
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        before=before,
        after=after,
    )
    # save(), not the scoped manager's create(): platform rows are written outside any scope.
    entry.save(force_insert=True)
    return entry
