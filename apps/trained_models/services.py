"""Writes of trained models: store a run's artifacts (content-addressed, counted against the
tenant's storage quota), delete a model, follow a course's retention, purge what has expired.

Every store and deletion of a tenant's artifacts runs under its storage usage row's lock
(`storage_lock`), so they go one at a time: a file is written, found or deleted only by the one
holding it, and the rows and the count of bytes used agree when it commits. A file is written
before its row commits; when the transaction then fails the file is an orphan that no row names,
counted nowhere, and `artifacts_purge` deletes it once it is an hour old.
"""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import transaction
from django.db.models import F, Q
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext
from django_scopes import scope, scopes_disabled

from apps.courses.models import Course
from apps.quotas.services import storage_lock, storage_release, storage_reserve, storage_usage
from apps.tenants.models import Tenant
from apps.trained_models.models import (
    ArtifactBlob,
    ArtifactKind,
    Showcase,
    TrainedModel,
    storage_name_for,
    storage_prefix_for,
)

READ_CHUNK = 1 << 20
# An orphan file younger than this may belong to a store still in its transaction.
ORPHAN_MIN_AGE = timedelta(hours=1)


class StorageFull(Exception):
    """The model does not fit the tenant's storage quota; nothing was stored. The message says
    how much it needs, how much is used and how much is allowed."""


class ArtifactCorrupt(Exception):
    """A stored artifact is missing, or its bytes are not the ones its row names."""


def artifacts_storage() -> Storage:
    return storages["artifacts"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_matches(storage: Storage, name: str, *, size: int, sha256: str) -> bool:
    """Whether the file at `name` holds exactly `size` bytes whose digest is `sha256` (reading
    at most size + 1 bytes: a longer file is not trusted, nor read whole)."""
    digest = hashlib.sha256()
    read = 0
    with storage.open(name, "rb") as handle:
        while read <= size:
            chunk = handle.read(min(READ_CHUNK, size + 1 - read))
            if not chunk:
                break
            digest.update(chunk)
            read += len(chunk)
    return read == size and digest.hexdigest() == sha256


def _file_put(storage: Storage, name: str, data: bytes, sha256: str) -> None:
    """The file at `name` holds `data` afterwards: written when absent, left when it already
    holds these bytes (an earlier store's orphan), replaced when it holds others."""
    if storage.exists(name):
        if _file_matches(storage, name, size=len(data), sha256=sha256):
            return
        storage.delete(name)
    saved = storage.save(name, ContentFile(data))
    if saved != name:  # the storage picked another name: ours is content-addressed
        storage.delete(saved)
        raise RuntimeError(f"The artifacts storage saved {name} as {saved}.")


@dataclass(frozen=True)
class _Piece:
    kind: str
    data: bytes
    sha256: str


def _storage_full(*, tenant_id, needed: int) -> StorageFull:
    used, limit = storage_usage(tenant_id)
    return StorageFull(
        gettext(
            "Not enough model storage to keep this model: it needs %(needed)s, and %(used)s of "
            "your school's %(limit)s are used. Ask an administrator to raise the storage quota "
            "or delete old models."
        )
        % {
            "needed": filesizeformat(needed),
            "used": filesizeformat(used),
            "limit": filesizeformat(limit),
        }
    )


def expiry_for(*, course: Course, created_at):
    """When a model of `course` made at `created_at` expires (None: kept until deleted)."""
    days = course.artifact_retention_days
    return None if days is None else created_at + timedelta(days=days)


def artifact_store(
    *,
    tenant_id,
    submission,
    job,
    onnx: bytes,
    weights: bytes | None,
    card: dict,
    metrics: dict,
    parameter_count: int,
) -> TrainedModel:
    """Keep the model a job trained for `submission`: its ONNX export and weights (bytes the
    caller has already checked), card and metrics. The same bytes are stored once per tenant;
    only new files count against the storage quota. Raises StorageFull, having stored nothing,
    when they do not fit."""
    if submission.tenant_id != tenant_id or job.submission_id != submission.id:
        raise ValueError("The job, its submission and the tenant do not go together.")
    pieces = [_Piece(ArtifactKind.ONNX, onnx, _sha256(onnx))]
    if weights is not None:
        pieces.append(_Piece(ArtifactKind.SAFETENSORS, weights, _sha256(weights)))
    storage = artifacts_storage()
    with scope(tenant=tenant_id), transaction.atomic():
        storage_lock(tenant_id=tenant_id)
        blobs: dict[str, ArtifactBlob] = {}
        new = []
        for piece in pieces:
            blob = ArtifactBlob.objects.filter(
                tenant_id=tenant_id, sha256=piece.sha256, kind=piece.kind
            ).first()
            if blob is None:
                new.append(piece)
            else:
                blobs[piece.kind] = blob
        needed = sum(len(piece.data) for piece in new)
        if needed and not storage_reserve(tenant_id=tenant_id, size=needed):
            raise _storage_full(tenant_id=tenant_id, needed=needed)
        for piece in new:
            name = storage_name_for(tenant_id=tenant_id, sha256=piece.sha256, kind=piece.kind)
            _file_put(storage, name, piece.data, piece.sha256)
            blobs[piece.kind] = ArtifactBlob.objects.create(
                tenant_id=tenant_id, sha256=piece.sha256, kind=piece.kind, size=len(piece.data)
            )
        assignment = submission.assignment
        model = TrainedModel.objects.create(
            tenant_id=tenant_id,
            submission=submission,
            learner_id=submission.learner_id,
            course=assignment.course,
            exercise=assignment.exercise,
            dataset=assignment.exercise.dataset,
            onnx=blobs[ArtifactKind.ONNX],
            weights=blobs.get(ArtifactKind.SAFETENSORS),
            card=card,
            metrics=metrics,
            parameter_count=parameter_count,
        )
        model.expires_at = expiry_for(course=assignment.course, created_at=model.created_at)
        model.save(update_fields=["expires_at"])
        return model


def artifact_open(blob: ArtifactBlob) -> bytes:
    """The bytes of a stored artifact, read with the row's size as the cap and checked against
    its sha256; ArtifactCorrupt when the file is missing, longer, shorter or other bytes."""
    try:
        with artifacts_storage().open(blob.storage_name, "rb") as handle:
            data = handle.read(blob.size + 1)
    except FileNotFoundError as exc:
        raise ArtifactCorrupt(f"The file of artifact {blob.id} is missing.") from exc
    if len(data) != blob.size or _sha256(data) != blob.sha256:
        raise ArtifactCorrupt(f"The file of artifact {blob.id} does not hold its bytes.")
    return data


def _unreferenced(blob_ids) -> list[ArtifactBlob]:
    """Of these blobs, those no trained model refers to."""
    used = TrainedModel.objects.filter(Q(onnx_id__in=blob_ids) | Q(weights_id__in=blob_ids))
    used_ids = set(used.values_list("onnx_id", flat=True)) | set(
        used.values_list("weights_id", flat=True)
    )
    return list(ArtifactBlob.objects.filter(id__in=blob_ids).exclude(id__in=used_ids))


def _blobs_delete(tenant_id, blobs: list[ArtifactBlob]) -> int:
    """Delete these blobs' rows and release their bytes (under the storage lock the caller
    holds); their files go once that commits."""
    if not blobs:
        return 0
    ArtifactBlob.objects.filter(id__in=[blob.id for blob in blobs]).delete()
    storage_release(tenant_id=tenant_id, size=sum(blob.size for blob in blobs))
    names = [blob.storage_name for blob in blobs]
    transaction.on_commit(lambda: _files_delete_unnamed(tenant_id, names))
    return len(blobs)


def _files_delete_unnamed(tenant_id, names: list[str]) -> None:
    """Delete the files at `names` that no blob row names, under the storage lock: a store of
    the same bytes between the commit and now has made its row and keeps its file."""
    storage = artifacts_storage()
    with scope(tenant=tenant_id), transaction.atomic():
        storage_lock(tenant_id=tenant_id)
        named = _named_files(tenant_id)
        for name in names:
            if name not in named:
                storage.delete(name)


def _named_files(tenant_id) -> set[str]:
    return {
        storage_name_for(tenant_id=tenant_id, sha256=sha256, kind=kind)
        for sha256, kind in ArtifactBlob.objects.filter(tenant_id=tenant_id).values_list(
            "sha256", "kind"
        )
    }


def trained_model_delete(*, model: TrainedModel) -> int:
    """Delete the model, then the blobs no other model refers to (their bytes released, their
    files deleted once this commits). Returns how many blobs went."""
    tenant_id = model.tenant_id
    with scope(tenant=tenant_id), transaction.atomic():
        storage_lock(tenant_id=tenant_id)
        blob_ids = [i for i in (model.onnx_id, model.weights_id) if i is not None]
        TrainedModel.objects.filter(pk=model.pk).delete()
        return _blobs_delete(tenant_id, _unreferenced(blob_ids))


def trained_model_expiry_recompute(*, course: Course) -> int:
    """Set the expiry of every model of `course` from its retention now (from each model's
    creation); returns how many models there are."""
    days = course.artifact_retention_days
    expires_at = None if days is None else F("created_at") + timedelta(days=days)
    with scope(tenant=course.tenant_id):
        return TrainedModel.objects.filter(course=course).update(expires_at=expires_at)


def showcase_choose(*, model: TrainedModel, by) -> Showcase:
    """Make `model` its learner's showcase model for its exercise (replacing their earlier
    choice). Only the learner who trained it may choose it: PermissionDenied, nothing changed,
    for anyone else (a teacher who may see the model included)."""
    if model.learner_id != by.pk:
        raise PermissionDenied(gettext("Only the learner who trained a model can showcase it."))
    with scope(tenant=model.tenant_id), transaction.atomic():
        showcase, _ = Showcase.objects.update_or_create(
            learner_id=model.learner_id,
            exercise_id=model.exercise_id,
            defaults={"tenant_id": model.tenant_id, "course_id": model.course_id, "model": model},
        )
    return showcase


# --- The retention task ----------------------------------------------------------------------


@dataclass(frozen=True)
class Purged:
    models: int
    blobs: int
    orphans: int


def _orphans_delete(tenant_id, now) -> int:
    """Delete the files under the tenant's prefix that no blob row names and that are older
    than ORPHAN_MIN_AGE, under the storage lock."""
    storage = artifacts_storage()
    prefix = storage_prefix_for(tenant_id)
    deleted = 0
    with scope(tenant=tenant_id), transaction.atomic():
        storage_lock(tenant_id=tenant_id)
        named = _named_files(tenant_id)
        for name in _files_under(storage, prefix):
            if name in named or storage.get_modified_time(name) > now - ORPHAN_MIN_AGE:
                continue
            storage.delete(name)
            deleted += 1
    return deleted


def _files_under(storage: Storage, prefix: str) -> list[str]:
    try:
        folders, files = storage.listdir(prefix)
    except FileNotFoundError:
        return []
    names = [f"{prefix}/{name}" for name in files]
    for folder in folders:
        names += _files_under(storage, f"{prefix}/{folder}")
    return names


def _tenant_ids_with_files(storage: Storage) -> list:
    """The tenants that have a folder in the storage (a folder named otherwise is left alone)."""
    try:
        folders, _ = storage.listdir("tenants")
    except FileNotFoundError:
        return []
    ids = []
    for folder in folders:
        try:
            ids.append(uuid.UUID(folder))
        except ValueError:
            continue
    with scopes_disabled():
        return sorted(Tenant.objects.filter(id__in=ids).values_list("id", flat=True), key=str)


def artifacts_purge(now=None) -> Purged:
    """Delete the expired models and the blobs (and files) no model refers to any more (also
    those left by a submission deleted with its model, once an hour old), then the orphan files
    of every tenant. Safe to run again: what is gone is gone."""
    now = now or timezone.now()
    models = blobs = orphans = 0
    with scopes_disabled():
        expired = list(
            TrainedModel.objects.filter(expires_at__lte=now).only(
                "pk", "tenant_id", "onnx_id", "weights_id"
            )
        )
        stale = ArtifactBlob.objects.filter(created_at__lte=now - ORPHAN_MIN_AGE)
        stale_tenants = sorted(set(stale.values_list("tenant_id", flat=True)), key=str)
    for model in expired:
        blobs += trained_model_delete(model=model)
        models += 1
    for tenant_id in stale_tenants:
        with scope(tenant=tenant_id), transaction.atomic():
            storage_lock(tenant_id=tenant_id)
            ids = ArtifactBlob.objects.filter(
                tenant_id=tenant_id, created_at__lte=now - ORPHAN_MIN_AGE
            ).values_list("id", flat=True)
            blobs += _blobs_delete(tenant_id, _unreferenced(list(ids)))
    for tenant_id in _tenant_ids_with_files(artifacts_storage()):
        orphans += _orphans_delete(tenant_id, now)
    return Purged(models=models, blobs=blobs, orphans=orphans)
