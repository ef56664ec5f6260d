"""Handing queued jobs to the Celery workers, and the reaper that keeps that promise.

A job is dispatched after the transaction that created it commits. If the broker is down then,
the job stays queued with no `dispatched_at`, and the reaper publishes it once the broker is
back; the reaper also takes back running jobs whose worker stopped renewing its lease.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.jobs.lease import worker_lost
from apps.jobs.models import Job
from apps.jobs.states import JobState

log = logging.getLogger(__name__)


def job_dispatch(*, tenant_id, job_id, queue: str = "gpu") -> bool:
    """Publish the job's task; True when the broker took it. Never raises for a broker fault."""
    from workers.tasks import run_job

    try:
        run_job.apply_async(
            args=[str(tenant_id), str(job_id)],
            queue=queue,
            retry_policy=settings.JOB_PUBLISH_RETRY_POLICY,
        )
    except Exception:
        log.warning("could not publish job %s; the reaper will retry", job_id, exc_info=True)
        return False
    with scopes_disabled():
        Job.objects.filter(id=job_id, state=JobState.QUEUED).update(dispatched_at=timezone.now())
    return True


def job_dispatch_on_commit(job: Job) -> None:
    tenant_id, job_id, queue = job.tenant_id, job.id, job.queue
    transaction.on_commit(lambda: job_dispatch(tenant_id=tenant_id, job_id=job_id, queue=queue))


@scopes_disabled()
def jobs_reap() -> dict:
    """Requeue running jobs whose lease expired; publish queued jobs that never reached the
    broker (or were published so long ago that the message may be lost). Returns counts."""
    now = timezone.now()
    requeued = failed = published = 0
    expired = Job.objects.filter(state=JobState.RUNNING, lease_expires_at__lt=now)
    for job_id in expired.values_list("id", flat=True):
        with transaction.atomic():
            job = Job.objects.select_for_update().get(id=job_id)
            if job.state != JobState.RUNNING or job.lease_expires_at >= now:
                continue  # renewed or finished since the query
            worker_lost(job, now=now)
            if job.state == JobState.QUEUED:
                requeued += 1
                job_dispatch_on_commit(job)
            else:
                failed += 1
    # Not yet published: created more than a moment ago (the request's own on_commit dispatch
    # normally does it), or published long ago and still not claimed.
    grace = now - timedelta(seconds=settings.JOB_DISPATCH_GRACE_SECONDS)
    stale = now - timedelta(seconds=settings.JOB_REDISPATCH_AFTER_SECONDS)
    waiting = Job.objects.filter(state=JobState.QUEUED).filter(
        dispatched_at__isnull=True, updated_at__lt=grace
    ) | Job.objects.filter(state=JobState.QUEUED, dispatched_at__lt=stale)
    for job_id, tenant_id, queue in waiting.values_list("id", "tenant_id", "queue"):
        published += job_dispatch(tenant_id=tenant_id, job_id=job_id, queue=queue)
    if requeued or failed or published:
        log.info("reaper: %d requeued, %d failed, %d published", requeued, failed, published)
    return {"requeued": requeued, "failed": failed, "published": published}
