from django.urls import path

from apps.trained_models import pages, views

M = "t/<slug:tenant_slug>/models/<uuid:model_id>/"

urlpatterns = [
    path(f"{M}model.onnx", views.onnx_download, name="trained-model-onnx"),
    path(f"{M}weights.safetensors", views.weights_download, name="trained-model-weights"),
    path(f"{M}try/", pages.try_page, name="trained-model-try"),
]
