from django.urls import path

from apps.audit import apis

urlpatterns = [
    path("t/<slug:tenant_slug>/audit/", apis.TenantAuditListApi.as_view(), name="api-audit"),
    path("platform/audit/", apis.PlatformAuditListApi.as_view(), name="api-platform-audit"),
]
