"""Quotas of tenants: GPU time and the ledger of GPU-seconds drawn against it, the storage of
trained models, and predictions a day.

A balance is never stored: it is the sum of the ledger rows of the current period, so anyone can
recompute it. Admission writes a reservation (the job's budget); the job's end writes one
settlement that releases the reservation and charges the device time it used.
"""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django_scopes import ScopedManager

from apps.tenants.models import Tenant


class Period(models.TextChoices):
    WEEK = "week", "Week"
    MONTH = "month", "Month"


def default_pools() -> list[str]:
    """The first worker pool (settings.WORKER_POOLS): every tenant's until it is given others."""
    return list(settings.WORKER_POOLS[:1])


def default_storage_bytes() -> int:
    return settings.DEFAULT_TENANT_QUOTA.get("storage_bytes", 5 * 2**30)


def default_predictions_per_day() -> int:
    return settings.DEFAULT_TENANT_QUOTA.get("predictions_per_day", 10_000)


class TenantQuota(models.Model):
    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="quota"
    )
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    # The start of the current period; the reset task moves it on.
    period_started_at = models.DateTimeField()
    gpu_seconds = models.PositiveBigIntegerField("GPU-seconds per period")
    max_running_jobs = models.PositiveIntegerField(default=2, validators=[MinValueValidator(1)])
    max_queued_jobs = models.PositiveIntegerField(default=100, validators=[MinValueValidator(1)])
    max_seconds_per_job = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(1)]
    )
    learner_gpu_seconds_per_day = models.PositiveIntegerField(null=True, blank=True)
    # The worker pools (Celery queues) the tenant's jobs may run on.
    pools = models.JSONField(default=default_pools)
    # Bytes of trained-model artifacts (ONNX, safetensors) the tenant may keep.
    storage_bytes = models.PositiveBigIntegerField(
        "model storage (bytes)", default=default_storage_bytes
    )
    # Samples the prediction API answers per day (UTC) for the tenant's models.
    predictions_per_day = models.PositiveIntegerField(default=default_predictions_per_day)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(period__in=["week", "month"]), name="quota_period_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant}: {self.gpu_seconds} GPU-s per {self.period}"


class LedgerKind(models.TextChoices):
    RESERVE = "reserve", "Reserved at admission"
    SETTLE = "settle", "Settled at the job's end"


class LedgerEntry(models.Model):
    """One movement. `reserved` and `used` are signed GPU-seconds; a period's balance is
    quota - sum(used) - sum(reserved) over the rows of that period."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    period_started_at = models.DateTimeField()
    job = models.ForeignKey("jobs.Job", on_delete=models.PROTECT, related_name="ledger_entries")
    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=LedgerKind.choices)
    reserved = models.DecimalField(max_digits=14, decimal_places=3)
    used = models.DecimalField(max_digits=14, decimal_places=3)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["tenant", "period_started_at"], name="ledger_period_idx")]
        constraints = [
            # One reservation and one settlement per job: a job is charged once.
            models.UniqueConstraint(fields=["job", "kind"], name="ledger_once_per_job_and_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.job_id}: reserved {self.reserved}, used {self.used}"


class StorageUsage(models.Model):
    """Bytes of artifacts the tenant keeps: reserved before a file is written, released when its
    last model is deleted (apps/trained_models/services.py)."""

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="storage_usage"
    )
    bytes_used = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(tenant="tenant")

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.bytes_used} bytes"


class PredictionUsage(models.Model):
    """Prediction requests and samples the API answered for a tenant on one day (UTC)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    requests = models.PositiveIntegerField(default=0)
    samples = models.PositiveBigIntegerField(default=0)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day"], name="prediction_usage_once_a_day"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day}: {self.requests} requests, {self.samples} samples"
