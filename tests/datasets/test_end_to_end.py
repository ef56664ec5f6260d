"""An uploaded CSV from upload to grade through the real stack: the API, a real Celery worker
that ingests the upload and then trains and grades submissions on it (a spec and PyTorch code),
the assignment's secret drawing the hidden parts. The grade is the private part's; the public
part's score is kept beside it."""

import re

import pytest
from django_scopes import scope, scopes_disabled

from apps.courses.models import Exercise
from apps.datasets.models import DatasetVersion
from apps.jobs.models import JobEvent
from apps.trained_models.models import TrainedModel
from runtime.datasets import PRIVATE_PART, load_dataset
from tests.conftest import api_client_for, page_client_for
from tests.datasets.support import (
    base,
    clusters_csv,
    first_upload_ingested,
    graded_runs,
    teacher_client,
    upload,
)
from tests.factories import AssignmentFactory

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = {
    "version": 1,
    "layers": [
        {"type": "linear", "out_features": 16},
        {"type": "relu"},
        {"type": "linear", "out_features": 3},
    ],
    "training": {
        "optimizer": {"type": "adam", "lr": 0.05},
        "epochs": 15,
        "batch_size": 32,
        "seed": 0,
    },
}

CODE = """
import torch.nn as nn


def build_model(input_shape, num_classes):
    return nn.Sequential(nn.Linear(input_shape[0], 16), nn.ReLU(), nn.Linear(16, num_classes))
"""


def test_an_uploaded_csv_is_ingested_assigned_trained_and_graded_on_its_private_part(
    celery_worker_process, tenant_a, tenant_b
):
    teacher = teacher_client(tenant_a)
    upload(teacher, tenant_a, clusters_csv(rows_per_class=200), chunk=4096)
    version = first_upload_ingested(tenant_a)
    assert version.state == "ready", (version.problems, version.message)
    name = version.source_name
    # The teacher's preview: the classes with their counts, the first rows, the parts' sizes.
    page = page_client_for(tenant_a.teacher.user).get(
        f"/t/{tenant_a.tenant.slug}/teach/datasets/clusters/versions/1/preview/"
    )
    assert page.status_code == 200
    text = page.content.decode()
    counts = re.findall(r'<th scope="row">([^<]+)</th><td>(\d+)</td>', text)
    assert counts[:3] == [("east", "200"), ("north", "200"), ("南", "200")]
    assert 'id="sample-rows"' in text and 'id="part-sizes"' in text

    # Another tenant cannot name it: to them it does not exist.
    other = api_client_for(tenant_b.teacher.user).post(
        f"/api/v1/t/{tenant_b.tenant.slug}/courses/{tenant_b.course.id}/exercises/",
        {"title": "Theirs", "dataset": name, "min_metric": 0.5, "target_metric": 0.9},
        format="json",
    )
    assert other.status_code == 400
    assert other.json()["error"]["fields"]["dataset"][0].startswith(f"Unknown dataset '{name}'")

    created = teacher.post(
        f"/api/v1/t/{tenant_a.tenant.slug}/courses/{tenant_a.course.id}/exercises/",
        {
            "title": "Clusters",
            "dataset": name,
            "min_metric": 0.5,
            "target_metric": 0.95,
            "allow_spec": True,
            "allow_code": True,
            "starter_spec": SPEC,
            "max_seconds": 300,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    with scopes_disabled():
        exercise = Exercise.objects.get(id=created.json()["id"])
    assignment = AssignmentFactory(exercise=exercise, scores_shown="public_live")
    # Used by an exercise, the version stays as it is.
    refused = teacher.delete(f"{base(tenant_a)}clusters/versions/1/")
    assert refused.status_code == 409
    with scopes_disabled():
        assert DatasetVersion.objects.filter(pk=version.pk, state="ready").exists()

    # What the trusted side holds for this assignment: its private part is the grade's.
    with scope(tenant=tenant_a.tenant.id):
        data = load_dataset(name, secret=bytes(assignment.split_secret))
    private = int((data.test_part == PRIVATE_PART).sum())
    public = len(data.test_part) - private
    assert (private, public) == (60, 60)
    assert data.info.sizes == (420, 60, 120)

    learner = api_client_for(tenant_a.learner.user)
    for grade in graded_runs(tenant_a, assignment, spec=SPEC, code=CODE):
        job = grade.submission.job
        metrics = grade.metrics
        assert metrics["test_samples"] == private
        assert metrics["public"]["test_samples"] == public
        assert metrics["accuracy"] >= 0.95 and metrics["public"]["accuracy"] >= 0.95
        assert metrics["class_names"] == ["east", "north", "南"]
        assert str(grade.score) == "100.00"
        # Whoever follows the job reads its events: the grade is withheld there, the public
        # part's figures come (the teacher shows them live), never the private ones.
        with scopes_disabled():
            final = JobEvent.objects.get(job=job, type="succeeded").payload
            model = TrainedModel.objects.get(submission__job=job)
        assert final["grade"] == {
            "withheld_until": assignment.due_at.isoformat(),
            "max_score": "100.00",
        }
        assert final["metrics"] == {"public": metrics["public"]}
        # The model's pages are the learner's before the due date: no test figure there.
        assert model.metrics["test_figures"] == "hidden"
        assert "accuracy" not in model.metrics and "confusion_matrix" not in model.metrics
        assert model.card["metrics"] == model.metrics
        # The learner's own view of it, before the due date: the public part alone.
        mine = learner.get(f"/api/v1/t/{tenant_a.tenant.slug}/submissions/{grade.submission_id}/")
        assert mine.json()["grade"]["score"] is None
        assert mine.json()["grade"]["metrics"] == {"public": metrics["public"]}
