"""Django admin for platform administrators: tenants' quotas (editable, through the same checks
and service as the API) and the ledger (read-only: a balance is the sum of its rows)."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from apps.core.admin import ReadOnlyAdmin
from apps.quotas.models import LedgerEntry, TenantQuota
from apps.quotas.services import QUOTA_FIELDS, quota_check, quota_set


class TenantQuotaForm(forms.ModelForm):
    class Meta:
        model = TenantQuota
        fields = ["tenant", *QUOTA_FIELDS]

    def _post_clean(self):
        super()._post_clean()
        try:
            quota_check(self.instance)
        except ValidationError as exc:
            self._update_errors(exc)


@admin.register(TenantQuota)
class TenantQuotaAdmin(admin.ModelAdmin):
    form = TenantQuotaForm
    list_display = [
        "tenant",
        "period",
        "gpu_seconds",
        "max_running_jobs",
        "max_queued_jobs",
        "max_seconds_per_job",
        "period_started_at",
    ]
    list_filter = ["period"]
    search_fields = ["tenant__slug", "tenant__name"]
    list_select_related = ["tenant"]
    readonly_fields = ["period_started_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # A quota belongs to its tenant for good.
        return [*self.readonly_fields, "tenant"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        values = {name: getattr(obj, name) for name in QUOTA_FIELDS}
        saved = quota_set(tenant=obj.tenant, actor=request.user, **values)
        obj.period_started_at = saved.period_started_at

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger's periods hang on it; a tenant without one gets the defaults


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "tenant",
        "kind",
        "job",
        "learner",
        "reserved",
        "used",
        "period_started_at",
        "created_at",
    ]
    list_filter = ["kind", "tenant"]
    search_fields = ["learner__email", "job__id"]
    list_select_related = ["tenant", "learner"]
