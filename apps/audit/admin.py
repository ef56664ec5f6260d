"""The audit log in the Django admin: read-only, like the log itself."""

from django.contrib import admin

from apps.audit.models import AuditEntry
from apps.core.admin import ReadOnlyAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tenant", "actor_email", "action", "target_type", "target_id"]
    list_filter = ["action"]
    search_fields = ["actor_email", "action", "target_id"]
