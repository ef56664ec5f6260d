"""Trained models kept from runs: their artifacts (content-addressed files, one row per distinct
file of a tenant) and the model card that names them.

A blob is stored once per tenant whatever the number of models that share its bytes; its file's
name follows from (tenant, sha256, kind), so the row is all that is needed to find it.
"""

import uuid

from django.conf import settings
from django.db import models
from django_scopes import ScopedManager

from apps.tenants.models import Tenant


class ArtifactKind(models.TextChoices):
    ONNX = "onnx", "ONNX"
    SAFETENSORS = "safetensors", "safetensors"


class ArtifactBlob(models.Model):
    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    sha256 = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=ArtifactKind.choices)
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "sha256", "kind"], name="artifact_blob_unique_per_tenant"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["onnx", "safetensors"]),
                name="artifact_blob_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.sha256[:12]} ({self.size} bytes)"

    @property
    def storage_name(self) -> str:
        return storage_name_for(tenant_id=self.tenant_id, sha256=self.sha256, kind=self.kind)


def storage_prefix_for(tenant_id) -> str:
    """The folder, in the artifacts storage, that holds every file of a tenant."""
    return f"tenants/{tenant_id}/artifacts"


def storage_name_for(*, tenant_id, sha256: str, kind: str) -> str:
    return f"{storage_prefix_for(tenant_id)}/{sha256[:2]}/{sha256}.{kind}"


class TrainedModel(models.Model):
    """The model a run trained: its ONNX export (always), its weights (safetensors, when the
    run gave them), the card and the hidden-test metrics. Deleted with its submission."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    submission = models.OneToOneField(
        "jobs.Submission", on_delete=models.CASCADE, related_name="trained_model"
    )
    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trained_models"
    )
    course = models.ForeignKey("courses.Course", on_delete=models.PROTECT, related_name="+")
    exercise = models.ForeignKey("courses.Exercise", on_delete=models.PROTECT, related_name="+")
    dataset = models.CharField(max_length=64)
    onnx = models.ForeignKey(ArtifactBlob, on_delete=models.PROTECT, related_name="+")
    weights = models.ForeignKey(
        ArtifactBlob, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    card = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    parameter_count = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Null: kept until deleted (the course keeps its artifacts for good).
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "course", "learner"], name="trained_model_course_idx"),
            models.Index(fields=["expires_at"], name="trained_model_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"Model {self.id} of {self.learner_id} on {self.exercise_id}"


class Showcase(models.Model):
    """A learner's choice of the model that shows their work on an exercise in the course
    showcase: one per learner per exercise (choosing again replaces it)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    course = models.ForeignKey("courses.Course", on_delete=models.CASCADE, related_name="+")
    exercise = models.ForeignKey("courses.Exercise", on_delete=models.CASCADE, related_name="+")
    model = models.ForeignKey(TrainedModel, on_delete=models.CASCADE, related_name="showcases")
    chosen_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["learner", "exercise"], name="showcase_one_per_learner_exercise"
            ),
        ]

    def __str__(self) -> str:
        return f"Showcase of {self.learner_id} on {self.exercise_id}: {self.model_id}"
