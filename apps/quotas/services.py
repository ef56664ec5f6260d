"""The ledger's writes: admission (`quota_admit`, then `Admission.reserve`: a job's budget
reserved), settlement (`quota_settle`: charge what it used) and period resets. The jobs app
calls these two and nothing else of the ledger.

Admission runs inside the submit transaction with the tenant's quota row locked, so concurrent
submissions cannot together reserve more than the quota. Settlement runs inside the transaction
that ends the job, once per job (a unique ledger row), so a job is never charged twice.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Sum
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext
from django_scopes import scope, scopes_disabled

from apps.quotas.models import (
    LedgerEntry,
    LedgerKind,
    Period,
    PredictionUsage,
    StorageUsage,
    TenantQuota,
)

MILLI = Decimal("0.001")
# Failures that are the platform's, not the learner's: the job is charged nothing. "sandbox": the
# code sandbox did not start or its harness failed before the learner's code ran (a report of
# that kind from the learner's code fails the run as "protocol"); "refused": this worker cannot
# run code safely (no bubblewrap).
PLATFORM_FAILURES = frozenset({"workers_lost", "internal", "setup", "sandbox", "refused"})


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

    @property
    def drawn(self) -> Decimal:
        """Used plus still reserved: what the quota's meter shows."""
        return self.reserved + self.used


def period_start_for(moment: datetime, period: str) -> datetime:
    """The start (UTC midnight) of the week (Monday) or month that holds `moment`."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(start: datetime, period: str) -> datetime:
    """The end of the period that starts at `start` (a period start: Monday or the 1st)."""
    if period == Period.WEEK:
        return start + timedelta(days=7)
    # Day 28 + 4 days is always in the next month, whatever this month's length.
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of `moment`'s day: a learner's daily allowance starts again there."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


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
    # Rounded down: a refusal never claims more time is left than there is.
    return f"{Decimal(value).quantize(Decimal(1), rounding=ROUND_DOWN):,}"


@dataclass(frozen=True)
class Admission:
    """A job let in by its tenant's quota, whose row stays locked until the submit commits: the
    GPU-seconds it reserves, and the pools and concurrency limit it is dispatched under."""

    quota: TenantQuota
    learner: object
    seconds: int

    @property
    def pools(self) -> list[str]:
        return self.quota.pools

    @property
    def max_running_jobs(self) -> int:
        return self.quota.max_running_jobs

    def reserve(self, job) -> LedgerEntry:
        """The job's reservation in the ledger, written with the job; `quota_settle` ends it."""
        return LedgerEntry.objects.create(
            tenant_id=self.quota.tenant_id,
            period_started_at=self.quota.period_started_at,
            job=job,
            learner=self.learner,
            kind=LedgerKind.RESERVE,
            reserved=Decimal(self.seconds),
            used=Decimal(0),
        )


def quota_admit(*, tenant_id, learner, exercise_seconds: int, waiting: Callable[[], int]):
    """The way in for a job, in the submit's transaction: lock the tenant's quota (its period
        rolled forward), size the job's reservation (the exercise's budget, within the per-job
        limit), and raise QuotaExceeded unless it fits the tenant's queue (`waiting()`: its jobs
        waiting, counted under the lock), its GPU-seconds left this period and the learner's daily
        allowance, and while its model storage is not full. Then write the job and call
    `Admission.reserve(job)`; `quota_settle` ends it."""
    quota = quota_locked(tenant_id)
    seconds = min(exercise_seconds, quota.max_seconds_per_job)
    queued = waiting()
    if queued >= quota.max_queued_jobs:
        raise QuotaExceeded(
            f"Your organisation already has {queued} jobs waiting, its limit; "
            "submit again when some have started."
        )
    used = storage_used(tenant_id)
    if used >= quota.storage_bytes:
        # A run that trains keeps its model: with no room left it would be trained for nothing.
        raise QuotaExceeded(storage_full_message(used=used, limit=quota.storage_bytes))
    balance = balance_of(quota)
    resets = f"{balance.resets_at:%Y-%m-%d %H:%M} UTC"
    if balance.remaining < seconds:
        raise QuotaExceeded(
            f"Not enough GPU time left: this job reserves {_seconds(seconds)} GPU-seconds and "
            f"{_seconds(max(balance.remaining, 0))} of {_seconds(quota.gpu_seconds)} are left "
            f"this {quota.period}. The quota resets on {resets}."
        )
    if quota.learner_gpu_seconds_per_day:
        left = quota.learner_gpu_seconds_per_day - learner_spent_today(quota, learner)
        if left < seconds:
            raise QuotaExceeded(
                f"Your GPU time for today is used up: this job reserves {_seconds(seconds)} "
                f"GPU-seconds and {_seconds(max(left, 0))} of your "
                f"{_seconds(quota.learner_gpu_seconds_per_day)} a day are left. "
                "It starts again at midnight UTC."
            )
    return Admission(quota=quota, learner=learner, seconds=seconds)


def learner_spent_today(quota: TenantQuota, learner) -> Decimal:
    """GPU-seconds of the learner's jobs admitted today (UTC): reserved while they run, charged
    once settled. A job counts on the day it was admitted, so a job reserved yesterday and settled
    today does not hand back its reservation to today's allowance."""
    admitted_today = LedgerEntry.objects.filter(
        tenant_id=quota.tenant_id,
        learner=learner,
        kind=LedgerKind.RESERVE,
        created_at__gte=day_start(timezone.now()),
    ).values("job_id")
    sums = LedgerEntry.objects.filter(
        tenant_id=quota.tenant_id, job_id__in=admitted_today
    ).aggregate(reserved=Sum("reserved"), used=Sum("used"))
    return (sums["reserved"] or Decimal(0)) + (sums["used"] or Decimal(0))


def charge_for(job) -> tuple[Decimal, str]:
    """The GPU-seconds a finished job is charged, and why: the device time of the run that
    finished it, within its budget; nothing for the platform's failures.

    A code run is charged the device time its worker measured (`device_seconds`: the sandbox
    from its start to its kill), whatever the learner's code reported or whether it reported
    anything: a run that only sleeps, times out or fails is charged like one that trains. A spec
    run (the platform's own trainer) is charged the time its run held the job, or nothing when
    it never started training."""
    if job.failure_kind in PLATFORM_FAILURES:
        return Decimal(0), f"refunded: the platform failed the job ({job.failure_kind})"
    if job.device_seconds is not None:
        charged = min(Decimal(job.device_seconds), Decimal(job.budget_seconds))
        return charged.quantize(MILLI), "device time of the sandbox, measured by its worker"
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


# --- Setting quotas and rolling periods -------------------------------------------------------

QUOTA_FIELDS = (
    "period",
    "gpu_seconds",
    "max_running_jobs",
    "max_queued_jobs",
    "max_seconds_per_job",
    "learner_gpu_seconds_per_day",
    "pools",
    "storage_bytes",
    "predictions_per_day",
)


def known_pools() -> list[str]:
    return list(settings.WORKER_POOLS)


def quota_check(quota: TenantQuota) -> None:
    """Raise ValidationError, by field, unless the quota is one the platform can honour."""
    errors: dict[str, list[str]] = {}
    for name in ("gpu_seconds", "max_running_jobs", "max_queued_jobs", "max_seconds_per_job"):
        value = getattr(quota, name)
        if not isinstance(value, int) or value < 1:
            errors[name] = ["Must be a whole number of at least 1."]
    for name in ("storage_bytes", "predictions_per_day"):
        value = getattr(quota, name)
        if not isinstance(value, int) or value < 0:
            errors[name] = ["Must be a whole number, 0 or more."]
    daily = quota.learner_gpu_seconds_per_day
    if daily is not None and (not isinstance(daily, int) or daily < 1):
        errors["learner_gpu_seconds_per_day"] = ["Must be at least 1, or empty for no limit."]
    if quota.period not in Period.values:
        errors["period"] = [f"Must be one of: {', '.join(Period.values)}."]
    pools = quota.pools
    known = known_pools()
    if not isinstance(pools, list) or not pools or not all(isinstance(p, str) for p in pools):
        errors["pools"] = ["Must be a non-empty list of worker pool names."]
    elif unknown := sorted(set(pools) - set(known)):
        errors["pools"] = [
            f"Unknown pool(s): {', '.join(unknown)}. Known pools: {', '.join(known)}."
        ]
    elif len(set(pools)) != len(pools):
        errors["pools"] = ["A pool is named more than once."]
    if errors:
        raise ValidationError(errors)


def quota_set(*, tenant, actor, **values) -> TenantQuota:
    """Set a tenant's quota (a platform administrator's act, audited). Changing the period starts
    the current period of the new kind, so the balance is counted over it from then on."""
    from apps.audit.services import audit_record

    unknown = set(values) - set(QUOTA_FIELDS)
    if unknown:
        raise TypeError(f"not quota fields: {sorted(unknown)}")
    with transaction.atomic():
        quota = quota_locked(tenant.id)
        old_period = quota.period
        before = {name: getattr(quota, name) for name in QUOTA_FIELDS}
        for name, value in values.items():
            setattr(quota, name, value)
        quota_check(quota)
        if quota.period != old_period:
            quota.period_started_at = period_start_for(timezone.now(), quota.period)
        quota.full_clean(exclude=["tenant"])
        quota.save()
        after = {name: getattr(quota, name) for name in QUOTA_FIELDS}
        if after != before:
            audit_record(
                actor=actor,
                action="quota.update",
                target=quota,
                before=before,
                after=after,
                tenant=tenant,
            )
    return quota


def quota_periods_roll(now: datetime | None = None) -> int:
    """Start the current period of every quota whose period has ended (the periodic task; an
    admission also rolls its own tenant's). Returns how many quotas were rolled."""
    now = now or timezone.now()
    rolled = 0
    with scopes_disabled():  # the periodic task rolls every tenant's quota
        for period in Period.values:
            current = period_start_for(now, period)
            # Periods are aligned (Monday, the 1st), so a period has ended exactly when it
            # started before the current one.
            rolled += TenantQuota.objects.filter(
                period=period, period_started_at__lt=current
            ).update(period_started_at=current, updated_at=now)
    return rolled


# --- Model storage ------------------------------------------------------------------------------


def _in_tenant_scope(function):
    """Run the service in the scope of its `tenant_id` (keyword or first argument): these are
    called from requests, tasks and the inference pool alike."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        tenant_id = kwargs["tenant_id"] if "tenant_id" in kwargs else args[0]
        with scope(tenant=tenant_id):
            return function(*args, **kwargs)

    return wrapper


def storage_full_message(*, used: int, limit: int) -> str:
    return gettext(
        "Your school's model storage is full: %(used)s of %(limit)s used. Ask an administrator "
        "to raise the storage quota or delete old models."
    ) % {"used": filesizeformat(used), "limit": filesizeformat(limit)}


@_in_tenant_scope
def _storage_limit(tenant_id) -> int:
    quota = TenantQuota.objects.filter(tenant_id=tenant_id).only("storage_bytes").first()
    return (quota or _default_quota(tenant_id)).storage_bytes


@_in_tenant_scope
def storage_used(tenant_id) -> int:
    row = StorageUsage.objects.filter(tenant_id=tenant_id).only("bytes_used").first()
    return row.bytes_used if row else 0


def _storage_locked(tenant_id) -> StorageUsage:
    StorageUsage.objects.bulk_create([StorageUsage(tenant_id=tenant_id)], ignore_conflicts=True)
    return StorageUsage.objects.select_for_update().get(tenant_id=tenant_id)


@_in_tenant_scope
def storage_lock(*, tenant_id) -> None:
    """Lock the tenant's storage usage row until the caller's transaction ends: the stores and
    deletions of a tenant's artifacts go one at a time (call it first, before reading blobs)."""
    _storage_locked(tenant_id)


@_in_tenant_scope
def storage_reserve(*, tenant_id, size: int) -> bool:
    """Count `size` more bytes against the tenant's storage quota, under its usage row's lock
    (so concurrent stores cannot together pass the quota); False, counting nothing, when they
    would not fit. In the caller's transaction when there is one."""
    if size < 0:
        raise ValueError("A reservation is a number of bytes, not negative.")
    with transaction.atomic():
        usage = _storage_locked(tenant_id)
        if usage.bytes_used + size > _storage_limit(tenant_id):
            return False
        usage.bytes_used = F("bytes_used") + size
        usage.save(update_fields=["bytes_used", "updated_at"])
    return True


@_in_tenant_scope
def storage_release(*, tenant_id, size: int) -> None:
    """Hand back `size` bytes (files deleted); the count never goes below zero."""
    if size < 0:
        raise ValueError("A release is a number of bytes, not negative.")
    with transaction.atomic():
        usage = _storage_locked(tenant_id)
        usage.bytes_used = max(usage.bytes_used - size, 0)
        usage.save(update_fields=["bytes_used", "updated_at"])


@_in_tenant_scope
def storage_usage(tenant_id) -> tuple[int, int]:
    """(bytes used, bytes allowed) of the tenant's model storage."""
    return storage_used(tenant_id), _storage_limit(tenant_id)


# --- Predictions --------------------------------------------------------------------------------


@_in_tenant_scope
def predictions_admit(*, tenant_id, samples: int) -> bool:
    """Count one prediction request of `samples` samples against today's (UTC) allowance of the
    tenant, under the day's row lock; False, counting nothing, when the samples would pass
    predictions_per_day."""
    if samples < 1:
        raise ValueError("A prediction request has at least one sample.")
    allowed = predictions_allowed(tenant_id)
    if predictions_count(tenant_id=tenant_id, samples=samples, allowed=allowed):
        return True
    today = day_start(timezone.now()).date()
    with transaction.atomic():  # the day's first request, or a refusal
        PredictionUsage.objects.bulk_create(
            [PredictionUsage(tenant_id=tenant_id, day=today)], ignore_conflicts=True
        )
        usage = PredictionUsage.objects.select_for_update().get(tenant_id=tenant_id, day=today)
        if usage.samples + samples > allowed:
            return False
        usage.requests = F("requests") + 1
        usage.samples = F("samples") + samples
        usage.save(update_fields=["requests", "samples"])
    return True


@_in_tenant_scope
def predictions_allowed(tenant_id) -> int:
    """The samples the tenant may have predicted per day (UTC)."""
    quota = TenantQuota.objects.filter(tenant_id=tenant_id).only("predictions_per_day").first()
    return (quota or _default_quota(tenant_id)).predictions_per_day


@_in_tenant_scope
def predictions_count(*, tenant_id, samples: int, allowed: int) -> bool:
    """Count one request of `samples` samples in one statement when today's row exists and
    they fit in `allowed`; False, counting nothing, otherwise (no row yet, or over). The
    conditional UPDATE takes the row's lock, and PostgreSQL checks the condition again on the
    row as it is once locked, so two requests cannot both take the last of the allowance."""
    today = day_start(timezone.now()).date()
    return bool(
        PredictionUsage.objects.filter(
            tenant_id=tenant_id, day=today, samples__lte=allowed - samples
        ).update(requests=F("requests") + 1, samples=F("samples") + samples)
    )


@_in_tenant_scope
def predictions_today(tenant_id) -> tuple[int, int, int]:
    """(requests, samples, samples allowed) of the tenant's predictions today (UTC)."""
    quota = TenantQuota.objects.filter(tenant_id=tenant_id).first() or _default_quota(tenant_id)
    row = PredictionUsage.objects.filter(
        tenant_id=tenant_id, day=day_start(timezone.now()).date()
    ).first()
    requests, samples = (row.requests, row.samples) if row else (0, 0)
    return requests, samples, quota.predictions_per_day
