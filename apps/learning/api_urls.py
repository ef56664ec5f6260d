from django.urls import path

from apps.learning import apis

T = "t/<slug:tenant_slug>/"

urlpatterns = [
    path(f"{T}xapi/statements/", apis.StatementsApi.as_view(), name="api-statements"),
    path(f"{T}me/mastery/", apis.MyMasteryApi.as_view(), name="api-my-mastery"),
    path(
        f"{T}courses/<uuid:course_id>/mastery/",
        apis.CourseMasteryApi.as_view(),
        name="api-course-mastery",
    ),
    path(f"{T}knowledge-tracing/fit/", apis.FitApi.as_view(), name="api-bkt-fit"),
    path(f"{T}tutor/settings/", apis.TutorSettingsApi.as_view(), name="api-tutor-settings"),
]
