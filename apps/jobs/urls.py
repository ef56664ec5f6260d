from django.urls import path

from apps.jobs import learner_views, teacher_views, usage_views

T = "t/<slug:tenant_slug>/"
C = f"{T}teach/courses/<uuid:course_id>/"

urlpatterns = [
    # Course pages over attempts and grades (the rest of the course pages: apps/courses/urls.py)
    path(f"{T}assignments/<uuid:assignment_id>/", learner_views.assignment_page, name="assignment"),
    path(f"{T}courses/<uuid:course_id>/", learner_views.my_course_page, name="my-course"),
    path(
        f"{C}assignments/<uuid:assignment_id>/leaderboard/",
        teacher_views.leaderboard_page,
        name="teach-leaderboard",
    ),
    path(
        f"{C}assignments/<uuid:assignment_id>/regrade/",
        teacher_views.regrade_start,
        name="teach-regrade",
    ),
    path(f"{C}gradebook/", teacher_views.gradebook_page, name="teach-gradebook"),
    path(f"{C}gradebook.csv", teacher_views.gradebook_csv, name="teach-gradebook-csv"),
    # The tenant administrators' usage page (the quota's, with the jobs in flight)
    path(f"{T}usage/", usage_views.usage_page, name="tenant-usage"),
]
