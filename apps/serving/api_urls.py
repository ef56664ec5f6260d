from django.urls import path

from apps.serving import apis

urlpatterns = [
    path(
        "t/<slug:tenant_slug>/models/<uuid:model_id>/predict",
        apis.PredictApi.as_view(),
        name="api-model-predict",
    ),
    path(
        "t/<slug:tenant_slug>/models/<uuid:model_id>/keys/",
        apis.ModelKeysApi.as_view(),
        name="api-model-keys",
    ),
    path(
        "t/<slug:tenant_slug>/models/<uuid:model_id>/keys/<uuid:key_id>/",
        apis.ModelKeyApi.as_view(),
        name="api-model-key",
    ),
]
