"""Retention: a course's artifact_retention_days sets when its models expire (a change moves
the expiry of those kept now); the artifacts_purge task deletes expired models, blobs no model
refers to and orphan files, and leaves everything else."""

import os
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.courses.services import course_update
from apps.jobs.models import Submission
from apps.trained_models.models import TrainedModel
from apps.trained_models.tasks import artifacts_purge
from config.celery import app
from tests.conftest import api_client_for, page_client_for
from tests.trained_models.conftest import counts, files_in, sha256, storage_used, store

pytestmark = pytest.mark.django_db(transaction=True)


def _expiry(model) -> object:
    with scopes_disabled():
        return TrainedModel.objects.get(pk=model.pk).expires_at


def _models() -> set:
    with scopes_disabled():
        return set(TrainedModel.objects.values_list("pk", flat=True))


def test_a_course_without_retention_keeps_its_models(tenant_a, artifacts_dir, onnx_bytes):
    course_update(course=tenant_a.course, artifact_retention_days=None)
    model = store(tenant_a, onnx=onnx_bytes, weights=None)
    assert _expiry(model) is None
    with time_machine.travel(timezone.now() + timedelta(days=3650)):
        assert artifacts_purge() == {"models": 0, "blobs": 0, "orphans": 0}
    assert _models() == {model.pk}


def test_a_new_retention_moves_the_expiry_of_the_models_kept(
    tenant_a, tenant_b, artifacts_dir, onnx_bytes
):
    model = store(tenant_a, onnx=onnx_bytes, weights=None)
    other = store(tenant_b, onnx=onnx_bytes, weights=None)
    created = model.created_at
    course_update(course=tenant_a.course, artifact_retention_days=7)
    assert _expiry(model) == created + timedelta(days=7)
    course_update(course=tenant_a.course, artifact_retention_days=None)
    assert _expiry(model) is None
    assert _expiry(other) == other.created_at + timedelta(days=180)  # another course's


def test_teachers_set_the_retention_in_the_course_api(tenant_a, artifacts_dir, onnx_bytes):
    model = store(tenant_a, onnx=onnx_bytes, weights=None)
    client = api_client_for(tenant_a.teacher.user)
    url = f"/api/v1/t/alpha/courses/{tenant_a.course.id}/"
    response = client.patch(url, {"artifact_retention_days": 30}, format="json")
    assert (response.status_code, response.json()["artifact_retention_days"]) == (200, 30)
    assert _expiry(model) == model.created_at + timedelta(days=30)
    response = client.patch(url, {"artifact_retention_days": 0}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "artifact_retention_days": ["Ensure this value is greater than or equal to 1."]
    }
    assert _expiry(model) == model.created_at + timedelta(days=30)


def test_teachers_set_the_retention_on_the_course_page(tenant_a, artifacts_dir, onnx_bytes):
    model = store(tenant_a, onnx=onnx_bytes, weights=None)
    course = tenant_a.course
    response = page_client_for(tenant_a.teacher.user).post(
        f"/t/alpha/teach/courses/{course.id}/",
        {"title": course.title, "slug": course.slug, "summary": "", "artifact_retention_days": ""},
    )
    assert response.status_code == 302
    course.refresh_from_db()
    assert (course.artifact_retention_days, _expiry(model)) == (None, None)


def test_purge_deletes_expired_models_their_blobs_and_files(
    tenant_a, artifacts_dir, onnx_bytes, weights_bytes, linear_artifacts
):
    course_update(course=tenant_a.course, artifact_retention_days=10)
    old = store(tenant_a, onnx=onnx_bytes, weights=weights_bytes)
    with time_machine.travel(timezone.now() + timedelta(days=5)):
        recent = store(tenant_a, onnx=onnx_bytes, weights=None)  # shares the ONNX file
        other_onnx, _ = linear_artifacts[2]
        newer = store(tenant_a, onnx=other_onnx, weights=None)
    with time_machine.travel(timezone.now() + timedelta(days=10, hours=1)):
        assert artifacts_purge() == {"models": 1, "blobs": 1, "orphans": 0}
    assert _models() == {recent.pk, newer.pk}
    assert sorted(files_in(artifacts_dir).values()) == sorted([onnx_bytes, other_onnx])
    assert storage_used(tenant_a) == len(onnx_bytes) + len(other_onnx)
    with time_machine.travel(timezone.now() + timedelta(days=16)):
        assert artifacts_purge() == {"models": 2, "blobs": 2, "orphans": 0}
    assert (_models(), files_in(artifacts_dir), storage_used(tenant_a)) == (set(), {}, 0)
    assert old.pk not in _models()


def _orphan(artifacts_dir, tenant_id, data: bytes, *, age: timedelta):
    path = artifacts_dir / f"tenants/{tenant_id}/artifacts/{sha256(data)[:2]}/{sha256(data)}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    moment = (timezone.now() - age).timestamp()
    os.utime(path, (moment, moment))
    return path


def test_purge_deletes_orphan_files_an_hour_old(tenant_a, tenant_b, artifacts_dir, onnx_bytes):
    kept = store(tenant_a, onnx=onnx_bytes, weights=None)
    old = _orphan(artifacts_dir, tenant_a.tenant.id, b"orphan", age=timedelta(hours=2))
    young = _orphan(artifacts_dir, tenant_a.tenant.id, b"young", age=timedelta(minutes=5))
    other = _orphan(artifacts_dir, tenant_b.tenant.id, b"theirs", age=timedelta(days=1))
    # Not a tenant's folder: left alone.
    stray = artifacts_dir / "tenants/not-a-tenant/x.onnx"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    used = (storage_used(tenant_a), storage_used(tenant_b))
    assert artifacts_purge() == {"models": 0, "blobs": 0, "orphans": 2}
    assert (old.exists(), young.exists(), other.exists(), stray.exists()) == (
        False,
        True,
        False,
        True,
    )
    assert _models() == {kept.pk}
    assert (storage_used(tenant_a), storage_used(tenant_b)) == used


def test_purge_removes_the_orphan_of_a_failed_store(tenant_a, artifacts_dir, onnx_bytes):
    """The file written before a store's transaction failed (tests/trained_models/test_store)
    is counted nowhere and goes an hour later."""
    from tests.trained_models.test_store import _store_failing_after_the_file

    _store_failing_after_the_file(tenant_a, onnx_bytes)
    assert len(files_in(artifacts_dir)) == 2
    assert artifacts_purge() == {"models": 0, "blobs": 0, "orphans": 0}  # not an hour old yet
    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=1)):
        assert artifacts_purge() == {"models": 0, "blobs": 0, "orphans": 1}
    assert list(files_in(artifacts_dir).values()) == [onnx_bytes]
    assert storage_used(tenant_a) == len(onnx_bytes)


def test_purge_deletes_blobs_left_by_a_deleted_submission(tenant_a, artifacts_dir, onnx_bytes):
    model = store(tenant_a, onnx=onnx_bytes, weights=None)
    with scopes_disabled():
        Submission.objects.filter(pk=model.submission_id).delete()  # its model goes with it
    assert counts() == (0, 1)
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert artifacts_purge() == {"models": 0, "blobs": 1, "orphans": 0}
    assert (counts(), files_in(artifacts_dir), storage_used(tenant_a)) == ((0, 0), {}, 0)


def test_the_purge_task_is_registered_and_scheduled(settings):
    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["artifacts-purge"]
    assert entry["task"] == "trained_models.artifacts_purge"
    assert entry["task"] in app.tasks
