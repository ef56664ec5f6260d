"""The audit log: one append-only row per administrative action (who, what, before and after).

A row with a tenant belongs to that tenant (its administrators read it); a row without one is a
platform action (creating or suspending a tenant), read by platform administrators only.
"""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django_scopes import ScopedManager


class AuditEntryImmutable(Exception):
    """Audit rows are written once and never changed or deleted through the ORM."""


class AuditEntry(models.Model):
    # A sequence, so "newest first" is exact even for rows written in one transaction.
    id = models.BigAutoField(primary_key=True)
    # By name: the audit log sits below the tenants app, which records into it.
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept as written, so the row still says who acted after their account is gone.
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="audit_tenant_newest"),
            models.Index(fields=["action", "-id"], name="audit_action_newest"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_email or 'system'} {self.action} {self.target_type}:{self.target_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditEntryImmutable("An audit entry cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditEntryImmutable("An audit entry cannot be deleted.")
