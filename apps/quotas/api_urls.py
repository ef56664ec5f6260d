from django.urls import path

from apps.quotas import apis

urlpatterns = [
    path("t/<slug:tenant_slug>/quota/", apis.TenantQuotaApi.as_view(), name="api-tenant-quota"),
    path("t/<slug:tenant_slug>/usage/", apis.UsageApi.as_view(), name="api-tenant-usage"),
    path(
        "platform/tenants/<slug:slug>/quota/",
        apis.PlatformQuotaApi.as_view(),
        name="api-platform-tenant-quota",
    ),
]
