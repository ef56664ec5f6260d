from django.urls import path

from apps.courses import apis

T = "t/<slug:tenant_slug>/"
COURSE = f"{T}courses/<uuid:course_id>/"

urlpatterns = [
    path(f"{T}courses/", apis.CourseListApi.as_view(), name="api-courses"),
    path(COURSE, apis.CourseDetailApi.as_view(), name="api-course"),
    path(f"{T}courses/join/", apis.CourseJoinApi.as_view(), name="api-course-join"),
    path(f"{COURSE}publish/", apis.CoursePublishApi.as_view(), name="api-course-publish"),
    path(f"{COURSE}join-code/", apis.CourseJoinCodeApi.as_view(), name="api-course-join-code"),
    path(f"{COURSE}lessons/", apis.LessonListApi.as_view(), name="api-lessons"),
    path(f"{COURSE}lessons/<uuid:lesson_id>/", apis.LessonDetailApi.as_view(), name="api-lesson"),
    path(f"{COURSE}exercises/", apis.ExerciseListApi.as_view(), name="api-exercises"),
    path(f"{COURSE}assignments/", apis.AssignmentListApi.as_view(), name="api-assignments"),
    path(f"{COURSE}enrollments/", apis.EnrollmentListApi.as_view(), name="api-enrollments"),
    path(
        f"{COURSE}enrollments/<uuid:enrollment_id>/",
        apis.EnrollmentDetailApi.as_view(),
        name="api-enrollment",
    ),
    path(f"{T}skills/", apis.SkillListApi.as_view(), name="api-skills"),
    path(f"{T}skills/<uuid:skill_id>/", apis.SkillDetailApi.as_view(), name="api-skill"),
    path(
        f"{T}exercises/<uuid:exercise_id>/", apis.ExerciseDetailApi.as_view(), name="api-exercise"
    ),
    path(
        f"{T}assignments/<uuid:assignment_id>/publish/",
        apis.AssignmentPublishApi.as_view(),
        name="api-assignment-publish",
    ),
]
