"""Admission: submissions reserve their budget under the tenant's quota row lock, so concurrent
submits never together reserve more than the quota; refusals (GPU-seconds, the learner's daily
allowance, the queue) are 409s with a message that says what is left and create nothing."""

import threading
import time
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from apps.jobs.models import Job, Submission
from apps.jobs.runner import _budget
from apps.jobs.services import job_cancel
from apps.quotas import services
from apps.quotas.models import LedgerEntry
from apps.quotas.services import QuotaExceeded
from tests.conftest import api_client_for
from tests.quotas.ledger_support import (
    XOR_SPEC,
    enrolled_learner,
    ledger,
    ledger_sums,
    next_month_start,
    quota_update,
    submit,
)
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.calendar  # windows, periods, expiries: relative to today


def _url(world) -> str:
    return f"/api/v1/t/{world.tenant.slug}/assignments/{world.assignment.id}/submissions/"


def _resets(world) -> str:
    return f"{next_month_start(timezone.now()):%Y-%m-%d} 00:00 UTC"


def _post(client, world):
    return client.post(_url(world), {"kind": "spec", "spec": XOR_SPEC}, format="json")


def assert_refused_and_nothing_written(client, world, message: str) -> None:
    before = db_snapshot()
    response = _post(client, world)
    assert response.status_code == 409
    assert response.json() == {
        "error": {"code": "quota_exceeded", "message": message, "fields": {}}
    }
    assert db_snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_50_concurrent_submissions_against_a_quota_that_fits_10_admit_exactly_10(tenant_a):
    # The fixture's ledger holds 2.5 GPU-seconds used; 650 leaves 647.5: ten 60 s jobs fit.
    quota_update(tenant_a, gpu_seconds=650)
    learners = [enrolled_learner(tenant_a) for _ in range(50)]
    clients = [api_client_for(learner) for learner in learners]
    barrier = threading.Barrier(len(clients))
    responses = [None] * len(clients)

    def submit_as(index):
        try:
            barrier.wait(timeout=60)
            responses[index] = _post(clients[index], tenant_a)
        finally:
            connection.close()

    read_balance = services.balance_of

    def balance_then_pause(quota):
        # Widens the gap between reading the balance and writing the reservation, so that
        # admission without the row lock would over-admit here every time (not a timing test).
        balance = read_balance(quota)
        time.sleep(0.02)
        return balance

    threads = [threading.Thread(target=submit_as, args=(i,)) for i in range(len(clients))]
    with mock.patch.object(services, "balance_of", balance_then_pause):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 10 + [409] * 40
    message = (
        "Not enough GPU time left: this job reserves 60 GPU-seconds and 47 of 650 are left "
        f"this month. The quota resets on {_resets(tenant_a)}."
    )
    for response in responses:
        if response.status_code == 409:
            assert response.json() == {
                "error": {"code": "quota_exceeded", "message": message, "fields": {}}
            }
    admitted = {learners[i].id for i, r in enumerate(responses) if r.status_code == 201}
    with scopes_disabled():
        new_jobs = Job.objects.filter(submission__learner__in=learners)
        assert new_jobs.count() == 10
        assert set(new_jobs.values_list("submission__learner", flat=True)) == admitted
        # The refused submits rolled back whole: no submission, no ledger row.
        assert Submission.objects.filter(learner__in=learners).count() == 10
        reserves = LedgerEntry.objects.filter(learner__in=learners, kind="reserve")
        assert reserves.count() == 10
        assert set(reserves.values_list("reserved", flat=True)) == {Decimal(60)}
    reserved, used = ledger_sums(tenant_a)
    assert reserved + used <= 650


@pytest.mark.django_db
def test_a_refused_submission_is_a_409_with_the_message_and_creates_nothing(tenant_a):
    quota_update(tenant_a, gpu_seconds=100)
    learner = enrolled_learner(tenant_a)
    client = api_client_for(learner)
    assert _post(client, tenant_a).status_code == 201
    assert_refused_and_nothing_written(
        client,
        tenant_a,
        "Not enough GPU time left: this job reserves 60 GPU-seconds and 37 of 100 are left this "
        f"month. The quota resets on {_resets(tenant_a)}.",
    )


@pytest.mark.django_db
def test_the_learners_daily_allowance_refuses_the_job_that_does_not_fit(tenant_a):
    quota_update(tenant_a, learner_gpu_seconds_per_day=100)
    learner, other = enrolled_learner(tenant_a), enrolled_learner(tenant_a)
    submit(tenant_a, learner)
    with pytest.raises(QuotaExceeded) as refused:
        submit(tenant_a, learner)
    assert str(refused.value) == (
        "Your GPU time for today is used up: this job reserves 60 GPU-seconds and 40 of your "
        "100 a day are left. It starts again at midnight UTC."
    )
    submit(tenant_a, other)  # the allowance is each learner's own


@pytest.mark.django_db
def test_a_job_admitted_yesterday_and_settled_today_does_not_refill_todays_allowance(tenant_a):
    quota_update(tenant_a, learner_gpu_seconds_per_day=100)
    learner = enrolled_learner(tenant_a)
    yesterday_job = submit(tenant_a, learner).job
    with scopes_disabled():
        LedgerEntry.objects.filter(job=yesterday_job).update(
            created_at=timezone.now() - timedelta(days=1)
        )
    with scope(tenant=tenant_a.tenant):
        job_cancel(job=yesterday_job, by=learner)  # its settlement (-60 reserved) lands today
    assert ledger(yesterday_job) == [
        ("reserve", Decimal(60), Decimal(0)),
        ("settle", Decimal(-60), Decimal(0)),
    ]
    submit(tenant_a, learner)
    with pytest.raises(QuotaExceeded, match="and 40 of your 100 a day are left"):
        submit(tenant_a, learner)


@pytest.mark.django_db
def test_the_queue_limit_refuses_a_submission_with_a_409_and_creates_nothing(tenant_a):
    quota_update(tenant_a, max_queued_jobs=2)
    learners = [enrolled_learner(tenant_a) for _ in range(3)]
    submit(tenant_a, learners[0])
    submit(tenant_a, learners[1])
    assert_refused_and_nothing_written(
        api_client_for(learners[2]),
        tenant_a,
        "Your organisation already has 2 jobs waiting, its limit; submit again when some have "
        "started.",
    )


@pytest.mark.django_db
def test_a_jobs_budget_is_capped_by_the_quotas_seconds_per_job(tenant_a):
    quota_update(tenant_a, max_seconds_per_job=25)
    job = submit(tenant_a, enrolled_learner(tenant_a)).job
    assert tenant_a.exercise.max_seconds == 60
    assert job.budget_seconds == 25
    assert ledger(job) == [("reserve", Decimal(25), Decimal(0))]
    assert _budget(job, tenant_a.exercise).max_seconds == 25  # what the trainer is given


@pytest.mark.django_db(transaction=True)
def test_a_submit_locks_only_the_learners_enrollment_not_the_course(tenant_a):
    """Learners of one course submit side by side: a transaction holding the course row (a
    teacher's edit) does not hold up a submission, nor do other learners' submissions."""
    import psycopg

    from tests.conftest import database_url_of_test_db

    learner = enrolled_learner(tenant_a)
    with psycopg.connect(database_url_of_test_db()) as other:
        # A teacher's edit, as Django saves it: an UPDATE of the course row, not yet committed.
        other.execute(
            "UPDATE courses_course SET title = title || ' (edited)' WHERE id = %s",
            [tenant_a.course.id],
        )
        with connection.cursor() as cursor:
            # Waiting on the course row would fail here rather than hang the suite.
            cursor.execute("SET lock_timeout = '20s'")
        try:
            submission = submit(tenant_a, learner)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        other.rollback()
    assert submission.job.state == "queued"
