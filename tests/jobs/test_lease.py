"""Leases with fencing tokens, and the reaper, without a worker: a claim takes a queued job, a
live lease turns a second claim away, a stale token can write nothing, and an expired lease
sends the job back to the queue (or ends it after too many lost workers, or when cancelled)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scope

from apps.jobs.dispatch.reaper import jobs_reap
from apps.jobs.lease import (
    Claim,
    LeaseLost,
    claim_event_append,
    claim_finish,
    job_claim,
    lease_renew,
)
from apps.jobs.models import Job, JobEvent
from apps.jobs.services import job_cancel, submission_create
from apps.jobs.states import InvalidTransition
from runtime.templates import TEMPLATES
from tests.snapshots import db_snapshot

LOST_MESSAGE = (
    "The worker running attempt {n} stopped answering; its events above are kept but that run "
    "was abandoned."
)


@pytest.fixture
def job(tenant_a) -> Job:
    """A queued job as the submit service makes it (its event 1 is `queued`), inside the
    tenant's scope for the whole test, as a worker task has it."""
    with scope(tenant=tenant_a.tenant.id):
        submission = submission_create(
            assignment=tenant_a.assignment,
            learner=tenant_a.learner.user,
            kind="spec",
            spec=TEMPLATES["xor"].spec,
        )
        yield submission.job


def _events(job) -> list[tuple[int, int, str]]:
    return list(
        JobEvent.objects.filter(job=job).order_by("seq").values_list("seq", "attempt", "type")
    )


def _payloads(job) -> list[dict]:
    return list(JobEvent.objects.filter(job=job).order_by("seq").values_list("payload", flat=True))


def _expire(job) -> None:
    """The worker stopped renewing: its lease ran out a second ago."""
    Job.objects.filter(id=job.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_a_claim_takes_a_queued_job_with_token_1(job):
    before = timezone.now()
    claim = job_claim(job_id=job.id, owner="host-1:101", device="cpu")
    after = timezone.now()
    assert claim == Claim(job.tenant_id, job.id, token=1, attempt=1, owner="host-1:101")
    job.refresh_from_db()
    assert (job.state, job.lease_owner, job.lease_token, job.attempt, job.device) == (
        "running",
        "host-1:101",
        1,
        1,
        "cpu",
    )
    lease = timedelta(seconds=30)  # JOB_LEASE_SECONDS
    assert before + lease <= job.lease_expires_at <= after + lease
    assert before <= job.started_at <= after
    assert (job.last_seq, job.workers_lost, job.finished_at) == (2, 0, None)
    assert _events(job) == [(1, 0, "queued"), (2, 1, "started")]
    assert _payloads(job)[1] == {"attempt": 1, "device": "cpu"}


def test_a_second_claim_while_the_lease_is_live_gets_nothing_and_changes_nothing(job):
    job_claim(job_id=job.id, owner="host-1:101")
    before = db_snapshot()
    assert job_claim(job_id=job.id, owner="host-2:202") is None
    assert db_snapshot() == before
    job.refresh_from_db()
    assert (job.lease_owner, job.lease_token) == ("host-1:101", 1)


def test_a_claim_on_a_finished_job_gets_nothing(tenant_a):
    with scope(tenant=tenant_a.tenant.id):
        before = db_snapshot()
        assert job_claim(job_id=tenant_a.job.id, owner="host-2:202") is None
        assert db_snapshot() == before


def test_the_holder_appends_events_and_renews_its_lease(job):
    claim = job_claim(job_id=job.id, owner="host-1:101")
    assert claim_event_append(claim, type="progress", payload={"epoch": 1}) == 3
    Job.objects.filter(id=job.id).update(lease_expires_at=timezone.now())
    assert lease_renew(claim) is True
    job.refresh_from_db()
    assert job.lease_expires_at > timezone.now() + timedelta(seconds=20)
    assert _events(job) == [(1, 0, "queued"), (2, 1, "started"), (3, 1, "progress")]


def test_a_stale_token_can_neither_write_nor_finish_nor_renew(job):
    stale = job_claim(job_id=job.id, owner="host-1:101")
    _expire(job)
    assert jobs_reap() == {"requeued": 1, "failed": 0, "published": 0}
    fresh = job_claim(job_id=job.id, owner="host-2:202")
    assert (fresh.token, fresh.attempt) == (2, 2)

    before = db_snapshot()
    with pytest.raises(LeaseLost):
        claim_event_append(stale, type="progress", payload={"epoch": 9})
    with pytest.raises(LeaseLost):
        claim_finish(stale, state="succeeded", final_payload={})
    assert lease_renew(stale) is False
    assert db_snapshot() == before

    assert claim_event_append(fresh, type="progress", payload={"epoch": 1}) == 6


def test_a_stale_token_cannot_write_to_a_requeued_job(job):
    claim = job_claim(job_id=job.id, owner="host-1:101")
    _expire(job)
    jobs_reap()
    before = db_snapshot()
    with pytest.raises(LeaseLost):
        claim_event_append(claim, type="progress", payload={})
    assert db_snapshot() == before


def test_the_reaper_requeues_a_job_whose_lease_expired(job):
    job_claim(job_id=job.id, owner="host-1:101")
    _expire(job)
    assert jobs_reap() == {"requeued": 1, "failed": 0, "published": 0}
    job.refresh_from_db()
    assert (job.state, job.workers_lost, job.attempt, job.lease_owner, job.lease_token) == (
        "queued",
        1,
        1,
        "",
        1,
    )
    assert (job.dispatched_at, job.finished_at, job.last_seq) == (None, None, 4)
    assert _events(job) == [
        (1, 0, "queued"),
        (2, 1, "started"),
        (3, 1, "attempt_lost"),
        (4, 1, "requeued"),
    ]
    assert _payloads(job)[2:] == [
        {"attempt": 1, "worker": "host-1:101", "message": LOST_MESSAGE.format(n=1)},
        {"after_attempt": 1},
    ]


def test_the_reaper_leaves_a_live_lease_alone(job):
    job_claim(job_id=job.id, owner="host-1:101")
    before = db_snapshot()
    assert jobs_reap() == {"requeued": 0, "failed": 0, "published": 0}
    assert db_snapshot() == before


def test_a_claim_that_finds_an_expired_lease_takes_the_job_over(job):
    job_claim(job_id=job.id, owner="host-1:101")
    _expire(job)
    claim = job_claim(job_id=job.id, owner="host-2:202")
    assert (claim.token, claim.attempt, claim.owner) == (2, 2, "host-2:202")
    job.refresh_from_db()
    assert (job.state, job.workers_lost, job.lease_owner) == ("running", 1, "host-2:202")
    assert _events(job) == [
        (1, 0, "queued"),
        (2, 1, "started"),
        (3, 1, "attempt_lost"),
        (4, 1, "requeued"),
        (5, 2, "started"),
    ]


def test_after_the_third_lost_worker_the_job_fails(job):
    for attempt in (1, 2):
        job_claim(job_id=job.id, owner=f"host-{attempt}:1")
        _expire(job)
        assert jobs_reap() == {"requeued": 1, "failed": 0, "published": 0}
    job_claim(job_id=job.id, owner="host-3:1")
    _expire(job)
    assert jobs_reap() == {"requeued": 0, "failed": 1, "published": 0}

    job.refresh_from_db()
    message = (
        "The job's worker was lost 3 times, so it will not be run again. This is a fault of the "
        "platform, not of your model; please submit again later."
    )
    assert (job.state, job.failure_kind, job.message) == ("failed", "workers_lost", message)
    assert (job.workers_lost, job.attempt, job.lease_owner, job.lease_expires_at) == (
        3,
        3,
        "",
        None,
    )
    assert job.finished_at is not None
    assert _events(job) == [
        (1, 0, "queued"),
        (2, 1, "started"),
        (3, 1, "attempt_lost"),
        (4, 1, "requeued"),
        (5, 2, "started"),
        (6, 2, "attempt_lost"),
        (7, 2, "requeued"),
        (8, 3, "started"),
        (9, 3, "attempt_lost"),
        (10, 3, "failed"),
    ]
    assert _payloads(job)[-1] == {"message": message, "kind": "workers_lost"}

    before = db_snapshot()
    assert job_claim(job_id=job.id, owner="host-4:1") is None
    assert db_snapshot() == before


def test_a_cancel_requested_before_the_worker_was_lost_ends_the_job_cancelled(job, tenant_a):
    job_claim(job_id=job.id, owner="host-1:101")
    job_cancel(job=job, by=tenant_a.learner.user)
    _expire(job)
    result = jobs_reap()
    assert result["requeued"] == 0
    job.refresh_from_db()
    assert (job.state, job.workers_lost, job.lease_owner, job.lease_expires_at) == (
        "cancelled",
        1,
        "",
        None,
    )
    assert _events(job) == [
        (1, 0, "queued"),
        (2, 1, "started"),
        (3, 1, "cancel_requested"),
        (4, 1, "attempt_lost"),
        (5, 1, "cancelled"),
    ]
    assert _payloads(job)[-1] == {"message": "Cancelled."}
    assert job_claim(job_id=job.id, owner="host-2:202") is None


def test_the_holder_finishes_the_job_once(job):
    claim = job_claim(job_id=job.id, owner="host-1:101")
    finished = claim_finish(claim, state="succeeded", final_payload={"metrics": {"accuracy": 1}})
    assert (finished.state, finished.lease_owner, finished.lease_expires_at) == (
        "succeeded",
        "",
        None,
    )
    assert _events(job)[-1] == (3, 1, "succeeded")
    before = db_snapshot()
    with pytest.raises(LeaseLost):
        claim_finish(claim, state="succeeded", final_payload={})
    assert job_claim(job_id=job.id, owner="host-2:202") is None
    assert db_snapshot() == before


def test_a_finish_into_a_forbidden_state_raises_and_writes_nothing(job):
    claim = job_claim(job_id=job.id, owner="host-1:101")
    before = db_snapshot()
    with pytest.raises(InvalidTransition, match=r"^A job cannot go from running to running\.$"):
        claim_finish(claim, state="running", final_payload={})
    assert db_snapshot() == before


def test_the_reaper_releases_a_job_left_waiting(job):
    # Waiting (not released) and last written a minute ago: no round after its commit took it.
    Job.objects.filter(id=job.id).update(
        dispatched_at=None, updated_at=timezone.now() - timedelta(minutes=1)
    )
    assert jobs_reap() == {"requeued": 0, "failed": 0, "published": 1}
    job.refresh_from_db()
    assert (job.state, job.dispatched_at is not None) == ("queued", True)
