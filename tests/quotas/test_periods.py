"""Periods: where weeks and months start and end, the periodic task that starts the new period
(its balance is the full quota again), and a job of the old period settling into the old one."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from apps.jobs.services import job_cancel
from apps.quotas import tasks
from apps.quotas.models import TenantQuota
from apps.quotas.services import balance_of, period_end, period_start_for, quota_locked
from tests.quotas.ledger_support import (
    clock_at,
    enrolled_learner,
    ledger,
    next_month_start,
    quota_update,
    submit,
)

pytestmark = pytest.mark.calendar  # windows, periods, expiries: relative to today


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (utc(2025, 1, 1), utc(2025, 2, 1)),
        (utc(2025, 2, 1), utc(2025, 3, 1)),
        (utc(2024, 2, 1), utc(2024, 3, 1)),  # a leap year
        (utc(2025, 4, 1), utc(2025, 5, 1)),
        (utc(2024, 12, 1), utc(2025, 1, 1)),
    ],
)
def test_a_month_ends_on_the_first_of_the_next(start, end):
    assert period_end(start, "month") == end


def test_a_week_runs_from_monday_midnight_utc_for_seven_days():
    sunday_night = utc(2026, 11, 22, 23, 59, 59)
    assert period_start_for(sunday_night, "week") == utc(2026, 11, 16)
    assert period_start_for(utc(2026, 11, 23, 0, 0), "week") == utc(2026, 11, 23)
    assert period_end(utc(2026, 11, 16), "week") == utc(2026, 11, 23)


def test_a_moment_in_another_time_zone_belongs_to_its_utc_day():
    from zoneinfo import ZoneInfo

    # 1 March 00:30 in Berlin is still 28 February in UTC.
    moment = datetime(2025, 3, 1, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert period_start_for(moment, "month") == utc(2025, 2, 1)


def test_the_roll_task_runs_every_10_minutes_on_beat():
    entry = settings.CELERY_BEAT_SCHEDULE["quota-periods-roll"]
    assert entry["task"] == "apps.quotas.tasks.quota_periods_roll"
    assert entry["schedule"].minute == set(range(0, 60, 10))
    assert tasks.quota_periods_roll.name == "apps.quotas.tasks.quota_periods_roll"


@pytest.mark.django_db
def test_the_period_reset_restores_the_full_quota(tenant_a, tenant_b):
    quota_update(tenant_a, gpu_seconds=100)
    learner = enrolled_learner(tenant_a)
    old_job = submit(tenant_a, learner).job  # 60 reserved, 2.5 used: 37.5 left
    week_start = period_start_for(timezone.now(), "week")
    quota_update(tenant_b, period="week", period_started_at=week_start)
    later = next_month_start(timezone.now()) + timedelta(minutes=5)
    # Within the period the task changes nothing.
    assert tasks.quota_periods_roll.apply().get() == 0

    with clock_at(later):
        rolled = tasks.quota_periods_roll.apply().get()
    # Both tenants' periods ended by then (a week has too, whenever this month ends).
    assert rolled == 2
    with scopes_disabled():
        quota_a = TenantQuota.objects.get(tenant=tenant_a.tenant)
        quota_b = TenantQuota.objects.get(tenant=tenant_b.tenant)
    assert quota_a.period_started_at == next_month_start(timezone.now())
    assert quota_b.period_started_at == period_start_for(later, "week")
    with scope(tenant=tenant_a.tenant):
        balance = balance_of(quota_a)
        assert (balance.reserved, balance.used, balance.remaining) == (0, 0, Decimal(100))
        # The old period's job ends in the new one: it settles into the period it reserved in.
        with clock_at(later):
            job_cancel(job=old_job, by=learner)
        assert balance_of(quota_a).remaining == Decimal(100)
    assert ledger(old_job)[1] == ("settle", Decimal(-60), Decimal(0))
    with clock_at(later):
        assert tasks.quota_periods_roll.apply().get() == 0  # idempotent


@pytest.mark.django_db
def test_admission_rolls_its_own_tenants_ended_period(tenant_a):
    quota_update(tenant_a, gpu_seconds=100)
    next_period = next_month_start(timezone.now())
    with scope(tenant=tenant_a.tenant), clock_at(next_period + timedelta(days=3)):
        quota = quota_locked(tenant_a.tenant.id)
        assert quota.period_started_at == next_period
        assert balance_of(quota).remaining == Decimal(100)
