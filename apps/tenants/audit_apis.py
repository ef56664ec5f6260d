"""Audit log API: a tenant's entries for its administrators (/t/<slug>/audit/) and every entry,
platform actions included, for platform administrators (/platform/audit/). Newest first.
It lives here, not in the audit app, because it answers by the tenants app's permissions and
the audit log sits below the tenants app."""

from django_scopes import scopes_disabled
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from apps.audit.selectors import audit_list
from apps.core.api.pagination import PageNumberPagination
from apps.core.api.views import ApiView
from apps.tenants.permissions import PlatformAdmin, TenantAdmin

ACTION_PARAMETER = OpenApiParameter(
    "action", str, description="Only entries of this action, e.g. membership.role_set"
)


class AuditEntryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_email", allow_blank=True)
    action = serializers.CharField()
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class PlatformAuditEntryOutputSerializer(AuditEntryOutputSerializer):
    tenant = serializers.CharField(source="tenant.slug", allow_null=True, default=None)


class TenantAuditListApi(ApiView):
    """The tenant's audit log, newest first, for its administrators."""

    pagination_class = PageNumberPagination
    permission_classes = [*ApiView.permission_classes, TenantAdmin]

    @extend_schema(parameters=[ACTION_PARAMETER], responses=AuditEntryOutputSerializer(many=True))
    def get(self, request, tenant_slug):
        rows = audit_list(tenant=request.tenant, action=request.query_params.get("action"))
        return self.paginated(request, rows, AuditEntryOutputSerializer)


class PlatformAuditListApi(ApiView):
    """The platform's audit log (tenants created, suspended, their quotas), newest first,
    for platform administrators."""

    pagination_class = PageNumberPagination
    permission_classes = [*ApiView.permission_classes, PlatformAdmin]

    @extend_schema(
        parameters=[ACTION_PARAMETER], responses=PlatformAuditEntryOutputSerializer(many=True)
    )
    def get(self, request):
        with scopes_disabled():  # the platform's log spans every tenant
            rows = audit_list(action=request.query_params.get("action"))
            return self.paginated(request, rows, PlatformAuditEntryOutputSerializer)
