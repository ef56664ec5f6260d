"""A job's lease: how a worker claims a job, renews it, and proves it still owns it (fencing).

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
from django.utils.translation import gettext

from apps.courses.models import ScoresShown
from apps.jobs.artifacts import model_figures
from apps.jobs.events import event_append
from apps.jobs.grading import grade_write_automatic
from apps.jobs.models import Job
from apps.jobs.states import FINAL_STATES, JobState
from apps.jobs.transitions import job_cancel_now, transition, worker_lost
from apps.trained_models.services import StorageFull, artifact_store

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
            job_cancel_now(job)
            return None
        attempt = job.attempt + 1
        transition(
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


def claim_finish(
    claim: Claim,
    *,
    state: str,
    final_payload: dict,
    metrics: dict | None = None,
    keep: "KeptModel | None" = None,
    **fields,
) -> Job:
    """End the job as the lease holder: state, fields, the final event, in one transaction.
    With `metrics` (a run that succeeded), its automatic grade is written in that transaction
    first (`grading.grade_write_automatic`), so at most once, and the final event carries it.
    With `keep`, the trained model is stored first (apps.trained_models), in that transaction
    too; when the tenant's storage is full it is not, and the metrics say why."""
    with transaction.atomic():
        job = _fenced(claim)
        if keep is not None and metrics is not None:
            metrics = _keep_model(job, keep, metrics)
        if metrics is not None:
            job.outcome = fields.get("outcome", job.outcome)  # the diagnosis reads it now
            grade = grade_write_automatic(job=job, metrics=metrics)
            final_payload = {**final_payload, **_graded_payload(job, grade, metrics)}
        transition(job, state, lease_owner="", **fields)
        event_append(job, type=state, payload=final_payload)
        return job


def _graded_payload(job: Job, grade, metrics: dict) -> dict:
    """The grade and metrics the final event carries. Of an assignment with hidden test parts
    (metrics keep the public part's) that keeps the grade until the due date, the grade is
    withheld (events go to whoever follows the job, its learner too) and the public part's
    figures come only when the teacher shows them live (docs/jobs.md)."""
    assignment = job.submission.assignment
    if "public" not in metrics or assignment.scores_shown == ScoresShown.GRADE_LIVE:
        return {
            "grade": {
                "score": str(grade.score),
                "max_score": str(grade.max_score),
                "feedback": grade.feedback,
            },
            "metrics": metrics,
        }
    live = assignment.scores_shown == ScoresShown.PUBLIC_LIVE
    return {
        "grade": {
            "withheld_until": assignment.due_at.isoformat(),
            "max_score": str(grade.max_score),
        },
        "metrics": {"public": metrics["public"]} if live else {},
    }


@dataclass(frozen=True)
class KeptModel:
    """A run's checked model files and card, to store when the run ends (apps/jobs/artifacts)."""

    onnx: bytes
    weights: bytes | None
    card: dict
    parameter_count: int


def _keep_model(job: Job, keep: KeptModel, metrics: dict) -> dict:
    try:
        model = artifact_store(
            tenant_id=job.tenant_id,
            submission=job.submission,
            job=job,
            onnx=keep.onnx,
            weights=keep.weights,
            card=keep.card,
            metrics=model_figures(metrics, assignment=job.submission.assignment),
            parameter_count=keep.parameter_count,
        )
    except StorageFull as exc:
        return {**metrics, "model_kept": False, "model_not_kept": str(exc)}
    except Exception:  # the storage failing loses the model, never the grade
        log.exception("job %s: the trained model could not be stored", job.id)
        why = gettext("The platform could not store your model; the grade is not affected.")
        return {**metrics, "model_kept": False, "model_not_kept": why}
    return {**metrics, "model_kept": True, "model": str(model.id)}
