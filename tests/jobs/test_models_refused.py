"""A code run's model file is untrusted bytes: a hostile one (an initializer declaring 2 GB, a
custom-domain operator, external data pointing outside, a Loop with a huge trip count, a million
nodes) is refused with its sentence, nothing is stored (no row, no file, no storage counted),
the run is graded on its predictions as before, and the worker goes on to the next job."""

from pathlib import Path

import pytest
import torch
from django.conf import settings
from django_scopes import scope, scopes_disabled

from apps.jobs import runner
from apps.jobs.lease import job_claim
from apps.jobs.models import Grade, Job
from apps.quotas.models import StorageUsage
from apps.trained_models.models import ArtifactBlob, TrainedModel
from runtime.sandbox.limits import CodeRunResult
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for
from tests.factories import AssignmentFactory, ExerciseFactory
from tests.onnx_support import (
    custom_domain_node,
    external_data_model,
    huge_initializer_model,
    huge_loop_model,
    million_nodes_model,
    model_bytes,
)

pytestmark = pytest.mark.django_db(transaction=True)

XOR = TEMPLATES["xor"]
OUTCOME = {"status": "completed", "epochs_completed": 1, "steps": 1, "seconds": 0.1}


HOSTILE = {
    "2 GB initializer": (
        huge_initializer_model,
        'The initializer "huge" declares 2 GiB (float32 [536870912]); the most a tensor may '
        "hold is 64 MiB.",
    ),
    "custom domain": (
        lambda: model_bytes(nodes=[custom_domain_node()]),
        'Node 0 ("evil", Evil) is an operator of the domain "com.evil"; only the standard '
        "operators (the default domain) are accepted.",
    ),
    "external data": (
        external_data_model,
        'The initializer "outside" keeps its data outside the file (external data, location '
        '"../../etc/passwd"); external data is not accepted.',
    ),
    "huge loop": (
        lambda: huge_loop_model(name=None),
        "Node 1 (Loop) is control flow; loops and conditionals (If, Loop, Scan) are "
        "not accepted, since they can run without bound.",
    ),
    "a million nodes": (
        million_nodes_model,
        "The ONNX model has 1,000,002 nodes; the most accepted is 10,000.",
    ),
}


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_model_file_is_refused_and_nothing_is_stored(tenant_a, monkeypatch, name):
    build, sentence = HOSTILE[name]
    hostile = build()

    def sandbox_returns_the_hostile_file(*, data, **_):
        # Every prediction right (the hidden test split the worker drew with the assignment's
        # secret): the run itself is fine; only its model file is hostile.
        predictions = data.test.y.clone().to(torch.int64)
        return CodeRunResult(
            "succeeded", predictions=predictions, outcome=OUTCOME, seconds=1.0, onnx=hostile
        )

    monkeypatch.setattr(runner, "run_code_submission", sandbox_returns_the_hostile_file)
    exercise = ExerciseFactory(
        course=tenant_a.course,
        dataset="xor",
        allow_code=True,
        min_metric=0.5,
        target_metric=0.95,
        starter_spec=XOR.spec,
    )
    assignment = AssignmentFactory(exercise=exercise)
    storage = Path(settings.STORAGES["artifacts"]["OPTIONS"]["location"])
    files_before = _files(storage)
    response = api_client_for(tenant_a.learner.user).post(
        f"/api/v1/t/{tenant_a.tenant.slug}/assignments/{assignment.id}/submissions/",
        {"kind": "code", "code": XOR.code},
        format="json",
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["job"]["id"]
    with scope(tenant=tenant_a.tenant.id):
        claim = job_claim(job_id=job_id, owner="test-worker:1", device="cpu")
        assert runner.job_run(claim) == "succeeded"

    with scopes_disabled():
        job = Job.objects.get(id=job_id)
        grade = Grade.objects.get(submission=job.submission_id)
        assert not TrainedModel.objects.filter(tenant=tenant_a.tenant).exists()
        assert not ArtifactBlob.objects.filter(tenant=tenant_a.tenant).exists()
        used = list(
            StorageUsage.objects.filter(tenant=tenant_a.tenant).values_list("bytes_used", flat=True)
        )
    assert (grade.score, grade.metrics["accuracy"]) == (100, 1.0)  # graded on its predictions
    assert grade.metrics["model_kept"] is False
    assert grade.metrics["model_not_kept"] == f"Your model's ONNX file was not kept: {sentence}"
    assert "graded_on" not in grade.metrics
    assert used in ([], [0])
    assert _files(storage) == files_before
