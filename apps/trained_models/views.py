"""The run page's download links: a trained model's files over the session (the same rule of
who sees a model as the API: apps/trained_models/selectors.py)."""

from django.http import Http404
from django.views.decorators.http import require_safe

from apps.trained_models.downloads import artifact_response
from apps.trained_models.models import ArtifactKind
from apps.trained_models.selectors import trained_model_get


def _download(request, model_id, kind):
    model = trained_model_get(user=request.user, tenant=request.tenant, model_id=model_id)
    response = artifact_response(model, kind)
    if response is None:
        raise Http404("This model has no weights file.")
    return response


@require_safe
def onnx_download(request, tenant_slug, model_id):
    return _download(request, model_id, ArtifactKind.ONNX)


@require_safe
def weights_download(request, tenant_slug, model_id):
    return _download(request, model_id, ArtifactKind.SAFETENSORS)
