"""A run's trained model, made into the artifact it keeps (runtime/artifacts): exported here for
a spec (the trusted side trains it), received as bytes from the sandbox for code. Either way the
bytes are checked (check_onnx, check_safetensors) before anything uses them, and the run is
graded on the checked ONNX file itself, run by onnxruntime on the hidden test inputs: the model
served and downloaded is the model that was graded. A model that cannot be exported or fails
the checks is graded as before (the trainer's or the sandbox's predictions) and not kept; the
run page says why."""

import logging
from dataclasses import dataclass

import torch
from django.utils.translation import gettext

from apps.courses.models import ScoresShown
from runtime.artifacts.card import model_card
from runtime.artifacts.check import (
    ArtifactInvalid,
    OnnxSummary,
    check_onnx,
    check_safetensors,
)
from runtime.artifacts.export import ExportFailed, export_onnx, weights_safetensors
from runtime.artifacts.predict import predict_classes
from runtime.datasets import PRIVATE_PART, PUBLIC_PART, Split
from runtime.evaluate import metrics_from_predictions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunArtifact:
    """Checked files of a run's model (onnx None: nothing to keep, `not_kept` says why)."""

    onnx: bytes | None = None
    weights: bytes | None = None
    summary: OnnxSummary | None = None
    not_kept: str = ""

    def card(self, *, info, training, metrics: dict, job) -> dict:
        source = {
            "submission": str(job.submission_id),
            "job": str(job.id),
            "attempt": job.submission.attempt,
            "kind": job.submission.kind,
        }
        return model_card(
            info=info,
            training=training,
            summary=self.summary,
            onnx=self.onnx,
            weights=self.weights,
            metrics=metrics,
            source=source,
        )


def artifact_of_spec_model(model, *, info, training) -> RunArtifact:
    """Export the trained spec model (a CPU copy; the model is left as it is) and check it."""
    try:
        onnx = export_onnx(model, info=info, training=training)
        weights = weights_safetensors(model)
    except ExportFailed as exc:
        return RunArtifact(not_kept=str(exc))
    return _checked(onnx, weights, info=info)


def artifact_of_code_run(result, *, info) -> RunArtifact:
    """The files the sandbox brought back (untrusted bytes), checked."""
    if result.onnx is None:
        return RunArtifact(
            not_kept=result.export_error
            or gettext("Your model was graded, but the sandbox brought back no model file.")
        )
    return _checked(result.onnx, result.weights, info=info)


def _checked(onnx: bytes, weights: bytes | None, *, info) -> RunArtifact:
    try:
        summary = check_onnx(onnx, info=info)
    except ArtifactInvalid as exc:
        return RunArtifact(
            not_kept=gettext("Your model's ONNX file was not kept: %(why)s") % {"why": exc.message}
        )
    if weights is not None:
        try:
            check_safetensors(weights)
        except ArtifactInvalid as exc:  # the ONNX file is kept; the weights file is not
            log.info("weights refused: %s", exc.message)
            weights = None
    return RunArtifact(onnx=onnx, weights=weights, summary=summary)


def metrics_of_artifact(artifact: RunArtifact, *, test, info, metrics: dict) -> dict:
    """`metrics` with the hidden-test figures (accuracy, per class, confusion matrix) measured on
    the artifact's ONNX file by onnxruntime, and its size, when there is one."""
    if artifact.onnx is None:
        return metrics
    predictions = predict_classes(artifact.onnx, test.x)
    measured = metrics_from_predictions(test.y, predictions, class_names=info.class_names)
    return {
        **metrics,
        **measured,
        "parameter_count": metrics.get("parameter_count", artifact.summary.parameter_count),
        "onnx_size_bytes": len(artifact.onnx),
        "graded_on": "onnx",
    }


# --- The hidden test parts ----------------------------------------------------------------------
# A test split drawn with the assignment's secret (an uploaded dataset's) holds two parts: the
# private one is the grade (every metric above is measured on it), the public one is scored the
# same way and kept as metrics["public"], for the leaderboard during the assignment.

PUBLIC_FIGURES = ("accuracy", "per_class_accuracy", "test_samples")


def part_masks(data) -> dict[int, torch.Tensor]:
    """Which test samples are in each part (all private when the split has one part)."""

    if data.test_part is None:
        everything = torch.ones(len(data.test.y), dtype=torch.bool)
        return {PRIVATE_PART: everything, PUBLIC_PART: ~everything}
    part = data.test_part.cpu()
    return {PRIVATE_PART: part == PRIVATE_PART, PUBLIC_PART: part == PUBLIC_PART}


def hidden_parts(data) -> tuple[Split, Split | None]:
    """(the graded test split, the public one or None)."""
    if data.test_part is None:
        return data.test, None
    masks = part_masks(data)
    device = data.test.y.device

    def part(mask):
        mask = mask.to(device)
        return Split(data.test.x[mask], data.test.y[mask])

    return part(masks[PRIVATE_PART]), part(masks[PUBLIC_PART])


def public_metrics(artifact: RunArtifact, public: Split, info, predictions) -> dict:
    """The public part's figures, measured as the grade is: on the ONNX file when there is one,
    else on `predictions()` (the trained model's or the code run's)."""
    predicted = predict_classes(artifact.onnx, public.x) if artifact.onnx else predictions()
    measured = metrics_from_predictions(public.y, predicted, class_names=info.class_names)
    return {name: measured[name] for name in PUBLIC_FIGURES}


# What a trained model's card and row keep of the metrics. Of an assignment that keeps its grade
# until the due date, no test figure: the model's pages and API are open to its learner before
# then, and the grade and the leaderboard are where the parts' scores are shown.
MODEL_FIGURES_OF_HIDDEN_PARTS = (
    "metric",
    "class_names",
    "device",
    "graded_on",
    "parameter_count",
    "model_size_bytes",
    "latency_seconds_per_sample",
)


def model_figures(metrics: dict, *, assignment) -> dict:
    """`metrics` as the trained model of a run for `assignment` keeps them (above)."""
    if "public" not in metrics or assignment.scores_shown == ScoresShown.GRADE_LIVE:
        return metrics
    kept = {name: metrics[name] for name in MODEL_FIGURES_OF_HIDDEN_PARTS if name in metrics}
    return {**kept, "test_figures": "hidden"}
