"""What every app's Django admin shares: a read-only model admin, for rows that change only
through their services (jobs, the ledger, the audit log, learning records)."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
