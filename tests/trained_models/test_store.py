"""Storing a run's model: content-addressed per tenant, counted once, refused whole when the
storage quota is full, orphans of a failed transaction counted nowhere."""

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django_scopes import scopes_disabled

from apps.quotas.models import TenantQuota
from apps.trained_models.models import ArtifactBlob, TrainedModel
from apps.trained_models.services import StorageFull
from tests.trained_models.conftest import (
    counts,
    files_in,
    new_attempt,
    sha256,
    storage_used,
    store,
    store_for,
)

pytestmark = pytest.mark.django_db


def _limit(world, storage_bytes: int) -> None:
    with scopes_disabled():
        TenantQuota.objects.filter(tenant=world.tenant).update(storage_bytes=storage_bytes)


def test_a_model_is_stored_under_its_tenants_prefix_by_content(
    tenant_a, artifacts_dir, onnx_bytes, weights_bytes
):
    model = store(tenant_a, onnx=onnx_bytes, weights=weights_bytes)
    tenant = tenant_a.tenant.id
    onnx_name = f"tenants/{tenant}/artifacts/{sha256(onnx_bytes)[:2]}/{sha256(onnx_bytes)}.onnx"
    weights_name = (
        f"tenants/{tenant}/artifacts/{sha256(weights_bytes)[:2]}/"
        f"{sha256(weights_bytes)}.safetensors"
    )
    assert files_in(artifacts_dir) == {onnx_name: onnx_bytes, weights_name: weights_bytes}
    with scopes_disabled():
        model = TrainedModel.objects.select_related("onnx", "weights").get(pk=model.pk)
    assert (model.onnx.storage_name, model.onnx.size, model.onnx.kind) == (
        onnx_name,
        len(onnx_bytes),
        "onnx",
    )
    assert (model.weights.storage_name, model.weights.size) == (weights_name, len(weights_bytes))
    assert (model.learner, model.course, model.exercise, model.dataset) == (
        tenant_a.learner.user,
        tenant_a.course,
        tenant_a.exercise,
        tenant_a.exercise.dataset,
    )
    assert (model.metrics, model.parameter_count) == ({"accuracy": 0.75}, 6)
    # The course's default retention: 180 days from the model's creation.
    assert model.expires_at == model.created_at + timedelta(days=180)
    assert storage_used(tenant_a) == len(onnx_bytes) + len(weights_bytes)


def test_identical_bytes_are_one_blob_one_file_counted_once(
    tenant_a, artifacts_dir, onnx_bytes, weights_bytes
):
    first = store(tenant_a, onnx=onnx_bytes, weights=weights_bytes)
    second = store(tenant_a, onnx=onnx_bytes, weights=weights_bytes)
    assert (first.onnx_id, first.weights_id) == (second.onnx_id, second.weights_id)
    assert counts() == (2, 2)
    assert len(files_in(artifacts_dir)) == 2
    assert storage_used(tenant_a) == len(onnx_bytes) + len(weights_bytes)


def test_another_tenant_stores_its_own_copy(
    tenant_a, tenant_b, artifacts_dir, onnx_bytes, weights_bytes
):
    store(tenant_a, onnx=onnx_bytes, weights=None)
    store(tenant_b, onnx=onnx_bytes, weights=None)
    assert counts() == (2, 2)
    assert sorted(name.split("/")[1] for name in files_in(artifacts_dir)) == sorted(
        [str(tenant_a.tenant.id), str(tenant_b.tenant.id)]
    )
    assert (storage_used(tenant_a), storage_used(tenant_b)) == (len(onnx_bytes), len(onnx_bytes))


def test_a_model_that_does_not_fit_stores_nothing(
    tenant_a, artifacts_dir, onnx_bytes, weights_bytes, linear_artifacts
):
    store(tenant_a, onnx=onnx_bytes, weights=None)
    used = len(onnx_bytes)
    other_onnx, other_weights = linear_artifacts[2]
    _limit(tenant_a, used + len(other_onnx) + len(other_weights) - 1)
    files_before, counts_before = files_in(artifacts_dir), counts()
    submission, job = new_attempt(tenant_a)
    with pytest.raises(StorageFull) as refusal:
        store_for(tenant_a, submission, job, onnx=other_onnx, weights=other_weights)
    needed = len(other_onnx) + len(other_weights)
    assert str(refusal.value) == (
        f"Not enough model storage to keep this model: it needs {needed}\xa0bytes, and "
        f"{used}\xa0bytes of your school's {used + needed - 1}\xa0bytes are used. Ask an "
        "administrator to raise the storage quota or delete old models."
    )
    assert (files_in(artifacts_dir), counts(), storage_used(tenant_a)) == (
        files_before,
        counts_before,
        used,
    )


def test_bytes_already_kept_need_no_room(tenant_a, artifacts_dir, onnx_bytes):
    store(tenant_a, onnx=onnx_bytes, weights=None)
    _limit(tenant_a, len(onnx_bytes))  # full: nothing new would fit
    second = store(tenant_a, onnx=onnx_bytes, weights=None)
    assert counts() == (2, 1)
    assert second.onnx.sha256 == sha256(onnx_bytes)
    assert storage_used(tenant_a) == len(onnx_bytes)


def _store_failing_after_the_file(world, onnx_bytes) -> bytes:
    """Store a model, then other bytes for the same submission: the second store's file is
    written, then its row fails (a submission has one model). Returns the other bytes."""
    model = store(world, onnx=onnx_bytes, weights=None)
    with scopes_disabled():
        submission = TrainedModel.objects.select_related("submission").get(pk=model.pk).submission
        job = submission.job
    other_onnx = onnx_bytes + b"\x00"
    with pytest.raises(IntegrityError):
        store_for(world, submission, job, onnx=other_onnx, weights=None)
    return other_onnx


def test_a_failed_transaction_leaves_an_orphan_file_counted_nowhere(
    tenant_a, artifacts_dir, onnx_bytes
):
    other_onnx = _store_failing_after_the_file(tenant_a, onnx_bytes)
    assert counts() == (1, 1)
    assert storage_used(tenant_a) == len(onnx_bytes)
    files = files_in(artifacts_dir)
    assert len(files) == 2  # the orphan, until artifacts_purge (test_purge.py)
    orphan = next(name for name in files if sha256(other_onnx) in name)
    assert files[orphan] == other_onnx


def test_a_file_already_at_the_name_is_checked_not_trusted(tenant_a, artifacts_dir, onnx_bytes):
    name = (
        f"tenants/{tenant_a.tenant.id}/artifacts/{sha256(onnx_bytes)[:2]}/{sha256(onnx_bytes)}.onnx"
    )
    path = artifacts_dir / name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not these bytes")
    store(tenant_a, onnx=onnx_bytes, weights=None)
    assert files_in(artifacts_dir) == {name: onnx_bytes}
    assert storage_used(tenant_a) == len(onnx_bytes)


def test_a_file_that_already_holds_the_bytes_is_kept(tenant_a, artifacts_dir, onnx_bytes):
    """An earlier store's orphan with these very bytes: used as it is, counted now."""
    name = (
        f"tenants/{tenant_a.tenant.id}/artifacts/{sha256(onnx_bytes)[:2]}/{sha256(onnx_bytes)}.onnx"
    )
    path = artifacts_dir / name
    path.parent.mkdir(parents=True)
    path.write_bytes(onnx_bytes)
    written_at = path.stat().st_mtime_ns
    model = store(tenant_a, onnx=onnx_bytes, weights=None)
    assert (files_in(artifacts_dir), path.stat().st_mtime_ns) == ({name: onnx_bytes}, written_at)
    with scopes_disabled():
        assert ArtifactBlob.objects.get().pk == model.onnx_id
    assert storage_used(tenant_a) == len(onnx_bytes)


def test_a_job_of_another_submission_is_refused(tenant_a, artifacts_dir, onnx_bytes):
    submission, _ = new_attempt(tenant_a)
    _, other_job = new_attempt(tenant_a)
    with pytest.raises(ValueError, match="do not go together"):
        store_for(tenant_a, submission, other_job, onnx=onnx_bytes, weights=None)
    assert (counts(), files_in(artifacts_dir)) == ((0, 0), {})
