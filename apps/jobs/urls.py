from django.urls import path

from apps.jobs import views

urlpatterns = [
    path("t/<slug:tenant_slug>/runs/<uuid:submission_id>/", views.run_page, name="run"),
    path(
        "t/<slug:tenant_slug>/runs/<uuid:submission_id>/result/",
        views.run_result,
        name="run-result",
    ),
    path(
        "t/<slug:tenant_slug>/runs/<uuid:submission_id>/grade/",
        views.grade_override,
        name="run-grade",
    ),
    path("t/<slug:tenant_slug>/jobs/<uuid:job_id>/cancel/", views.job_cancel, name="job-cancel"),
]
