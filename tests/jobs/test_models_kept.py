"""Every run that trains keeps its model, through the real worker: a spec submission (exported on
the trusted side) and a code submission (exported in the sandbox, checked here) each leave a
TrainedModel whose ONNX file, run by onnxruntime on the hidden test inputs, gives the run's own
stored accuracy exactly, with its weights and card; a model the tenant has no room for is
graded and not kept, and the run says why."""

import pytest
from django.conf import settings
from django_scopes import scopes_disabled

from apps.jobs.artifacts import hidden_parts
from apps.jobs.models import Grade, Job
from apps.quotas.models import StorageUsage, TenantQuota
from apps.trained_models.models import ArtifactBlob, TrainedModel
from apps.trained_models.services import artifact_open
from runtime.artifacts.check import check_onnx, check_safetensors
from runtime.artifacts.predict import predict_classes
from runtime.datasets import load_dataset
from runtime.evaluate import metrics_from_predictions
from tests.conftest import api_client_for, wait_for
from tests.factories import AssignmentFactory, ExerciseFactory

pytestmark = pytest.mark.django_db(transaction=True)

DIGITS_MLP = {
    "version": 1,
    "layers": [
        {"type": "linear", "out_features": 32},
        {"type": "relu"},
        {"type": "linear", "out_features": 10},
    ],
    "training": {"optimizer": {"type": "adam", "lr": 0.01}, "epochs": 3, "batch_size": 64},
}
DIGITS_CODE = """
import torch.nn as nn


def build_model(input_shape, num_classes):
    return nn.Sequential(nn.Linear(input_shape[0], 32), nn.ReLU(), nn.Linear(32, num_classes))
"""


def _submit(world, *, kind: str, body: dict) -> Job:
    exercise = ExerciseFactory(
        course=world.course,
        dataset="digits",
        allow_code=True,
        min_metric=0.5,
        target_metric=0.9,
        max_seconds=90,
        starter_spec=DIGITS_MLP,
    )
    assignment = AssignmentFactory(exercise=exercise)
    response = api_client_for(world.learner.user).post(
        f"/api/v1/t/{world.tenant.slug}/assignments/{assignment.id}/submissions/",
        {"kind": kind, **body},
        format="json",
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["job"]["id"]

    def ended():
        with scopes_disabled():
            job = Job.objects.get(id=job_id)
        return job if job.state in ("succeeded", "failed", "cancelled", "timed_out") else None

    job = wait_for(ended, timeout=150, message="the run ended")
    assert job.state == "succeeded", (job.state, job.message)
    return job


@pytest.mark.parametrize(
    "kind, body",
    [("spec", {"spec": DIGITS_MLP}), ("code", {"code": DIGITS_CODE})],
    ids=["spec", "code"],
)
def test_a_run_keeps_its_model_and_its_onnx_gives_the_stored_accuracy_exactly(
    celery_worker_process, tenant_a, kind, body
):
    job = _submit(tenant_a, kind=kind, body=body)
    with scopes_disabled():
        grade = Grade.objects.get(submission=job.submission_id)
        model = TrainedModel.objects.select_related("onnx", "weights").get(
            submission=job.submission_id
        )
        onnx, weights = artifact_open(model.onnx), artifact_open(model.weights)
    with scopes_disabled():
        secret = bytes(job.submission.assignment.split_secret)
    data = load_dataset("digits", data_dir=settings.DATA_DIR, secret=secret)
    private = hidden_parts(data)[0]  # the grade's part

    summary = check_onnx(onnx, info=data.info)
    check_safetensors(weights)
    predictions = predict_classes(onnx, private.x)
    measured = metrics_from_predictions(private.y, predictions, class_names=data.info.class_names)
    assert measured["accuracy"] == grade.metrics["accuracy"] == model.metrics["accuracy"]
    assert measured["confusion_matrix"] == grade.metrics["confusion_matrix"]
    assert (grade.metrics["model_kept"], grade.metrics["model"]) == (True, str(model.id))
    assert grade.metrics["graded_on"] == "onnx"
    assert model.parameter_count == summary.parameter_count == 64 * 32 + 32 + 32 * 10 + 10
    card = model.card
    assert card["source"] == {
        "submission": str(job.submission_id),
        "job": str(job.id),
        "attempt": 1,
        "kind": kind,
    }
    assert card["files"]["onnx"]["bytes"] == len(onnx) == model.onnx.size
    assert card["metrics"]["accuracy"] == grade.metrics["accuracy"]
    assert card["input"]["shape"] == ["batch", 64]
    assert card["classes"] == [str(d) for d in range(10)]
    with scopes_disabled():
        used = StorageUsage.objects.get(tenant=tenant_a.tenant).bytes_used
    assert used == model.onnx.size + model.weights.size


def test_a_model_with_no_room_is_graded_and_not_kept(celery_worker_process, tenant_a):
    with scopes_disabled():
        TenantQuota.objects.filter(tenant=tenant_a.tenant).update(storage_bytes=1000)
    job = _submit(tenant_a, kind="spec", body={"spec": DIGITS_MLP})
    with scopes_disabled():
        grade = Grade.objects.get(submission=job.submission_id)
        assert not TrainedModel.objects.filter(submission=job.submission_id).exists()
        assert not ArtifactBlob.objects.filter(tenant=tenant_a.tenant).exists()
        used = StorageUsage.objects.filter(tenant=tenant_a.tenant).values_list(
            "bytes_used", flat=True
        )
    assert grade.metrics["model_kept"] is False
    assert "storage" in grade.metrics["model_not_kept"]
    assert list(used) in ([], [0])
    assert grade.metrics["accuracy"] > 0.5  # graded on the same ONNX file all the same
