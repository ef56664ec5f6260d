"""The teachers' dataset pages, under /t/<slug>/teach/datasets/ (apps/datasets/views.py)."""

from django.urls import path

from apps.datasets import views

D = "t/<slug:tenant_slug>/teach/datasets/"
V = D + "<slug:dataset_slug>/versions/<int:number>/"

urlpatterns = [
    path(D, views.datasets_page, name="teach-datasets"),
    path(
        f"{D}<slug:dataset_slug>/versions/new/",
        views.version_new_page,
        name="teach-dataset-version-new",
    ),
    path(V, views.version_page, name="teach-dataset-version"),
    path(f"{V}progress/", views.version_progress, name="teach-dataset-version-progress"),
    path(f"{V}preview/", views.version_preview_page, name="teach-dataset-version-preview"),
    path(
        f"{V}images/<int:class_index>/<int:position>.png",
        views.version_sample_image,
        name="teach-dataset-version-image",
    ),
    path(f"{V}delete/", views.version_delete, name="teach-dataset-version-delete"),
]
