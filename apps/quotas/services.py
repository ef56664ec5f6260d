"""Admission (reserve a job's budget), settlement (charge what it used) and period resets.

Admission runs inside the submit transaction with the tenant's quota row locked, so concurrent
submissions cannot together reserve more than the quota. Settlement runs inside the transaction
that ends the job, once per job (a unique ledger row), so a job is never charged twice.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from apps.quotas.models import LedgerEntry, LedgerKind, Period, TenantQuota

MILLI = Decimal("0.001")
# Failures that are the platform's, not the learner's: the job is charged nothing.
PLATFORM_FAILURES = frozenset({"workers_lost", "internal", "setup"})


class QuotaExceeded(Exception):
    """The job does not fit the tenant's quota; the message says how much is left and when the
    quota resets."""


@dataclass(frozen=True)
class Balance:
    quota: int
    reserved: Decimal
    used: Decimal
    period_started_at: datetime
    resets_at: datetime

    @property
    def remaining(self) -> Decimal:
        return Decimal(self.quota) - self.reserved - self.used


def period_start_for(moment: datetime, period: str) -> datetime:
    """The start (UTC midnight) of the week (Monday) or month that holds `moment`."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(start: datetime, period: str) -> datetime:
    if period == Period.WEEK:
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def _default_quota(tenant_id) -> TenantQuota:
    values = settings.DEFAULT_TENANT_QUOTA
    now = timezone.now()
    return TenantQuota(
        tenant_id=tenant_id,
        period=values["period"],
        period_started_at=period_start_for(now, values["period"]),
        gpu_seconds=values["gpu_seconds"],
        max_running_jobs=values["max_running_jobs"],
        max_queued_jobs=values["max_queued_jobs"],
        max_seconds_per_job=values["max_seconds_per_job"],
    )


def quota_locked(tenant_id) -> TenantQuota:
    """The tenant's quota row, locked for this transaction (made from the defaults the first
    time), its period rolled forward when it has ended."""
    quota = TenantQuota.objects.select_for_update().filter(tenant_id=tenant_id).first()
    if quota is None:
        # Two first submissions at once: one insert wins, the other is ignored; both then wait
        # on the same row lock.
        TenantQuota.objects.bulk_create([_default_quota(tenant_id)], ignore_conflicts=True)
        quota = TenantQuota.objects.select_for_update().get(tenant_id=tenant_id)
    now = timezone.now()
    if now >= period_end(quota.period_started_at, quota.period):
        quota.period_started_at = period_start_for(now, quota.period)
        quota.save(update_fields=["period_started_at", "updated_at"])
    return quota


def balance_of(quota: TenantQuota) -> Balance:
    sums = LedgerEntry.objects.filter(
        tenant_id=quota.tenant_id, period_started_at=quota.period_started_at
    ).aggregate(reserved=Sum("reserved"), used=Sum("used"))
    return Balance(
        quota=quota.gpu_seconds,
        reserved=sums["reserved"] or Decimal(0),
        used=sums["used"] or Decimal(0),
        period_started_at=quota.period_started_at,
        resets_at=period_end(quota.period_started_at, quota.period),
    )


def _seconds(value) -> str:
    return f"{Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP):,}"


def job_budget(quota: TenantQuota, exercise_seconds: int) -> int:
    """The GPU-seconds a job of this exercise reserves: its budget, within the per-job limit."""
    return min(exercise_seconds, quota.max_seconds_per_job)


def quota_admit(*, quota: TenantQuota, learner, seconds: int) -> None:
    """Raise QuotaExceeded unless a job of `seconds` fits: the tenant's queue, its GPU-seconds
    left this period, and the learner's daily allowance. Call with `quota` locked."""
    from apps.jobs.models import Job
    from apps.jobs.states import JobState

    resets = f"{balance_of(quota).resets_at:%Y-%m-%d %H:%M} UTC"
    queued = Job.objects.filter(tenant_id=quota.tenant_id, state=JobState.QUEUED).count()
    if queued >= quota.max_queued_jobs:
        raise QuotaExceeded(
            f"Your organisation already has {queued} jobs waiting, its limit; "
            "submit again when some have started."
        )
    balance = balance_of(quota)
    if balance.remaining < seconds:
        raise QuotaExceeded(
            f"Not enough GPU time left: this job reserves {_seconds(seconds)} GPU-seconds and "
            f"{_seconds(max(balance.remaining, 0))} of {_seconds(quota.gpu_seconds)} are left "
            f"this {quota.period}. The quota resets on {resets}."
        )
    if quota.learner_gpu_seconds_per_day:
        day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        sums = LedgerEntry.objects.filter(
            tenant_id=quota.tenant_id, learner=learner, created_at__gte=day
        ).aggregate(reserved=Sum("reserved"), used=Sum("used"))
        spent = (sums["reserved"] or 0) + (sums["used"] or 0)
        left = quota.learner_gpu_seconds_per_day - spent
        if left < seconds:
            raise QuotaExceeded(
                f"Your GPU time for today is used up: this job reserves {_seconds(seconds)} "
                f"GPU-seconds and {_seconds(max(left, 0))} of your "
                f"{_seconds(quota.learner_gpu_seconds_per_day)} a day are left. "
                "It starts again at midnight UTC."
            )


def quota_reserve(*, quota: TenantQuota, job, learner, seconds: int) -> LedgerEntry:
    return LedgerEntry.objects.create(
        tenant_id=quota.tenant_id,
        period_started_at=quota.period_started_at,
        job=job,
        learner=learner,
        kind=LedgerKind.RESERVE,
        reserved=Decimal(seconds),
        used=Decimal(0),
    )


def charge_for(job) -> tuple[Decimal, str]:
    """The GPU-seconds a finished job is charged, and why: the device time of the run that
    finished it, within its budget; nothing for the platform's failures, or when it never
    started training."""
    if job.failure_kind in PLATFORM_FAILURES:
        return Decimal(0), f"refunded: the platform failed the job ({job.failure_kind})"
    if job.run_started_at is None or not (job.outcome or {}).get("steps"):
        return Decimal(0), "refunded: training never started"
    held = (job.finished_at - job.run_started_at).total_seconds()
    charged = min(Decimal(str(max(held, 0.0))), Decimal(job.budget_seconds))
    return charged.quantize(MILLI, rounding=ROUND_HALF_UP), "device time of the finishing run"


def quota_settle(job) -> LedgerEntry | None:
    """Release the job's reservation and charge it (call in the transaction that ends it).
    A job admitted without a reservation, or already settled, is left as it is."""
    reservation = LedgerEntry.objects.filter(job=job, kind=LedgerKind.RESERVE).first()
    if reservation is None or LedgerEntry.objects.filter(job=job, kind=LedgerKind.SETTLE).exists():
        return None
    charged, note = charge_for(job)
    with transaction.atomic():  # a savepoint: the unique row is the last word on "once"
        return LedgerEntry.objects.create(
            tenant_id=job.tenant_id,
            period_started_at=reservation.period_started_at,
            job=job,
            learner_id=reservation.learner_id,
            kind=LedgerKind.SETTLE,
            reserved=-reservation.reserved,
            used=charged,
            note=note,
        )
