from django.urls import path

from apps.courses import teacher_views as teach
from apps.courses import views

T = "t/<slug:tenant_slug>/"
C = f"{T}teach/courses/<uuid:course_id>/"

urlpatterns = [
    path(f"{T}assignments/<uuid:assignment_id>/", views.assignment_page, name="assignment"),
    path(f"{T}lessons/<uuid:lesson_id>/", views.lesson_page, name="lesson"),
    path(f"{T}courses/", views.my_courses_page, name="my-courses"),
    path(f"{T}courses/join/", views.course_join, name="course-join"),
    path(f"{T}courses/<uuid:course_id>/", views.my_course_page, name="my-course"),
    # Teachers
    path(f"{T}teach/", teach.courses_page, name="teach"),
    path(f"{T}teach/skills/", teach.skills_page, name="teach-skills"),
    path(f"{T}teach/skills/<uuid:skill_id>/", teach.skills_page, name="teach-skill"),
    path(C, teach.course_page, name="teach-course"),
    path(f"{C}publish/", teach.course_publish, name="teach-course-publish"),
    path(f"{C}join-code/", teach.course_join_code, name="teach-course-join-code"),
    path(f"{C}enrollments/", teach.enrollment_add, name="teach-enroll"),
    path(f"{C}lessons/new/", teach.lesson_page, name="teach-lesson-new"),
    path(f"{C}lessons/<uuid:lesson_id>/", teach.lesson_page, name="teach-lesson"),
    path(f"{C}exercises/new/", teach.exercise_page, name="teach-exercise-new"),
    path(f"{C}exercises/<uuid:exercise_id>/", teach.exercise_page, name="teach-exercise"),
    path(f"{C}assignments/new/", teach.assignment_page, name="teach-assignment-new"),
    path(f"{C}assignments/<uuid:assignment_id>/", teach.assignment_page, name="teach-assignment"),
    path(f"{C}assignments/<uuid:assignment_id>/leaderboard/", teach.leaderboard_page,
         name="teach-leaderboard"),
    path(f"{C}gradebook/", teach.gradebook_page, name="teach-gradebook"),
    path(f"{C}mastery/", teach.mastery_page, name="teach-mastery"),
    path(f"{C}mastery/refit/", teach.mastery_refit, name="teach-mastery-refit"),
    path(f"{C}gradebook.csv", teach.gradebook_csv, name="teach-gradebook-csv"),
]  # fmt: skip
