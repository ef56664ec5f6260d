"""Reading an artifact back (its bytes checked), and deleting a model (its storage released only
when no other model shares its files)."""

import pytest
from django.db import transaction
from django_scopes import scopes_disabled

from apps.trained_models.models import ArtifactBlob
from apps.trained_models.services import ArtifactCorrupt, artifact_open, trained_model_delete
from tests.trained_models.conftest import counts, files_in, storage_used, store

pytestmark = pytest.mark.django_db


def _blob(pk) -> ArtifactBlob:
    with scopes_disabled():
        return ArtifactBlob.objects.get(pk=pk)


def test_artifact_open_gives_the_stored_bytes(tenant_a, artifacts_dir, onnx_bytes, weights_bytes):
    model = store(tenant_a, onnx=onnx_bytes, weights=weights_bytes)
    assert artifact_open(_blob(model.onnx_id)) == onnx_bytes
    assert artifact_open(_blob(model.weights_id)) == weights_bytes


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # one bit flipped
        lambda data: data[:-1],  # shorter
        lambda data: data + b"\x00",  # longer
    ],
    ids=["flipped", "shorter", "longer"],
)
def test_artifact_open_detects_a_damaged_file(tenant_a, artifacts_dir, onnx_bytes, damage):
    model = store(tenant_a, onnx=onnx_bytes, weights=None)
    blob = _blob(model.onnx_id)
    path = artifacts_dir / blob.storage_name
    path.write_bytes(damage(onnx_bytes))
    with pytest.raises(ArtifactCorrupt, match=f"The file of artifact {blob.id} does not hold"):
        artifact_open(blob)


def test_artifact_open_detects_a_missing_file(tenant_a, artifacts_dir, onnx_bytes):
    model = store(tenant_a, onnx=onnx_bytes, weights=None)
    blob = _blob(model.onnx_id)
    (artifacts_dir / blob.storage_name).unlink()
    with pytest.raises(ArtifactCorrupt, match=f"The file of artifact {blob.id} is missing"):
        artifact_open(blob)


@pytest.mark.django_db(transaction=True)
def test_deleting_a_shared_model_keeps_the_files_until_the_last_goes(
    tenant_a, artifacts_dir, onnx_bytes, weights_bytes
):
    first = store(tenant_a, onnx=onnx_bytes, weights=weights_bytes)
    second = store(tenant_a, onnx=onnx_bytes, weights=None)
    files = files_in(artifacts_dir)
    both = len(onnx_bytes) + len(weights_bytes)

    # The weights are the first model's alone: they go; the ONNX file is shared: it stays.
    assert trained_model_delete(model=first) == 1
    assert counts() == (1, 1)
    onnx_name = _blob(second.onnx_id).storage_name
    assert files_in(artifacts_dir) == {onnx_name: files[onnx_name]}
    assert storage_used(tenant_a) == both - len(weights_bytes)

    assert trained_model_delete(model=second) == 1
    assert (counts(), files_in(artifacts_dir), storage_used(tenant_a)) == ((0, 0), {}, 0)


@pytest.mark.django_db(transaction=True)
def test_a_deletion_rolled_back_keeps_rows_files_and_usage(tenant_a, artifacts_dir, onnx_bytes):
    model = store(tenant_a, onnx=onnx_bytes, weights=None)
    files = files_in(artifacts_dir)
    with pytest.raises(RuntimeError), transaction.atomic():
        trained_model_delete(model=model)
        raise RuntimeError("the caller's transaction fails")
    assert (counts(), files_in(artifacts_dir), storage_used(tenant_a)) == (
        (1, 1),
        files,
        len(onnx_bytes),
    )
