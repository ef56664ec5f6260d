from django.urls import path

from apps.learning import run_pages, views

urlpatterns = [
    path("t/<slug:tenant_slug>/runs/<uuid:submission_id>/", run_pages.run_page, name="run"),
    path(
        "t/<slug:tenant_slug>/runs/<uuid:submission_id>/result/",
        run_pages.run_result,
        name="run-result",
    ),
    path(
        "t/<slug:tenant_slug>/runs/<uuid:submission_id>/grade/",
        run_pages.grade_override,
        name="run-grade",
    ),
    path(
        "t/<slug:tenant_slug>/jobs/<uuid:job_id>/cancel/", run_pages.job_cancel, name="job-cancel"
    ),
    path("t/<slug:tenant_slug>/tutor/", views.tutor_settings_page, name="tutor-settings"),
]
