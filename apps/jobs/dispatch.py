"""Handing released jobs to the Celery workers, and the reaper that keeps that promise.

Which waiting job runs next is the fair-share dispatcher's choice (`apps.quotas.dispatcher`): a
round runs after the commit that queued a job, after each job's end, and from the reaper. A
released job is published after the round commits; if the broker is down then, the release is
taken back (no `dispatched_at`) and a later round releases it again once the broker is back. The
reaper also takes back running jobs whose worker stopped renewing its lease.
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


def job_dispatch(*, tenant_id, job_id, queue: str = "gpu", released_at=None) -> bool:
    """Publish the job's task; True when the broker took it. Never raises for a broker fault.

    `released_at`: the dispatcher's mark on the job; when the broker refuses, the mark is taken
    back so that a later round releases the job again. Without it (a job published again), the
    job is marked once the broker took it."""
    from apps.jobs.tasks import run_job

    try:
        run_job.apply_async(
            args=[str(tenant_id), str(job_id)],
            queue=queue,
            retry_policy=settings.JOB_PUBLISH_RETRY_POLICY,
        )
    except Exception:
        log.warning("could not publish job %s; the reaper will retry", job_id, exc_info=True)
        if released_at is not None:
            with scopes_disabled():
                Job.objects.filter(
                    id=job_id, state=JobState.QUEUED, dispatched_at=released_at
                ).update(dispatched_at=None)
        return False
    if released_at is None:
        with scopes_disabled():
            Job.objects.filter(id=job_id, state=JobState.QUEUED).update(
                dispatched_at=timezone.now()
            )
    return True


def job_dispatch_on_commit() -> None:
    """After the commit that queued a job, run a dispatch round."""
    from apps.quotas.dispatcher import dispatch_round_on_commit

    dispatch_round_on_commit()


@scopes_disabled()
def jobs_reap() -> dict:
    """Requeue running jobs whose lease expired (a round after each commit releases them); publish
    again jobs released so long ago that the message may be lost; run a round for jobs left
    waiting (no free slot, or the broker was down). Returns counts; `published` counts the jobs
    handed to the broker, released by that round or published again."""
    from apps.quotas.dispatcher import dispatch_round

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
                job_dispatch_on_commit()
            else:
                failed += 1
    # Released long ago and still not claimed: a Redis without persistence lost the message.
    # Publishing again is harmless: the lease lets one delivery run the job.
    stale = now - timedelta(seconds=settings.JOB_REDISPATCH_AFTER_SECONDS)
    lost = Job.objects.filter(state=JobState.QUEUED, dispatched_at__lt=stale)
    for job_id, tenant_id, queue in lost.values_list("id", "tenant_id", "queue"):
        published += job_dispatch(tenant_id=tenant_id, job_id=job_id, queue=queue)
    # Jobs written within the grace are the business of the round their own commit runs.
    grace = now - timedelta(seconds=settings.JOB_DISPATCH_GRACE_SECONDS)
    published += len(dispatch_round(waiting_before=grace))
    if requeued or failed or published:
        log.info("reaper: %d requeued, %d failed, %d published", requeued, failed, published)
    return {"requeued": requeued, "failed": failed, "published": published}
