from django.urls import path

from apps.datasets import apis

D = "t/<slug:tenant_slug>/datasets/"
V = D + "<slug:dataset_slug>/versions/<int:number>/"

urlpatterns = [
    path(D, apis.DatasetListApi.as_view(), name="api-datasets"),
    path(f"{D}<slug:dataset_slug>/", apis.DatasetDetailApi.as_view(), name="api-dataset"),
    path(
        f"{D}<slug:dataset_slug>/versions/",
        apis.VersionListApi.as_view(),
        name="api-dataset-versions",
    ),
    path(V, apis.VersionDetailApi.as_view(), name="api-dataset-version"),
    path(f"{V}upload", apis.VersionUploadApi.as_view(), name="api-dataset-version-upload"),
]
