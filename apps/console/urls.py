from django.urls import path

from apps.console import views

urlpatterns = [
    path("console/", views.console_home, name="console"),
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
