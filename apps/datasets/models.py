"""Teachers' own datasets: a Dataset (a name in the tenant) and its versions, each one upload
ingested into one Arrow file (docs/datasets.md).

A version goes UPLOADING (its bytes arrive in chunks, resumable) -> INGESTING (a worker reads
and checks them) -> READY (its Arrow file stored, immutable from then on), or REFUSED (the
problems named, nothing kept) or FAILED (the platform's fault). An exercise names a ready version
as its dataset, `upload:<key>`; a version an exercise uses cannot be deleted.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from apps.core.models import TimeStampedModel
from apps.tenants.models import Tenant, slug_validator

SOURCE_PREFIX = "upload"


class Dataset(TimeStampedModel):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    slug = models.SlugField(max_length=50, validators=[slug_validator])
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="dataset_slug_unique"),
        ]

    def __str__(self) -> str:
        return self.title


class SourceFormat(models.TextChoices):
    CSV = "csv", _("CSV or TSV table")
    IMAGES = "images", _("Image archive (zip or tar, one folder per class)")
    ARRAYS = "arrays", _("NumPy arrays (NPZ with x and y)")


class TableKind(models.TextChoices):
    TABULAR = "tabular", _("Number columns")
    TEXT = "text", _("Text")


class VersionState(models.TextChoices):
    UPLOADING = "uploading", _("Uploading")
    INGESTING = "ingesting", _("Checking and converting")
    READY = "ready", _("Ready")
    REFUSED = "refused", _("Refused")
    FAILED = "failed", _("Failed")


class DatasetVersion(TimeStampedModel):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # The name exercises use, f"upload:{key.hex}": a version's own, never reused.
    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    format = models.CharField(max_length=16, choices=SourceFormat.choices)
    # How to read it: kind, label_column, text_column, delimiter (CSV); resize_to (images).
    options = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=16, choices=VersionState.choices, default=VersionState.UPLOADING
    )
    file_name = models.CharField(max_length=255)
    upload_size = models.PositiveBigIntegerField()  # declared when the upload began
    received = models.PositiveBigIntegerField(default=0)  # bytes stored so far
    progress = models.FloatField(default=0.0)  # of the ingestion, 0 to 1
    # The ingested Arrow file in the datasets storage (READY only).
    data_name = models.CharField(max_length=300, blank=True)
    data_size = models.PositiveBigIntegerField(default=0)
    data_sha256 = models.CharField(max_length=64, blank=True)
    # Bytes counted against the tenant's storage quota for this version now (the upload's
    # while it arrives, the Arrow file's once ready).
    reserved = models.PositiveBigIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)  # rows, classes, shape, encoding...
    problems = models.JSONField(default=list, blank=True)  # [{"where", "problem"}], refused
    problems_more = models.PositiveIntegerField(default=0)  # beyond those listed
    message = models.TextField(blank=True, max_length=2000)  # a failure's, for the teacher
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ingested_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_unique"),
            models.CheckConstraint(
                condition=Q(received__lte=models.F("upload_size")),
                name="dataset_version_received_within_size",
            ),
            models.CheckConstraint(
                condition=Q(state__in=VersionState.values), name="dataset_version_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset} v{self.number}"

    @property
    def source_name(self) -> str:
        """The dataset name exercises and the runtime use for this version."""
        return f"{SOURCE_PREFIX}:{self.key.hex}"


class UploadChunk(models.Model):
    """One stored piece of an upload, at its byte offset; the ingestion joins them in order."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="chunks")
    offset = models.PositiveBigIntegerField()
    size = models.PositiveIntegerField()
    storage_name = models.CharField(max_length=300)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["version", "offset"]
        constraints = [
            models.UniqueConstraint(fields=["version", "offset"], name="upload_chunk_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.size} bytes at {self.offset} of {self.version_id}"
