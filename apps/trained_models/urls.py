from django.urls import path

from apps.trained_models import pages, registry, views

M = "t/<slug:tenant_slug>/models/<uuid:model_id>/"

urlpatterns = [
    path(f"{M}model.onnx", views.onnx_download, name="trained-model-onnx"),
    path(f"{M}weights.safetensors", views.weights_download, name="trained-model-weights"),
    path(f"{M}try/", pages.try_page, name="trained-model-try"),
    # The course's model registry and its showcase (apps/trained_models/registry.py)
    path(
        "t/<slug:tenant_slug>/courses/<uuid:course_id>/models/",
        registry.registry_page,
        name="course-models",
    ),
    path(
        "t/<slug:tenant_slug>/courses/<uuid:course_id>/models/<uuid:model_id>/showcase/",
        registry.showcase_choose_view,
        name="course-models-showcase",
    ),
]
