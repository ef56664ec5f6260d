from django.urls import path

from apps.learning import compare_pages, run_pages, views

T = "t/<slug:tenant_slug>/"
C = f"{T}teach/courses/<uuid:course_id>/"

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
    path(T, views.tenant_home, name="tenant-home"),
    path(f"{T}lessons/<uuid:lesson_id>/", views.lesson_page, name="lesson"),
    path(f"{C}mastery/", views.mastery_page, name="teach-mastery"),
    path(f"{C}mastery/refit/", views.mastery_refit, name="teach-mastery-refit"),
    path(f"{T}tutor/", views.tutor_settings_page, name="tutor-settings"),
    path(
        f"{T}notices/<int:notice_id>/dismiss/",
        views.grade_notice_dismiss,
        name="grade-notice-dismiss",
    ),
    path(f"{T}models/compare/", compare_pages.compare_page, name="models-compare"),
]
