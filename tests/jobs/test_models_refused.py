"""A code run's model file is untrusted bytes: a hostile one (an initializer declaring 2 GB, a
custom-domain operator, external data pointing outside, a Loop with a huge trip count, a million
nodes) is refused with its sentence, nothing is stored (no row, no file, no storage counted),
the run is graded on its predictions as before, and the worker goes on to the next job."""

from pathlib import Path

import pytest
import torch
from django.conf import settings
from django_scopes import scope, scopes_disabled
from onnx import TensorProto, helper

from apps.jobs import runner
from apps.jobs.lease import job_claim
from apps.jobs.models import Grade, Job
from apps.quotas.models import StorageUsage
from apps.trained_models.models import ArtifactBlob, TrainedModel
from runtime.datasets import load_dataset
from runtime.sandbox.limits import CodeRunResult
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for
from tests.factories import AssignmentFactory, ExerciseFactory
from tests.runtime.test_artifact_checks import _varint, model_bytes

pytestmark = pytest.mark.django_db(transaction=True)

XOR = TEMPLATES["xor"]
OUTCOME = {"status": "completed", "epochs_completed": 1, "steps": 1, "seconds": 0.1}


def _external() -> bytes:
    tensor = TensorProto(name="outside", data_type=TensorProto.FLOAT, dims=[4])
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    return model_bytes(initializers=[tensor])


def _loop() -> bytes:
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])],
    )
    trips = helper.make_node(
        "Constant", [], ["trips"], name="trips", value=helper.make_tensor("t", 7, [], [2**62])
    )
    return model_bytes(nodes=[trips, helper.make_node("Loop", ["trips", ""], [], body=body)])


def _million_nodes() -> bytes:
    node = helper.make_node("Relu", ["input"], ["input"]).SerializeToString()
    nodes = (b"\x0a" + _varint(len(node)) + node) * 1_000_000
    return model_bytes() + b"\x3a" + _varint(len(nodes)) + nodes


HOSTILE = {
    "2 GB initializer": (
        lambda: model_bytes(
            initializers=[TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[2**29])]
        ),
        'The initializer "huge" declares 2 GiB (float32 [536870912]); the most a tensor may '
        "hold is 64 MiB.",
    ),
    "custom domain": (
        lambda: model_bytes(
            nodes=[helper.make_node("Evil", ["input"], ["x"], name="evil", domain="com.evil")]
        ),
        'Node 0 ("evil", Evil) is an operator of the domain "com.evil"; only the standard '
        "operators (the default domain) are accepted.",
    ),
    "external data": (
        _external,
        'The initializer "outside" keeps its data outside the file (external data, location '
        '"../../etc/passwd"); external data is not accepted.',
    ),
    "huge loop": (
        _loop,
        "Node 1 (Loop) is control flow; loops and conditionals (If, Loop, Scan) are "
        "not accepted, since they can run without bound.",
    ),
    "a million nodes": (
        _million_nodes,
        "The ONNX model has 1,000,002 nodes; the most accepted is 10,000.",
    ),
}


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_model_file_is_refused_and_nothing_is_stored(tenant_a, monkeypatch, name):
    build, sentence = HOSTILE[name]
    hostile = build()
    data = load_dataset("xor", data_dir=settings.DATA_DIR)

    def sandbox_returns_the_hostile_file(**_):
        # Every prediction right: the run itself is fine; only its model file is hostile.
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
