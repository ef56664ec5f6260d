from django.urls import path

from apps.jobs import apis, assignment_apis

T = "t/<slug:tenant_slug>/"

urlpatterns = [
    path(
        f"{T}assignments/<uuid:assignment_id>/",
        assignment_apis.AssignmentDetailApi.as_view(),
        name="api-assignment",
    ),
    path(
        f"{T}me/assignments/",
        assignment_apis.MyAssignmentListApi.as_view(),
        name="api-my-assignments",
    ),
    path(
        f"{T}assignments/<uuid:assignment_id>/submissions/",
        apis.AssignmentSubmissionListApi.as_view(),
        name="api-assignment-submissions",
    ),
    path(
        f"{T}assignments/<uuid:assignment_id>/validate/",
        apis.SpecValidateApi.as_view(),
        name="api-assignment-validate",
    ),
    path(
        f"{T}assignments/<uuid:assignment_id>/leaderboard/",
        apis.LeaderboardApi.as_view(),
        name="api-assignment-leaderboard",
    ),
    path(f"{T}specs/validate/", apis.DatasetSpecValidateApi.as_view(), name="api-spec-validate"),
    path(f"{T}submissions/", apis.SubmissionListApi.as_view(), name="api-submissions"),
    path(
        f"{T}submissions/<uuid:submission_id>/",
        apis.SubmissionDetailApi.as_view(),
        name="api-submission",
    ),
    path(
        f"{T}submissions/<uuid:submission_id>/grade/",
        apis.GradeOverrideApi.as_view(),
        name="api-submission-grade",
    ),
    path(f"{T}jobs/<uuid:job_id>/", apis.JobDetailApi.as_view(), name="api-job"),
    path(f"{T}jobs/<uuid:job_id>/events/", apis.JobEventListApi.as_view(), name="api-job-events"),
    path(f"{T}jobs/<uuid:job_id>/cancel/", apis.JobCancelApi.as_view(), name="api-job-cancel"),
    path(
        f"{T}jobs/<uuid:job_id>/socket-ticket/",
        apis.JobSocketTicketApi.as_view(),
        name="api-job-socket-ticket",
    ),
]
