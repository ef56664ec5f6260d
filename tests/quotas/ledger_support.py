"""Helpers for the quota tests: a learner enrolled in a course, a submission through the real
service, a run driven through the real lease functions on a stopped clock, and ledger sums."""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

from django.db.models import Sum
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from apps.jobs.lease import claim_finish, job_claim
from apps.jobs.services import submission_create
from apps.quotas.models import LedgerEntry, TenantQuota
from apps.tenants.models import Role
from runtime.templates import TEMPLATES
from tests.factories import EnrollmentFactory, MembershipFactory

XOR_SPEC = TEMPLATES["xor"].spec


def enrolled_learner(world, course=None):
    user = MembershipFactory(tenant=world.tenant, role=Role.LEARNER).user
    EnrollmentFactory(course=course or world.course, user=user)
    return user


def quota_update(world, **fields) -> TenantQuota:
    with scopes_disabled():
        TenantQuota.objects.filter(tenant=world.tenant).update(**fields)
        return TenantQuota.objects.get(tenant=world.tenant)


def submit(world, learner, assignment=None):
    with scope(tenant=world.tenant):
        return submission_create(
            assignment=assignment or world.assignment, learner=learner, kind="spec", spec=XOR_SPEC
        )


@contextmanager
def clock_at(moment: datetime):
    """Stop the clock at `moment` for everything that asks django.utils.timezone.now()."""
    with mock.patch.object(timezone, "now", return_value=moment):
        yield


def run(job, *, started: datetime, seconds: float, state="succeeded", steps=40, **fields):
    """Claim the job at `started` and end it `seconds` later as its worker would."""
    with scope(tenant=job.tenant_id):
        with clock_at(started):
            claim = job_claim(job_id=job.id, owner="worker-1", device="cpu")
        assert claim is not None
        end = started + timedelta(seconds=seconds)
        with clock_at(end):
            return claim_finish(
                claim,
                state=state,
                final_payload={},
                outcome={"steps": steps} if steps else None,
                **fields,
            )


def ledger(job) -> list[tuple[str, Decimal, Decimal]]:
    with scopes_disabled():
        return list(
            LedgerEntry.objects.filter(job=job)
            .order_by("id")
            .values_list("kind", "reserved", "used")
        )


def ledger_sums(world) -> tuple[Decimal, Decimal]:
    """(reserved, used) over the tenant's current period."""
    with scopes_disabled():
        quota = TenantQuota.objects.get(tenant=world.tenant)
        sums = LedgerEntry.objects.filter(
            tenant=world.tenant, period_started_at=quota.period_started_at
        ).aggregate(reserved=Sum("reserved", default=0), used=Sum("used", default=0))
    return sums["reserved"], sums["used"]


def next_month_start(now: datetime) -> datetime:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)
