from django.urls import path

from apps.console import views

urlpatterns = [
    path("console/", views.console_home, name="console"),
    path("console/tenants/new/", views.tenant_create, name="console-tenant-create"),
    path("console/tenants/<slug:slug>/quota/", views.quota_edit, name="console-tenant-quota"),
    path(
        "console/tenants/<slug:slug>/suspend/", views.tenant_suspend, name="console-tenant-suspend"
    ),
    path(
        "console/tenants/<slug:slug>/reactivate/",
        views.tenant_reactivate,
        name="console-tenant-reactivate",
    ),
    path("console/jobs/<uuid:job_id>/cancel/", views.job_cancel, name="console-job-cancel"),
]
