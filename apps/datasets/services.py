"""Writes of datasets: create one, begin a version's upload, store its chunks (resumable), ingest
it (the worker's part), delete a version no exercise uses.

Storage: every file of a version lives in the datasets storage under the tenant's prefix (the
upload's chunks while it arrives, then the one Arrow file). The tenant's storage quota counts
the upload's declared size from its start and the Arrow file's once ready, under the tenant's
storage lock (apps/quotas): an upload that cannot fit is refused before a byte is stored, and a
refused or failed version keeps no file and no bytes of the quota.
"""

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage, storages
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext as _
from django_scopes import scope

from apps.core.exceptions import Conflict
from apps.courses.models import Exercise
from apps.datasets.models import (
    Dataset,
    DatasetVersion,
    SourceFormat,
    TableKind,
    UploadChunk,
    VersionState,
)
from apps.quotas.services import storage_lock, storage_release, storage_reserve, storage_usage
from runtime.ingest.arrays import arrays_ingest
from runtime.ingest.common import IngestLimits, IngestRefused
from runtime.ingest.images import images_ingest
from runtime.ingest.tables import table_ingest
from runtime.text import KINDS as TEXT_KINDS

log = logging.getLogger(__name__)

INGEST_TASK = "datasets.ingest_version"
# How often the ingestion writes its progress (a fraction of the file read) at most.
PROGRESS_EVERY_S = 1.0
PROGRESS_KEPT_S = 6 * 3600
COPY_CHUNK = 1 << 20


class UploadFull(Exception):
    """The upload does not fit the tenant's storage quota; nothing was stored."""


class OffsetMismatch(Conflict):
    """A chunk that does not start where the upload stands (`received`): nothing was stored."""

    def __init__(self, received: int):
        self.received = received
        super().__init__(
            _("This upload has %(received)d bytes; send the chunk that starts there.")
            % {"received": received}
        )


class UploadClosed(Conflict):
    """Chunks sent to a version that is no longer uploading."""


class VersionInUse(Conflict):
    """A version an exercise uses is kept as it is."""


def datasets_storage() -> Storage:
    return storages["datasets"]


def limits() -> IngestLimits:
    return IngestLimits(max_bytes=settings.DATASET_UPLOAD_MAX_BYTES)


def storage_prefix_for(tenant_id) -> str:
    return f"tenants/{tenant_id}/datasets"


def dataset_create(*, tenant, created_by, slug: str, title: str, description: str = "") -> Dataset:
    try:
        with transaction.atomic():
            return Dataset.objects.create(
                tenant=tenant,
                slug=slug,
                title=title,
                description=description,
                created_by=created_by,
            )
    except IntegrityError:
        raise ValidationError(
            {"slug": [_("A dataset with the slug '%(slug)s' exists already.") % {"slug": slug}]}
        ) from None


def _options_errors(format: str, options: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if format == SourceFormat.CSV:
        if options.get("kind") not in TableKind.values:
            errors["kind"] = [_("Say what the table holds: 'tabular' or 'text'.")]
        if not options.get("label_column"):
            errors["label_column"] = [_("Name the column that holds the labels.")]
        if options.get("kind") == TableKind.TEXT and not options.get("text_column"):
            errors["text_column"] = [_("Name the column that holds the texts.")]
        if "tokenizer" in options and options.get("kind") != TableKind.TEXT:
            errors["tokenizer"] = [_("Only a text table is tokenised.")]
        elif options.get("tokenizer", TEXT_KINDS[0]) not in TEXT_KINDS:
            errors["tokenizer"] = [
                _("Tokenise by %(kinds)s, not %(given)r.")
                % {
                    "kinds": ", ".join(repr(kind) for kind in TEXT_KINDS),
                    "given": options["tokenizer"],
                }
            ]
    else:
        for name in ("kind", "label_column", "text_column", "delimiter", "tokenizer"):
            if options.get(name):
                errors[name] = [_("Only a CSV or TSV table takes this.")]
    if options.get("resize_to") and format != SourceFormat.IMAGES:
        errors["resize_to"] = [_("Only an image archive is resized.")]
    return errors


def version_create(
    *, dataset: Dataset, created_by, file_name: str, size: int, format: str, options: dict
) -> DatasetVersion:
    """Begin the upload of a new version of `dataset`: `size` bytes of `file_name`, read as
    `format` with `options`. Counts `size` against the tenant's storage quota (UploadFull when
    it does not fit); ValidationError for bad options or a size over the limit."""
    options = {key: value for key, value in options.items() if value not in (None, "")}
    errors = _options_errors(format, options)
    if size <= 0:
        errors["size"] = [_("The file is empty.")]
    elif size > settings.DATASET_UPLOAD_MAX_BYTES:
        errors["size"] = [
            _("The file is %(size)s; an upload is at most %(limit)s.")
            % {
                "size": filesizeformat(size),
                "limit": filesizeformat(settings.DATASET_UPLOAD_MAX_BYTES),
            }
        ]
    if errors:
        raise ValidationError(errors)
    tenant_id = dataset.tenant_id
    with transaction.atomic():
        storage_lock(tenant_id=tenant_id)
        if not storage_reserve(tenant_id=tenant_id, size=size):
            raise _upload_full(tenant_id, size)
        last = dataset.versions.aggregate(last=Max("number"))["last"] or 0
        return DatasetVersion.objects.create(
            tenant_id=tenant_id,
            dataset=dataset,
            number=last + 1,
            format=format,
            options=options,
            file_name=file_name,
            upload_size=size,
            reserved=size,
            created_by=created_by,
        )


def _upload_full(tenant_id, needed: int) -> UploadFull:
    used, limit = storage_usage(tenant_id)
    return UploadFull(
        _(
            "Not enough storage for this dataset: it needs %(needed)s, and %(used)s of your "
            "school's %(limit)s are used. Ask an administrator to raise the storage quota or "
            "delete old datasets or models."
        )
        % {
            "needed": filesizeformat(needed),
            "used": filesizeformat(used),
            "limit": filesizeformat(limit),
        }
    )


def chunk_append(*, version: DatasetVersion, offset: int, data: bytes) -> DatasetVersion:
    """Store `data` as the bytes of the upload from `offset`, which must be where it stands
    (OffsetMismatch otherwise: the client resumes from `received`). The last chunk hands the
    version to a worker for ingestion."""
    with transaction.atomic():
        locked = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        if locked.state != VersionState.UPLOADING:
            raise UploadClosed(_("This version has all its bytes; upload a new version instead."))
        if offset != locked.received:
            raise OffsetMismatch(locked.received)
        if not data:
            raise ValidationError({"body": [_("The chunk is empty.")]})
        if locked.received + len(data) > locked.upload_size:
            raise ValidationError(
                {
                    "body": [
                        _(
                            "The chunk goes past the upload's declared size (%(size)d bytes): "
                            "%(left)d bytes are left."
                        )
                        % {"size": locked.upload_size, "left": locked.upload_size - offset}
                    ]
                }
            )
        name = f"{storage_prefix_for(locked.tenant_id)}/uploads/{locked.key.hex}/{offset:015d}"
        storage = datasets_storage()
        if storage.exists(name):  # left by a request that failed after writing it
            storage.delete(name)
        storage.save(name, ContentFile(data))
        UploadChunk.objects.create(
            tenant_id=locked.tenant_id,
            version=locked,
            offset=offset,
            size=len(data),
            storage_name=name,
        )
        locked.received += len(data)
        fields = ["received", "updated_at"]
        if locked.received == locked.upload_size:
            locked.state = VersionState.INGESTING
            fields.append("state")
            transaction.on_commit(lambda: ingest_publish(locked))
        locked.save(update_fields=fields)
        return locked


def ingest_publish(version: DatasetVersion) -> None:
    """Hand the version to a worker (published by name: the web never imports the tasks)."""
    current_app.send_task(INGEST_TASK, args=[str(version.tenant_id), str(version.id)])


def _chunks_join(version: DatasetVersion, into) -> None:
    storage = datasets_storage()
    expected = 0
    for chunk in version.chunks.order_by("offset"):
        if chunk.offset != expected:
            raise RuntimeError(f"version {version.id}: a gap in its chunks at {expected}")
        with storage.open(chunk.storage_name, "rb") as handle:
            while block := handle.read(COPY_CHUNK):
                into.write(block)
        expected += chunk.size
    if expected != version.upload_size:
        raise RuntimeError(f"version {version.id}: {expected} of {version.upload_size} bytes")
    into.flush()
    into.seek(0)


def _chunks_delete(version: DatasetVersion) -> None:
    storage = datasets_storage()
    for name in version.chunks.values_list("storage_name", flat=True):
        with contextlib.suppress(FileNotFoundError):
            storage.delete(name)
    version.chunks.all().delete()


class _Progress:
    """Keeps the ingestion's progress in the cache (Redis), at most every PROGRESS_EVERY_S:
    the ingesters call it from their reading threads, which have no tenant scope and should
    not open database connections; `version_progress` reads it."""

    def __init__(self, version_id):
        self.key = progress_key(version_id)
        self.written = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self.written < PROGRESS_EVERY_S and fraction < 1:
            return
        self.written = now
        cache.set(self.key, round(fraction, 4), timeout=PROGRESS_KEPT_S)


def progress_key(version_id) -> str:
    return f"datasets:progress:{version_id}"


def version_progress(version: DatasetVersion) -> float:
    """How far the ingestion has read the file (0 to 1); 1 once it is ready."""
    if version.state == VersionState.INGESTING:
        return float(cache.get(progress_key(version.id)) or 0.0)
    return version.progress


def _ingest_file(version: DatasetVersion, source, out_path: Path, progress) -> dict:
    options = version.options
    if version.format == SourceFormat.CSV:
        summary = table_ingest(
            source,
            out_path,
            kind=options["kind"],
            label_column=options["label_column"],
            text_column=options.get("text_column"),
            delimiter=options.get("delimiter"),
            limits=limits(),
            on_progress=progress,
        )
    elif version.format == SourceFormat.IMAGES:
        resize = options.get("resize_to")
        summary = images_ingest(
            source,
            out_path,
            resize_to=tuple(resize) if resize else None,
            limits=limits(),
            processes=settings.DATASET_INGEST_PROCESSES,
            on_progress=progress,
        )
    else:
        summary = arrays_ingest(source, out_path, limits=limits(), on_progress=progress)
    return summary.as_dict()


def version_ingest(*, version_id) -> DatasetVersion | None:
    """The worker's part: join the upload, read and check it, store the Arrow file. Refused
    (the problems named) or failed, the version keeps no file and no quota. Safe to run twice:
    a version not INGESTING is left as it is."""
    version = DatasetVersion.objects.filter(pk=version_id).first()
    if version is None or version.state != VersionState.INGESTING:
        return version
    scratch = Path(settings.DATASET_SCRATCH_DIR)
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        upload_path, out_path = Path(folder) / "upload", Path(folder) / "data.arrow"
        try:
            with open(upload_path, "w+b") as upload:
                _chunks_join(version, upload)
                summary = _ingest_file(version, upload, out_path, _Progress(version.id))
        except IngestRefused as refused:
            return _version_end(
                version,
                VersionState.REFUSED,
                problems=[{"where": p.path, "problem": p.message} for p in refused.problems],
                more=refused.more,
                message=_("The file cannot be used as a dataset: see the problems listed."),
            )
        except Exception:
            log.exception("dataset version %s: ingestion failed", version.id)
            return _version_end(
                version,
                VersionState.FAILED,
                message=_(
                    "The platform failed while reading this file; it was not the file's fault. "
                    "Upload it again, and tell an administrator if it happens again."
                ),
            )
        return _version_store(version, out_path, summary)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(COPY_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _version_store(version: DatasetVersion, out_path: Path, summary: dict) -> DatasetVersion:
    from apps.datasets.source import summary_info

    summary = {**summary, "info": summary_info(version, out_path)}
    size, sha256 = os.path.getsize(out_path), _sha256_of(out_path)
    name = f"{storage_prefix_for(version.tenant_id)}/{version.key.hex}.arrow"
    storage = datasets_storage()
    with transaction.atomic():
        storage_lock(tenant_id=version.tenant_id)
        version.refresh_from_db()
        storage_release(tenant_id=version.tenant_id, size=version.reserved)
        if not storage_reserve(tenant_id=version.tenant_id, size=size):
            full = _upload_full(version.tenant_id, size)
            version.reserved = 0
            return _version_end(version, VersionState.REFUSED, message=str(full), locked=True)
        with open(out_path, "rb") as handle:
            saved = storage.save(name, File(handle))
        if saved != name:
            storage.delete(saved)
            raise RuntimeError(f"The datasets storage saved {name} as {saved}.")
        version.reserved = size
        version.data_name, version.data_size, version.data_sha256 = name, size, sha256
        version.summary = summary
        version.progress = 1.0
        version.state = VersionState.READY
        version.ingested_at = timezone.now()
        version.save()
        _chunks_delete(version)
    return version


def _version_end(
    version, state, *, problems=(), more=0, message="", locked: bool = False
) -> DatasetVersion:
    """A refused or failed version: its chunks deleted and its quota released."""
    with transaction.atomic():
        if not locked:
            storage_lock(tenant_id=version.tenant_id)
            version.refresh_from_db()
            storage_release(tenant_id=version.tenant_id, size=version.reserved)
            version.reserved = 0
        version.state = state
        version.problems = list(problems)
        version.problems_more = more
        version.message = message
        version.save()
        _chunks_delete(version)
    return version


def exercises_using(version: DatasetVersion):
    return Exercise.objects.filter(tenant_id=version.tenant_id, dataset=version.source_name)


def version_delete(*, version: DatasetVersion) -> None:
    """Delete a version no exercise uses (VersionInUse otherwise), its files and its quota."""
    with scope(tenant=version.tenant_id), transaction.atomic():
        storage_lock(tenant_id=version.tenant_id)
        if exercises_using(version).exists():
            raise VersionInUse(
                _("An exercise uses this version: it stays as it is while one does.")
            )
        locked = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        storage_release(tenant_id=locked.tenant_id, size=locked.reserved)
        names = [*locked.chunks.values_list("storage_name", flat=True)]
        if locked.data_name:
            names.append(locked.data_name)
        locked.delete()
        transaction.on_commit(lambda: _files_delete(names))


def _files_delete(names: list[str]) -> None:
    storage = datasets_storage()
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            storage.delete(name)
