"""Reads of quotas and the ledger: a tenant's quota and balance, and its usage this period."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.quotas.models import LedgerEntry, LedgerKind, TenantQuota
from apps.quotas.services import (
    Balance,
    _default_quota,
    balance_of,
    period_end,
    period_start_for,
    predictions_today,
    storage_usage,
)

ZERO = Decimal(0)


def quota_get(*, tenant) -> TenantQuota:
    """The tenant's quota as admission sees it now: its row (or, before its first job, the
    defaults it will get), with the period rolled forward when it has ended. Writes nothing."""
    quota = TenantQuota.objects.filter(tenant_id=tenant.id).first() or _default_quota(tenant.id)
    now = timezone.now()
    if now >= period_end(quota.period_started_at, quota.period):
        quota.period_started_at = period_start_for(now, quota.period)
    return quota


def balance_get(*, quota: TenantQuota) -> Balance:
    return balance_of(quota)


def quota_list_with_balances(*, tenants) -> dict:
    """{tenant id: (quota, balance)} for a page of tenants in two queries: their quotas (the
    defaults for those without a row), and one grouped sum of their current periods' ledgers."""
    tenants = list(tenants)
    rows = {quota.tenant_id: quota for quota in TenantQuota.objects.filter(tenant__in=tenants)}
    now = timezone.now()
    quotas = {}
    for tenant in tenants:
        quota = rows.get(tenant.id) or _default_quota(tenant.id)
        if now >= period_end(quota.period_started_at, quota.period):
            quota.period_started_at = period_start_for(now, quota.period)
        quotas[tenant.id] = quota
    current = Q(pk__in=[])
    for quota in quotas.values():
        current |= Q(tenant_id=quota.tenant_id, period_started_at=quota.period_started_at)
    sums = {
        row["tenant_id"]: row
        for row in LedgerEntry.objects.filter(current)
        .values("tenant_id")
        .annotate(reserved=Sum("reserved", default=ZERO), used=Sum("used", default=ZERO))
        .order_by()
    }
    return {
        tenant_id: (
            quota,
            Balance(
                quota=quota.gpu_seconds,
                reserved=sums.get(tenant_id, {}).get("reserved", ZERO),
                used=sums.get(tenant_id, {}).get("used", ZERO),
                period_started_at=quota.period_started_at,
                resets_at=period_end(quota.period_started_at, quota.period),
            ),
        )
        for tenant_id, quota in quotas.items()
    }


@dataclass(frozen=True)
class Usage:
    period_started_at: datetime
    resets_at: datetime
    used: Decimal
    by_course: list[dict]
    by_learner: list[dict]
    by_day: list[dict]


def _sums():
    return {
        "used": Sum("used", default=ZERO),
        "reserved": Sum("reserved", default=ZERO),
        "jobs": Count("id", filter=Q(kind=LedgerKind.RESERVE)),
    }


def usage_get(*, quota: TenantQuota) -> Usage:
    """GPU-seconds of the quota's current period: in all, by course, by learner (most first),
    and per day from the period's start to today (days without use are 0). Three grouped
    queries, whatever the number of jobs."""
    rows = LedgerEntry.objects.filter(
        tenant_id=quota.tenant_id, period_started_at=quota.period_started_at
    )
    course = "job__submission__assignment__course"
    by_course = list(
        rows.values(course_id=F(f"{course}__id"), course_title=F(f"{course}__title"))
        .annotate(**_sums())
        .order_by("-used", "course_title")
    )
    by_learner = list(
        rows.values("learner_id", email=F("learner__email"), full_name=F("learner__full_name"))
        .annotate(**_sums())
        .order_by("-used", "email")
    )
    # A job's charge lands on the day it was settled.
    per_day = dict(
        rows.filter(kind=LedgerKind.SETTLE)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(used=Sum("used", default=ZERO))
        .values_list("day", "used")
    )
    resets_at = period_end(quota.period_started_at, quota.period)
    by_day = [
        {"day": day, "used": per_day.get(day, ZERO)}
        for day in _days(quota.period_started_at.date(), min(timezone.now(), resets_at).date())
    ]
    return Usage(
        period_started_at=quota.period_started_at,
        resets_at=resets_at,
        used=sum((row["used"] for row in by_course), ZERO),
        by_course=by_course,
        by_learner=by_learner,
        by_day=by_day,
    )


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class ArtifactUsage:
    """Model storage and today's predictions of a tenant, as the usage page and APIs show them."""

    storage_used: int
    storage_limit: int
    predictions_requests: int
    predictions_samples: int
    predictions_limit: int


def artifact_usage_get(*, tenant_id) -> ArtifactUsage:
    used, limit = storage_usage(tenant_id)
    requests, samples, allowed = predictions_today(tenant_id)
    return ArtifactUsage(
        storage_used=used,
        storage_limit=limit,
        predictions_requests=requests,
        predictions_samples=samples,
        predictions_limit=allowed,
    )
