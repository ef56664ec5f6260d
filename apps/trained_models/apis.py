"""Trained models API, under /api/v1/t/<slug>/models/: a model's card and metrics with the
links to its files, and the files themselves (ONNX, safetensors).

Access: the learner who trained the model, the teachers of its course and the tenant's admins;
anyone else, and an id of another tenant, is answered 404 as if it did not exist.
"""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from apps.core.api.errors import answers
from apps.core.api.views import ApiView
from apps.trained_models.downloads import artifact_response
from apps.trained_models.models import ArtifactKind, TrainedModel
from apps.trained_models.selectors import trained_model_get
from apps.trained_models.services import ArtifactCorrupt


class ArtifactOutputSerializer(serializers.Serializer):
    sha256 = serializers.CharField()
    size = serializers.IntegerField(help_text="Bytes.")
    url = serializers.CharField(help_text="Where to download it (this API, the same token).")


def _artifact(model: TrainedModel, kind: str, url_name: str, tenant_slug: str) -> dict | None:
    blob = model.onnx if kind == ArtifactKind.ONNX else model.weights
    if blob is None:
        return None
    url = reverse(url_name, kwargs={"tenant_slug": tenant_slug, "model_id": model.id})
    return {"sha256": blob.sha256, "size": blob.size, "url": url}


class TrainedModelOutputSerializer(serializers.ModelSerializer):
    submission = serializers.UUIDField(source="submission_id")
    learner = serializers.EmailField(source="learner.email")
    course = serializers.UUIDField(source="course_id")
    exercise = serializers.UUIDField(source="exercise_id")
    onnx = serializers.SerializerMethodField()
    weights = serializers.SerializerMethodField()

    class Meta:
        model = TrainedModel
        fields = [
            "id",
            "submission",
            "learner",
            "course",
            "exercise",
            "dataset",
            "parameter_count",
            "card",
            "metrics",
            "onnx",
            "weights",
            "created_at",
            "expires_at",
        ]

    @extend_schema_field(ArtifactOutputSerializer)
    def get_onnx(self, model) -> dict:
        return _artifact(
            model, ArtifactKind.ONNX, "api-trained-model-onnx", self.context["tenant_slug"]
        )

    @extend_schema_field(ArtifactOutputSerializer(allow_null=True))
    def get_weights(self, model) -> dict | None:
        slug = self.context["tenant_slug"]
        return _artifact(model, ArtifactKind.SAFETENSORS, "api-trained-model-weights", slug)


@answers(ArtifactCorrupt)
class ArtifactUnreadable(exceptions.APIException):
    """The stored file is missing or not the bytes it was stored with (nothing is served)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "artifact_unreadable"
    default_detail = "The stored file of this model cannot be read; ask an administrator."

    def __init__(self, detail=None, code=None):
        super().__init__(None, code)  # the service's message names storage internals


class TrainedModelDetailApi(ApiView):
    """A trained model: its card (dataset, input, classes, sizes, sha256s), hidden-test
    metrics, and the links to download its ONNX export and safetensors weights."""

    @extend_schema(responses=TrainedModelOutputSerializer)
    def get(self, request, tenant_slug, model_id):
        model = trained_model_get(user=request.user, tenant=request.tenant, model_id=model_id)
        context = {"tenant_slug": request.tenant.slug}
        return Response(TrainedModelOutputSerializer(model, context=context).data)


def _binary(description: str) -> dict:
    return {(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description)}


class _DownloadApi(ApiView):
    kind: str
    raises = {"get": [ArtifactUnreadable]}

    def get(self, request, tenant_slug, model_id):
        model = trained_model_get(user=request.user, tenant=request.tenant, model_id=model_id)
        response = artifact_response(model, self.kind)
        if response is None:
            raise exceptions.NotFound("This model has no weights file.")
        return response


class TrainedModelOnnxApi(_DownloadApi):
    """The model's ONNX export (opset fixed, weights embedded, dynamic batch axis)."""

    kind = ArtifactKind.ONNX

    @extend_schema(responses=_binary("The ONNX file, as an attachment."))
    def get(self, request, tenant_slug, model_id):
        return super().get(request, tenant_slug, model_id)


class TrainedModelWeightsApi(_DownloadApi):
    """The model's weights as safetensors; 404 when its run gave none."""

    kind = ArtifactKind.SAFETENSORS

    @extend_schema(responses=_binary("The safetensors file, as an attachment."))
    def get(self, request, tenant_slug, model_id):
        return super().get(request, tenant_slug, model_id)
