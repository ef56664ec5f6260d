"""Fixtures for trained models: the artifacts storage in a fresh folder per test, small real
ONNX and safetensors bytes (a tiny nn.Linear), and a helper that stores a model for a new
attempt of a world's learner."""

import hashlib
from pathlib import Path

import pytest
import torch
from django_scopes import scopes_disabled
from safetensors.torch import save as safetensors_save

from apps.quotas.models import StorageUsage
from apps.trained_models.models import ArtifactBlob, TrainedModel
from apps.trained_models.services import artifact_store
from tests.factories import JobFactory, SubmissionFactory
from tests.onnx_support import onnx_export


def _linear_onnx(seed: int) -> tuple[bytes, bytes]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(2, 2)
    onnx = onnx_export(model, torch.zeros(1, 2))
    weights = safetensors_save({k: v.contiguous() for k, v in model.state_dict().items()})
    return onnx, weights


@pytest.fixture(scope="session")
def linear_artifacts() -> dict[int, tuple[bytes, bytes]]:
    """Two different tiny models' (onnx, safetensors) bytes, by seed."""
    return {seed: _linear_onnx(seed) for seed in (1, 2)}


@pytest.fixture
def onnx_bytes(linear_artifacts) -> bytes:
    return linear_artifacts[1][0]


@pytest.fixture
def weights_bytes(linear_artifacts) -> bytes:
    return linear_artifacts[1][1]


@pytest.fixture
def artifacts_dir(tmp_path, settings) -> Path:
    """The artifacts storage, a FileSystemStorage in this test's own folder."""
    folder = tmp_path / "artifacts"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(folder)},
        },
    }
    return folder


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by its path relative to it."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def storage_used(world) -> int:
    with scopes_disabled():
        row = StorageUsage.objects.filter(tenant=world.tenant).first()
    return row.bytes_used if row else 0


def counts() -> tuple[int, int]:
    with scopes_disabled():
        return TrainedModel.objects.count(), ArtifactBlob.objects.count()


def new_attempt(world, *, learner=None, attempt=None):
    """A new submission of `world`'s assignment by its learner (or `learner`) and its job."""
    with scopes_disabled():
        taken = world.assignment.submissions.count()
    submission = SubmissionFactory(
        assignment=world.assignment,
        learner=learner or world.learner.user,
        attempt=attempt or taken + 1,
    )
    return submission, JobFactory(submission=submission, state="succeeded")


def store_for(world, submission, job, *, onnx: bytes, weights: bytes | None) -> TrainedModel:
    """artifact_store of these bytes for `submission` and `job`, with a small card."""
    return artifact_store(
        tenant_id=world.tenant.id,
        submission=submission,
        job=job,
        onnx=onnx,
        weights=weights,
        card={"dataset": "xor", "classes": ["0", "1"]},
        metrics={"accuracy": 0.75},
        parameter_count=6,
    )


def store(world, *, onnx: bytes, weights: bytes | None, learner=None) -> TrainedModel:
    """A model stored for a new attempt of `world`'s learner (or `learner`)."""
    submission, job = new_attempt(world, learner=learner)
    return store_for(world, submission, job, onnx=onnx, weights=weights)
