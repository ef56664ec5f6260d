from django.urls import path

from apps.trained_models import apis

M = "t/<slug:tenant_slug>/models/<uuid:model_id>/"

urlpatterns = [
    path(M, apis.TrainedModelDetailApi.as_view(), name="api-trained-model"),
    path(f"{M}model.onnx", apis.TrainedModelOnnxApi.as_view(), name="api-trained-model-onnx"),
    path(
        f"{M}weights.safetensors",
        apis.TrainedModelWeightsApi.as_view(),
        name="api-trained-model-weights",
    ),
]
