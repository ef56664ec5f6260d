"""The prediction API and model API keys, under /api/v1/t/<slug>/models/<id>/: predict (the
model's owner, teachers of its course, or a key for that model), keys (make, list, revoke)."""

import codecs
import json
import time
from datetime import UTC, timedelta

from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework import exceptions, serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.settings import api_settings

from apps.core.api.errors import answers
from apps.core.api.serializers import InputSerializer
from apps.core.api.views import ApiView
from apps.courses.access import course_teaches
from apps.quotas.services import predictions_allowed
from apps.serving import grants, selectors, services
from apps.serving.auth import ModelKeyAuthentication, ModelKeyThrottle
from apps.serving.inference.client import InferenceRefused, InferenceUnavailable
from apps.serving.inputs import BadInput, InputSpec, NonFinite, samples_decode
from apps.serving.models import ModelApiKey
from apps.trained_models.models import TrainedModel
from apps.trained_models.selectors import trained_model_get
from apps.trained_models.texts import model_tokenizer
from runtime.datasets import dataset_info

# --- errors -------------------------------------------------------------------------------------


@answers(services.PredictionQuotaExceeded)
class PredictionQuotaError(exceptions.Throttled):
    """The tenant's daily prediction allowance is used up (until midnight UTC)."""

    default_code = "prediction_quota_exceeded"

    def __init__(self, detail=None):
        now = timezone.now().astimezone(UTC)
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        super().__init__(wait=(midnight - now).total_seconds(), detail=detail)
        self.detail = exceptions.ErrorDetail(str(detail), code=self.default_code)


@answers(InferenceUnavailable)
class InferenceUnavailableError(exceptions.APIException):
    """The inference service is down or not answering; try again shortly."""

    status_code = 503
    default_code = "inference_unavailable"
    default_detail = "The inference service is not answering; try again shortly."


@answers(InferenceRefused)
class ModelFailedError(exceptions.APIException):
    """The model itself failed to run on these inputs (its error is in the message)."""

    status_code = 422
    default_code = "model_failed"
    default_detail = "The model failed while running."


# --- input --------------------------------------------------------------------------------------


class PredictJSONParser(JSONParser):
    """JSON with NaN and Infinity tokens kept as markers, so the error can say where they are."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            return json.load(codecs.getreader(encoding)(stream), parse_constant=NonFinite)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None


@extend_schema_field(
    {
        "type": "array",
        "minItems": 1,
        "description": "One sample per item: numbers, flat or nested as the model's input shape.",
        "items": {"type": "array", "minItems": 1, "items": {}},
    }
)
class _SamplesField(serializers.Field):
    default_error_messages = {"type": "Must be a list of samples."}

    def to_internal_value(self, data):
        if not isinstance(data, list) or not data:
            self.fail("type")
        return data


@extend_schema_field(
    {
        "type": "array",
        "minItems": 1,
        "description": "One base64 PNG or JPEG per sample (image models).",
        "items": {"type": "string"},
    }
)
class _ImagesField(_SamplesField):
    default_error_messages = {"type": "Must be a list of base64 strings."}


@extend_schema_field(
    {
        "type": "array",
        "minItems": 1,
        "description": "One text per sample (models of a text dataset: encoded with the "
        "tokeniser the model was trained with).",
        "items": {"type": "string"},
    }
)
class _TextsField(_SamplesField):
    default_error_messages = {"type": "Must be a list of texts."}


class PredictionOutputSerializer(serializers.Serializer):
    label = serializers.CharField()
    class_index = serializers.IntegerField()
    probabilities = serializers.ListField(child=serializers.FloatField())


class PredictOutputSerializer(serializers.Serializer):
    model = serializers.UUIDField()
    predictions = PredictionOutputSerializer(many=True)
    class_names = serializers.ListField(child=serializers.CharField())


def _seen(request, model_id) -> TrainedModel:
    return trained_model_get(user=request.user, tenant=request.tenant, model_id=model_id)


def _model_seen(request, model_id) -> TrainedModel:
    """The model the caller may use: a key's own model only; for people, the selector's rule
    (reading only the model and its course: a prediction needs no more)."""
    key = request.auth if isinstance(request.auth, ModelApiKey) else None
    if key is not None:
        if key.trained_model_id != model_id:
            raise Http404  # a key sees its one model; others do not exist for it
        return TrainedModel.objects.get(id=model_id)
    access = getattr(request, "tenant_access", None)  # TenantMember's, for this tenant
    return trained_model_get(
        user=request.user, tenant=request.tenant, model_id=model_id, access=access, related=()
    )


class PredictApi(ApiView):
    """Predictions of a trained model for a batch of samples: numbers (`inputs`) or, for image
    models, base64 PNG or JPEG images (`images`, converted to the model's channels and size),
    or, for models of a text dataset, texts (`texts`, encoded with the model's own tokeniser).
    Callers: the model's owner, teachers of its course, or an API key made for this model
    (`Authorization: Bearer <key>`). Each answered sample counts against the tenant's daily
    allowance; refused requests count nothing."""

    authentication_classes = [*api_settings.DEFAULT_AUTHENTICATION_CLASSES, ModelKeyAuthentication]
    throttle_classes = [ModelKeyThrottle]
    parser_classes = [PredictJSONParser]

    class PredictInputSerializer(InputSerializer):
        inputs = _SamplesField(required=False)
        images = _ImagesField(required=False)
        texts = _TextsField(required=False)

    input_serializers = {"post": PredictInputSerializer}
    raises = {"post": [PredictionQuotaError, InferenceUnavailableError, ModelFailedError]}

    @extend_schema(request=PredictInputSerializer, responses=PredictOutputSerializer)
    def post(self, request, tenant_slug, model_id):
        model = _model_seen(request, model_id)
        body = self.validated_input(request)
        info = dataset_info(model.dataset)
        try:
            samples = samples_decode(
                spec=InputSpec.of(info, model_tokenizer(model)),
                inputs=body.get("inputs"),
                images=body.get("images"),
                texts=body.get("texts"),
            )
        except BadInput as exc:
            raise exceptions.ValidationError({exc.field: [exc.message]}) from None
        key = request.auth if isinstance(request.auth, ModelApiKey) else None
        output = services.prediction_run(trained_model=model, samples=samples, key=key)
        answer = services.prediction_answer(model_id=model.id, info=info, output=output)
        if answer is None:
            raise InferenceRefused(
                "model_failed",
                _("the model answered %(got)s classes; its dataset has %(want)s")
                % {"got": output.shape[1], "want": len(info.class_names)},
            )
        _grant_for_fast_path(request, model, key)
        return Response(answer)


def _grant_for_fast_path(request, model: TrainedModel, key: ModelApiKey | None) -> None:
    """Lets the fast path answer this caller's next predictions of this model itself, when the
    request came through it (it read the epochs first) with a token or key as its credential."""
    epochs = getattr(request, "scope", {}).get(grants.EPOCHS_SCOPE_KEY)
    if epochs is None or not isinstance(
        request.successful_authenticator, TokenAuthentication | ModelKeyAuthentication
    ):
        return
    now = time.time()
    expires_at = now + grants.GRANT_TTL_S
    if isinstance(request.auth, AuthToken) and request.auth.expiry is not None:
        expires_at = min(expires_at, request.auth.expiry.timestamp())
    grant = grants.Grant(
        tenant_id=str(model.tenant_id),
        model_id=str(model.id),
        blob_id=str(model.onnx_id),
        dataset=model.dataset,
        allowed=predictions_allowed(model.tenant_id),
        key_id=str(key.pk) if key is not None else None,
        expires_at=expires_at,
        epochs=tuple(epochs),
    )
    authorization = request.META.get("HTTP_AUTHORIZATION", "").encode("latin-1")
    grants.grant_write(authorization=authorization, slug=request.tenant.slug, grant=grant, now=now)


# --- keys ---------------------------------------------------------------------------------------


class KeyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]


class KeyCreatedOutputSerializer(KeyOutputSerializer):
    key = serializers.CharField(help_text="The secret: shown this once, never again.")

    class Meta(KeyOutputSerializer.Meta):
        fields = [*KeyOutputSerializer.Meta.fields, "key"]


def _may_manage(request, model: TrainedModel) -> bool:
    """The owner, and who teaches the model's course (to stop a key being misused)."""
    return model.learner_id == request.user.pk or course_teaches(
        access=request.tenant_access, user=request.user, course=model.course
    )


class ModelKeysApi(ApiView):
    """A model's API keys: GET lists them (the owner and teachers of the course), POST makes one
    (the owner only); the answer to POST carries the secret, shown this once."""

    class KeyCreateInputSerializer(InputSerializer):
        name = serializers.CharField(max_length=100)

    input_serializers = {"post": KeyCreateInputSerializer}

    @extend_schema(responses=KeyOutputSerializer(many=True))
    def get(self, request, tenant_slug, model_id):
        model = _seen(request, model_id)
        if not _may_manage(request, model):
            refusal = _("Only the model's owner and its teachers see its keys.")
            raise exceptions.PermissionDenied(refusal)
        keys = selectors.model_keys_list(trained_model=model)
        return Response(KeyOutputSerializer(keys, many=True).data)

    @extend_schema(request=KeyCreateInputSerializer, responses={201: KeyCreatedOutputSerializer})
    def post(self, request, tenant_slug, model_id):
        model = _seen(request, model_id)
        body = self.validated_input(request)
        if model.learner_id != request.user.pk:
            raise exceptions.PermissionDenied(_("Only the model's owner makes keys for it."))
        key, raw = services.model_key_create(trained_model=model, user=request.user, **body)
        data = KeyOutputSerializer(key).data | {"key": raw}
        return Response(data, status=201)


class ModelKeyApi(ApiView):
    """DELETE revokes the key (the owner and teachers of the course): it stops working at once
    and stays listed with its revoked_at."""

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, tenant_slug, model_id, key_id):
        model = _seen(request, model_id)
        try:
            key = selectors.model_key_get(trained_model=model, key_id=key_id)
        except ModelApiKey.DoesNotExist:
            raise Http404 from None
        if not _may_manage(request, model):
            raise exceptions.PermissionDenied(_("Only the model's owner and teachers revoke keys."))
        services.model_key_revoke(key=key)
        return Response(status=204)
