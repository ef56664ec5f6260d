"""A job's lease: how a worker claims a job, proves it still owns it, and ends it.

Every write a worker makes (events, the final state) carries the fencing token it got from
`job_claim`; after the reaper or another worker took the job over, the token no longer matches
and the write raises LeaseLost, so a stale or duplicated run can never change the job.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.jobs.events import job_event_publish
from apps.jobs.models import Job, JobEvent
from apps.jobs.states import FINAL_STATES, JobState, transition_check
from apps.learning import services as learning
from apps.quotas.services import quota_settle

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The job is no longer this run's: it was taken over, requeued or ended."""


@dataclass(frozen=True)
class Claim:
    tenant_id: object
    job_id: object
    token: int
    attempt: int
    owner: str


def lease_seconds() -> float:
    return settings.JOB_LEASE_SECONDS


def _locked(job_id) -> Job:
    return Job.objects.select_for_update().get(id=job_id)


def event_append(job: Job, *, type: str, payload: dict | None = None, attempt=None) -> JobEvent:
    """Append an event to a job whose row the caller holds locked; published after commit."""
    job.last_seq += 1
    Job.objects.filter(id=job.id).update(last_seq=job.last_seq)
    event = JobEvent.objects.create(
        tenant_id=job.tenant_id,
        job=job,
        seq=job.last_seq,
        attempt=job.attempt if attempt is None else attempt,
        type=type,
        payload=payload or {},
    )
    message = event.as_message()
    tenant_id, job_id = job.tenant_id, job.id
    transaction.on_commit(
        lambda: job_event_publish(tenant_id=tenant_id, job_id=job_id, message=message)
    )
    return event


def state_set(job: Job, target: str, **fields) -> None:
    """Move a locked job to `target` (raising InvalidTransition when the machine forbids it)."""
    transition_check(job.state, target)
    job.state = target
    for name, value in fields.items():
        setattr(job, name, value)
    if target in FINAL_STATES:
        job.finished_at = timezone.now()
        job.lease_expires_at = None
    job.save()
    if target in FINAL_STATES:
        quota_settle(job)  # in the same transaction: a job ends and is charged together
        learning.run_finished(job=job)  # its record and diagnosis, with it
        from apps.quotas.dispatcher import dispatch_round_on_commit

        dispatch_round_on_commit()  # its slot is free once this commits


def worker_lost(job: Job, *, now) -> None:
    """The running job's lease expired: its worker is gone. Mark that attempt's events as
    abandoned, then hand the job to another worker, or fail it after too many lost workers."""
    lost_attempt, owner = job.attempt, job.lease_owner
    job.workers_lost += 1
    event_append(
        job,
        type="attempt_lost",
        payload={
            "attempt": lost_attempt,
            "worker": owner,
            "message": f"The worker running attempt {lost_attempt} stopped answering; "
            "its events above are kept but that run was abandoned.",
        },
    )
    if job.cancel_requested_at is not None:
        state_set(job, JobState.CANCELLED, lease_owner="")
        event_append(job, type=JobState.CANCELLED, payload={"message": "Cancelled."})
    elif job.workers_lost >= settings.JOB_MAX_WORKERS_LOST:
        message = (
            f"The job's worker was lost {job.workers_lost} times, so it will not be run again. "
            "This is a fault of the platform, not of your model; please submit again later."
        )
        state_set(
            job, JobState.FAILED, failure_kind="workers_lost", message=message, lease_owner=""
        )
        event_append(
            job, type=JobState.FAILED, payload={"message": message, "kind": "workers_lost"}
        )
    else:
        state_set(job, JobState.QUEUED, lease_owner="", dispatched_at=None)
        event_append(job, type="requeued", payload={"after_attempt": lost_attempt})


def job_claim(*, job_id, owner: str, device: str = "") -> Claim | None:
    """Take the job for this run, or None when it must not run here: it is finished, or another
    worker holds a live lease (a duplicate delivery), or it was cancelled while queued."""
    with transaction.atomic():
        job = _locked(job_id)
        now = timezone.now()
        if job.state in FINAL_STATES:
            log.info("job %s is already %s; delivery ignored", job.id, job.state)
            return None
        if job.state == JobState.RUNNING:
            if job.lease_expires_at is not None and job.lease_expires_at > now:
                log.info("job %s is leased to %s; delivery ignored", job.id, job.lease_owner)
                return None
            worker_lost(job, now=now)
            if job.state != JobState.QUEUED:
                return None
        if job.cancel_requested_at is not None:
            state_set(job, JobState.CANCELLED)
            event_append(job, type=JobState.CANCELLED, payload={"message": "Cancelled."})
            return None
        attempt = job.attempt + 1
        state_set(
            job,
            JobState.RUNNING,
            attempt=attempt,
            lease_token=job.lease_token + 1,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds()),
            started_at=job.started_at or now,
            run_started_at=now,
            device=device,
        )
        event_append(job, type="started", payload={"attempt": attempt, "device": device})
        return Claim(job.tenant_id, job.id, job.lease_token, attempt, owner)


def lease_renew(claim: Claim) -> bool:
    """Extend the lease; False when it is no longer this run's."""
    expires = timezone.now() + timedelta(seconds=lease_seconds())
    updated = Job.objects.filter(
        id=claim.job_id, state=JobState.RUNNING, lease_token=claim.token
    ).update(lease_expires_at=expires)
    return updated == 1


def cancel_requested(claim: Claim) -> bool:
    return Job.objects.filter(id=claim.job_id, cancel_requested_at__isnull=False).exists()


def _fenced(claim: Claim) -> Job:
    job = _locked(claim.job_id)
    if job.state != JobState.RUNNING or job.lease_token != claim.token:
        raise LeaseLost(f"job {claim.job_id} is no longer held by token {claim.token}")
    return job


def claim_event_append(claim: Claim, *, type: str, payload: dict) -> int:
    """Append an event as the lease holder; returns its sequence number."""
    with transaction.atomic():
        job = _fenced(claim)
        return event_append(job, type=type, payload=payload).seq


def claim_finish(claim: Claim, *, state: str, final_payload: dict, on_locked=None, **fields) -> Job:
    """End the job as the lease holder: state, fields, the final event, in one transaction.
    `on_locked(job)` runs inside it first (the grade is written there, so at most once)."""
    with transaction.atomic():
        job = _fenced(claim)
        if on_locked is not None:
            extra = on_locked(job)
            if extra:
                final_payload = {**final_payload, **extra}
        state_set(job, state, lease_owner="", **fields)
        event_append(job, type=state, payload=final_payload)
        return job
