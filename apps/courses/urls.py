from django.urls import path

from apps.courses import teacher_views as teach
from apps.courses import views

# The course pages that read runs, grades or mastery are routed by apps/jobs/urls.py and
# apps/learning/urls.py, under the same paths.
T = "t/<slug:tenant_slug>/"
C = f"{T}teach/courses/<uuid:course_id>/"

urlpatterns = [
    path(f"{T}courses/", views.my_courses_page, name="my-courses"),
    path(f"{T}courses/join/", views.course_join, name="course-join"),
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
]
