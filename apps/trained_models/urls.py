from django.urls import path

from apps.trained_models import views

M = "t/<slug:tenant_slug>/models/<uuid:model_id>/"

urlpatterns = [
    path(f"{M}model.onnx", views.onnx_download, name="trained-model-onnx"),
    path(f"{M}weights.safetensors", views.weights_download, name="trained-model-weights"),
]
