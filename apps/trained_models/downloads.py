"""The one way a stored artifact leaves Aula: a FileResponse of its checked bytes, for the API
and the run page alike (each has checked who may see the model first)."""

import io

from django.http import FileResponse
from django.utils.text import slugify

from apps.trained_models.models import ArtifactKind, TrainedModel
from apps.trained_models.services import artifact_open

SUFFIXES = {ArtifactKind.ONNX: "onnx", ArtifactKind.SAFETENSORS: "safetensors"}


def download_filename(model: TrainedModel, kind: str) -> str:
    """e.g. "xor-at-alpha-1a2b3c4d.onnx": the exercise, the model's short id, the format."""
    return f"{slugify(model.exercise.title) or 'model'}-{str(model.id)[:8]}.{SUFFIXES[kind]}"


def artifact_response(model: TrainedModel, kind: str) -> FileResponse | None:
    """The model's file of `kind` as an attachment; None when the model has none of that kind
    (a run that gave no weights). ArtifactCorrupt when the stored bytes are not its own."""
    blob = model.onnx if kind == ArtifactKind.ONNX else model.weights
    if blob is None:
        return None
    response = FileResponse(
        io.BytesIO(artifact_open(blob)),
        as_attachment=True,
        filename=download_filename(model, kind),
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
