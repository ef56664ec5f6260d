"""Every change of a job's state, and what a job's end does.

The state machine itself (which moves are allowed) is `apps.jobs.states`. Every move goes
through `transition`, on a job whose row the caller holds locked; a move to a final state runs
`job_ended_effects` in the same transaction, and those are all a job's end does:

1. its quota reservation is settled: the GPU time it used is charged, the rest released
   (`apps.quotas.services.quota_settle`);
2. the apps above are told (`signals.job_ended`): learning writes the run's record and its
   diagnosis (apps/learning/receivers.py);
3. a dispatch round runs once the transaction commits: the job's slot is free.

The lease (who may make these moves from a worker) is `apps.jobs.lease`; the events that
record each move are appended with `apps.jobs.events.event_append`.
"""

from django.conf import settings
from django.utils import timezone

from apps.jobs.dispatch.round import dispatch_round_on_commit
from apps.jobs.events import event_append
from apps.jobs.models import Job
from apps.jobs.signals import job_ended
from apps.jobs.states import FINAL_STATES, JobState, transition_check
from apps.quotas.services import quota_settle


def transition(job: Job, target: str, **fields) -> None:
    """Move a locked job to `target` (raising InvalidTransition when the machine forbids it),
    setting `fields` with it; a final state also runs the job's end (`job_ended_effects`)."""
    transition_check(job.state, target)
    job.state = target
    for name, value in fields.items():
        setattr(job, name, value)
    if target in FINAL_STATES:
        job.finished_at = timezone.now()
        job.lease_expires_at = None
    job.save()
    if target in FINAL_STATES:
        job_ended_effects(job)


def job_ended_effects(job: Job) -> None:
    """Everything a job's end does, in the transaction that ends it (see the module's doc)."""
    quota_settle(job)  # a job ends and is charged together
    job_ended.send(sender=Job, job=job)  # learning: the run's record and diagnosis
    dispatch_round_on_commit()  # its slot is free once this commits


def job_cancel_now(job: Job, **fields) -> None:
    """A locked job that has not started ends cancelled, with its event."""
    transition(job, JobState.CANCELLED, **fields)
    event_append(job, type=JobState.CANCELLED, payload={"message": "Cancelled."})


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
        job_cancel_now(job, lease_owner="")
    elif job.workers_lost >= settings.JOB_MAX_WORKERS_LOST:
        message = (
            f"The job's worker was lost {job.workers_lost} times, so it will not be run again. "
            "This is a fault of the platform, not of your model; please submit again later."
        )
        transition(
            job, JobState.FAILED, failure_kind="workers_lost", message=message, lease_owner=""
        )
        event_append(
            job, type=JobState.FAILED, payload={"message": message, "kind": "workers_lost"}
        )
    else:
        transition(job, JobState.QUEUED, lease_owner="", dispatched_at=None)
        event_append(job, type="requeued", payload={"after_attempt": lost_attempt})
