"""URL map: pages, the versioned API, its schema, health probes and the Django admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core import health

api_v1 = [
    path("", include("apps.accounts.api_urls")),
    path("", include("apps.tenants.api_urls")),
    path("", include("apps.courses.api_urls")),
    path("", include("apps.jobs.api_urls")),
    path("", include("apps.console.api_urls")),
    path("", include("apps.quotas.api_urls")),
    path("", include("apps.learning.api_urls")),
    path("", include("apps.trained_models.api_urls")),
    path("", include("apps.serving.api_urls")),
    path("", include("apps.datasets.api_urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("apps.accounts.urls")),
    path("", include("apps.tenants.urls")),
    path("", include("apps.courses.urls")),
    path("", include("apps.jobs.urls")),
    path("", include("apps.console.urls")),
    path("", include("apps.learning.urls")),
    path("", include("apps.trained_models.urls")),
    path("", include("apps.datasets.urls")),
]

handler400 = "apps.core.errors.bad_request"
handler403 = "apps.core.errors.permission_denied"
handler404 = "apps.core.errors.page_not_found"
handler500 = "apps.core.errors.server_error"
