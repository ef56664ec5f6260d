"""The pool reads a model's ONNX bytes by (tenant, blob) through the trained-models app: the
blob row of that tenant, its file through Django storage, size-capped and sha256-verified."""

from django.core.exceptions import ValidationError
from django.db import close_old_connections
from django_scopes import scope

from apps.serving.inference.cache import ModelUnusable


def artifact_read(tenant_id: str, blob_id: str) -> bytes:
    from apps.trained_models.models import ArtifactBlob
    from apps.trained_models.services import artifact_open

    try:
        with scope(tenant=tenant_id):
            try:
                blob = ArtifactBlob.objects.get(tenant_id=tenant_id, id=blob_id, kind="onnx")
            except (ArtifactBlob.DoesNotExist, ValidationError, ValueError):
                raise ModelUnusable("not_found", "no such ONNX artifact") from None
            try:
                return artifact_open(blob)
            except Exception as exc:  # whatever the verification raises: the file is unusable
                raise ModelUnusable("artifact_invalid", f"the artifact is unusable: {exc}") from exc
    finally:
        close_old_connections()  # this runs in an executor thread: give its connection back
