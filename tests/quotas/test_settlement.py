"""Settlement: a job's end releases its reservation and charges the device time of the run that
finished it, once; the platform's failures and jobs that never trained are refunded in full.
Runs are driven through the real lease functions with the clock stopped at known instants."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from apps.jobs.lease import job_claim
from apps.jobs.models import Job
from apps.jobs.services import job_cancel
from apps.quotas.models import LedgerEntry
from apps.quotas.services import balance_of, quota_settle
from tests.factories import AssignmentFactory, ExerciseFactory
from tests.quotas.ledger_support import (
    clock_at,
    enrolled_learner,
    ledger,
    ledger_sums,
    quota_update,
    run,
    submit,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tenant_scope(tenant_a):
    with scope(tenant=tenant_a.tenant):  # as a worker task runs
        yield


@pytest.fixture
def long_job(tenant_a):
    """A queued job of an exercise with a 600 s budget: it reserved 600 GPU-seconds."""
    exercise = ExerciseFactory(course=tenant_a.course, max_seconds=600)
    assignment = AssignmentFactory(exercise=exercise)
    return submit(tenant_a, enrolled_learner(tenant_a), assignment=assignment).job


def test_a_job_that_reserved_600_s_and_ran_120_s_is_charged_120_s(tenant_a, long_job):
    assert ledger(long_job) == [("reserve", Decimal(600), Decimal(0))]
    assert ledger_sums(tenant_a) == (Decimal(600), Decimal("2.5"))
    job = run(long_job, started=timezone.now(), seconds=120)
    assert job.state == "succeeded"
    assert ledger(job) == [
        ("reserve", Decimal(600), Decimal(0)),
        ("settle", Decimal(-600), Decimal("120.000")),
    ]
    assert ledger_sums(tenant_a) == (Decimal(0), Decimal("122.5"))


def test_a_run_longer_than_its_budget_is_charged_its_budget(tenant_a, long_job):
    job = run(long_job, started=timezone.now(), seconds=700)
    assert ledger(job)[1] == ("settle", Decimal(-600), Decimal("600.000"))


def test_a_killed_workers_job_is_charged_once_for_the_run_that_finished_it(tenant_a, long_job):
    started = timezone.now()
    with scope(tenant=tenant_a.tenant), clock_at(started):
        assert job_claim(job_id=long_job.id, owner="worker-killed") is not None
    # The worker died 300 s in: its lease ran out and a second worker takes the job over.
    Job.objects.filter(id=long_job.id).update(lease_expires_at=started + timedelta(seconds=60))
    job = run(long_job, started=started + timedelta(seconds=300), seconds=90)
    assert (job.state, job.attempt, job.workers_lost) == ("succeeded", 2, 1)
    assert ledger(job) == [
        ("reserve", Decimal(600), Decimal(0)),
        ("settle", Decimal(-600), Decimal("90.000")),
    ]
    # Settling again (a duplicate end) changes nothing: one settlement per job.
    with scope(tenant=tenant_a.tenant):
        assert quota_settle(job) is None
    assert len(ledger(job)) == 2


def test_a_job_failed_before_training_is_refunded_in_full(tenant_a, long_job):
    job = run(
        long_job,
        started=timezone.now(),
        seconds=30,
        state="failed",
        steps=0,
        failure_kind="setup",
        message="The dataset could not be loaded.",
    )
    assert ledger(job) == [
        ("reserve", Decimal(600), Decimal(0)),
        ("settle", Decimal(-600), Decimal(0)),
    ]
    assert ledger_sums(tenant_a) == (Decimal(0), Decimal("2.5"))


def test_a_job_failed_by_the_platform_after_training_began_is_charged_nothing(tenant_a, long_job):
    job = run(
        long_job, started=timezone.now(), seconds=200, state="failed", failure_kind="internal"
    )
    assert ledger(job)[1] == ("settle", Decimal(-600), Decimal(0))


def test_a_job_whose_workers_were_all_lost_is_refunded(tenant_a, long_job, settings):
    settings.JOB_MAX_WORKERS_LOST = 1
    started = timezone.now()
    with scope(tenant=tenant_a.tenant), clock_at(started):
        job_claim(job_id=long_job.id, owner="worker-killed")
    Job.objects.filter(id=long_job.id).update(lease_expires_at=started + timedelta(seconds=1))
    with scope(tenant=tenant_a.tenant), clock_at(started + timedelta(seconds=100)):
        assert job_claim(job_id=long_job.id, owner="worker-2") is None
    job = Job.objects.get(id=long_job.id)
    assert (job.state, job.failure_kind) == ("failed", "workers_lost")
    assert ledger(job)[1] == ("settle", Decimal(-600), Decimal(0))


def test_a_job_cancelled_while_queued_is_refunded_in_full(tenant_a, long_job):
    with scope(tenant=tenant_a.tenant):
        job_cancel(job=long_job, by=long_job.submission.learner)
    assert ledger(long_job) == [
        ("reserve", Decimal(600), Decimal(0)),
        ("settle", Decimal(-600), Decimal(0)),
    ]


def test_a_learners_failure_during_training_is_charged_what_ran(tenant_a, long_job):
    job = run(long_job, started=timezone.now(), seconds=45, state="failed", failure_kind="diverged")
    assert ledger(job)[1] == ("settle", Decimal(-600), Decimal("45.000"))


def test_the_balance_is_the_quota_less_what_is_reserved_and_used(tenant_a, long_job):
    quota = quota_update(tenant_a, gpu_seconds=5000)
    with scope(tenant=tenant_a.tenant):
        balance = balance_of(quota)
    assert (balance.reserved, balance.used, balance.remaining) == (
        Decimal(600),
        Decimal("2.5"),
        Decimal("4397.5"),
    )


# A code run is charged the device time its worker measured around the sandbox (device_seconds),
# whatever the learner's code reported: no outcome, no steps, a timeout, a failure of its own.


@pytest.mark.parametrize(
    "state, failure_kind",
    [
        ("failed", "exception"),
        ("timed_out", "wall_time"),
        ("failed", "protocol"),
        ("cancelled", ""),
        ("succeeded", ""),
    ],
)
def test_a_code_run_is_charged_its_measured_device_time_whatever_it_reported(
    tenant_a, long_job, state, failure_kind
):
    job = run(
        long_job,
        started=timezone.now(),
        seconds=200,
        state=state,
        steps=0,
        failure_kind=failure_kind,
        device_seconds=Decimal("93.417"),
    )
    assert (job.state, job.outcome) == (state, None)
    assert ledger(job)[1] == ("settle", Decimal(-600), Decimal("93.417"))
    with scopes_disabled():
        note = LedgerEntry.objects.get(job=job, kind="settle").note
    assert note == "device time of the sandbox, measured by its worker"


def test_a_code_run_is_charged_at_most_its_budget(tenant_a, long_job):
    job = run(
        long_job,
        started=timezone.now(),
        seconds=700,
        state="timed_out",
        steps=0,
        failure_kind="wall_time",
        device_seconds=Decimal("631.250"),
    )
    assert ledger(job)[1] == ("settle", Decimal(-600), Decimal("600.000"))


@pytest.mark.parametrize("failure_kind", ["sandbox", "refused", "internal"])
def test_a_code_run_the_platform_failed_is_refunded_though_it_was_measured(
    tenant_a, long_job, failure_kind
):
    job = run(
        long_job,
        started=timezone.now(),
        seconds=20,
        state="failed",
        steps=0,
        failure_kind=failure_kind,
        device_seconds=Decimal("4.5"),
    )
    assert ledger(job)[1] == ("settle", Decimal(-600), Decimal(0))
