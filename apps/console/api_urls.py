from django.urls import path

from apps.console import apis

urlpatterns = [
    path("platform/workers/", apis.PlatformWorkerListApi.as_view(), name="api-platform-workers"),
    path("platform/queues/", apis.PlatformQueueDepthApi.as_view(), name="api-platform-queues"),
    path(
        "platform/jobs/<uuid:job_id>/cancel/",
        apis.PlatformJobCancelApi.as_view(),
        name="api-platform-job-cancel",
    ),
]
